#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

// Parsing of the admin CLI's arguments: `juke [flags] <command> [flags]`.
// Flags are `--name=value` or `--name value`; `-h` and `--help` ask for
// help. Hand-written rather than absl flags so that every mistake can be
// answered with a message and exit code 2 instead of a process abort.
namespace juke::cli {

struct CommandLine {
  std::string command;                  // Empty when none was given.
  std::vector<std::string> positional;  // Arguments after the command.
  std::map<std::string, std::string> flags;
  bool help = false;
};

// Flags in `known` take a value (--name=value or --name value); those in
// `switches` stand alone (--name means "true") or take =true/=false.
// InvalidArgument for any other flag, a flag without its value, or one
// given twice.
absl::StatusOr<CommandLine> ParseCommandLine(
    const std::vector<std::string>& args, const std::set<std::string>& known,
    const std::set<std::string>& switches);

}  // namespace juke::cli
