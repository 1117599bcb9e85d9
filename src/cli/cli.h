#pragma once

#include <ostream>
#include <string>
#include <vector>

// The admin CLI, `juke`, minus its main(): parses the arguments, runs the
// subcommand and returns the process exit code:
//
//   0  success (and help that was asked for)
//   1  the command failed, e.g. etcd could not be reached
//   2  usage error: unknown subcommand or flag, bad flag value
//
// Normal output goes to `out`, messages to `err`.
namespace juke::cli {

// `args` excludes the program name.
int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err);

}  // namespace juke::cli
