#ifndef JUKE_COMMON_FLAGS_USAGE_H_
#define JUKE_COMMON_FLAGS_USAGE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace juke {

// Sets the program's usage message and makes --help list the flags that
// the program's own main file defines (Abseil's default looks for a file
// named after the program, which ours are not). Call before parsing.
void SetFlagsUsage(absl::string_view message);

// The first command-line argument that names a flag no linked code defines
// (as "--name"), or "" when there is none. Abseil's parser stops the
// program on such a flag with exit code 1; checking first lets a program
// refuse it like any other bad configuration. Flags in --flagfile files are
// left to the parser.
std::string UnknownFlag(int argc, char** argv);

// What the first help flag on a command line asks for.
enum class HelpRequest {
  kNone,
  kOwnFlags,  // --help, -h, --helpshort: the flags of the program's main.
  kAllFlags,  // --helpfull: every flag linked in, the libraries' too.
  kVersion,   // --version
};
HelpRequest FindHelpRequest(int argc, char** argv);

// The usage message then the flags, each with its default and help text,
// sorted by name: those the program's own main file defines, or all.
std::string FlagsHelp(absl::string_view program, bool all);

// Parses the command line into the flags: InvalidArgument, saying what is
// wrong, for an unknown flag or an argument that is not a flag. --help,
// -h, --helpshort, --helpfull and --version print to stdout and exit with
// 0; Abseil's rarer help flags (--helpon, --helpmatch...) print and exit as
// its parser does.
absl::Status ParseFlags(int argc, char** argv);

}  // namespace juke

#endif  // JUKE_COMMON_FLAGS_USAGE_H_
