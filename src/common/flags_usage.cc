#include "src/common/flags_usage.h"

#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace juke {
namespace {

// What Abseil's parser itself understands, whether or not the flags'
// registry lists it.
constexpr absl::string_view kParserFlags[] = {
    "help",     "helpfull",  "helpshort",  "helppackage",
    "helpon",   "helpmatch", "version",    "only_check_args",
    "flagfile", "fromenv",   "tryfromenv", "undefok"};

bool OurMainFile(absl::string_view path) {
  return absl::EndsWith(path, "_main.cc");
}

}  // namespace

void SetFlagsUsage(absl::string_view message) {
  absl::SetProgramUsageMessage(message);
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = OurMainFile;
  config.contains_help_flags = OurMainFile;
  absl::SetFlagsUsageConfig(config);
}

std::string UnknownFlag(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;  // The rest are not flags.
    if (!absl::ConsumePrefix(&arg, "-")) continue;
    absl::ConsumePrefix(&arg, "-");
    absl::string_view name = arg.substr(0, arg.find('='));
    if (name.empty()) continue;
    if (absl::c_linear_search(kParserFlags, name)) continue;
    if (absl::FindCommandLineFlag(name) != nullptr) continue;
    // --nofoo sets the boolean flag foo to false.
    absl::string_view negated = name;
    if (absl::ConsumePrefix(&negated, "no")) {
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(negated);
      if (flag != nullptr && flag->IsOfType<bool>()) continue;
    }
    return absl::StrCat("--", name);
  }
  return "";
}

absl::Status ParseFlags(int argc, char** argv) {
  if (std::string flag = UnknownFlag(argc, argv); !flag.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown flag ", flag));
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", args[1],
                     "'; flags take the form --name=value"));
  }
  return absl::OkStatus();
}

}  // namespace juke
