#include "src/common/flags_usage.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "src/common/version.h"

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

// Appends `text` in lines of at most `width` columns, each after `indent`.
void AppendWrapped(absl::string_view text, size_t indent, size_t width,
                   std::string* out) {
  std::string line;
  for (absl::string_view word :
       absl::StrSplit(text, ' ', absl::SkipWhitespace())) {
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      absl::StrAppend(out, std::string(indent, ' '), line, "\n");
      line.clear();
    }
    absl::StrAppend(&line, line.empty() ? "" : " ", word);
  }
  if (!line.empty()) absl::StrAppend(out, std::string(indent, ' '), line, "\n");
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

HelpRequest FindHelpRequest(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "-")) continue;
    absl::ConsumePrefix(&arg, "-");
    if (arg == "help" || arg == "h" || arg == "helpshort") {
      return HelpRequest::kOwnFlags;
    }
    if (arg == "helpfull") return HelpRequest::kAllFlags;
    if (arg == "version") return HelpRequest::kVersion;
  }
  return HelpRequest::kNone;
}

std::string FlagsHelp(absl::string_view program, bool all) {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (all || OurMainFile(flag->Filename())) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const absl::CommandLineFlag* a, const absl::CommandLineFlag* b) {
              return a->Name() < b->Name();
            });
  std::string out =
      absl::StrCat(program, ": ", absl::ProgramUsageMessage(), "\n\nFlags:\n");
  for (const absl::CommandLineFlag* flag : flags) {
    std::string value = flag->DefaultValue();
    if (flag->IsOfType<std::string>()) value = absl::StrCat("\"", value, "\"");
    absl::StrAppend(&out, "  --", flag->Name());
    if (!value.empty()) absl::StrAppend(&out, "  (default: ", value, ")");
    out += "\n";
    AppendWrapped(flag->Help(), 6, 80, &out);
  }
  if (!all) {
    absl::StrAppend(&out,
                    "\n--helpfull lists the libraries' flags too; --version "
                    "prints the version.\n");
  }
  return out;
}

absl::Status ParseFlags(int argc, char** argv) {
  if (HelpRequest help = FindHelpRequest(argc, argv);
      help != HelpRequest::kNone) {
    std::string program = argc > 0 ? argv[0] : "juke";
    program = program.substr(program.rfind('/') + 1);
    std::string text = help == HelpRequest::kVersion
                           ? absl::StrCat(program, " ", kJukeVersion, "\n")
                           : FlagsHelp(program, help == HelpRequest::kAllFlags);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    std::exit(0);
  }
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
