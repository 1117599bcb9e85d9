#include "src/cli/command_line.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace juke::cli {

absl::StatusOr<CommandLine> ParseCommandLine(
    const std::vector<std::string>& args, const std::set<std::string>& known,
    const std::set<std::string>& switches) {
  CommandLine line;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "-h" || arg == "--help") {
      line.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "-")) {
      if (line.command.empty()) {
        line.command = arg;
      } else {
        line.positional.push_back(arg);
      }
      continue;
    }
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag ", arg, "; flags are --name=value"));
    }

    std::string name = arg.substr(2);
    std::string value;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      if (switches.count(name) > 0 && value != "true" && value != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " is true or false, not ", value));
      }
    } else if (switches.count(name) > 0) {
      value = "true";
    } else if (known.count(name) > 0) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
      value = args[++i];
    }
    if (known.count(name) == 0 && switches.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!line.flags.emplace(name, value).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, " given twice"));
    }
  }
  return line;
}

}  // namespace juke::cli
