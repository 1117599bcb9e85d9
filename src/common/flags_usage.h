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

// Parses the command line into the flags: InvalidArgument, saying what is
// wrong, for an unknown flag or an argument that is not a flag. --help and
// its kin print and exit as Abseil's parser does.
absl::Status ParseFlags(int argc, char** argv);

}  // namespace juke

#endif  // JUKE_COMMON_FLAGS_USAGE_H_
