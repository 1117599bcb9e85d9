#include "src/common/flags_usage.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(bool, flags_usage_test_bool, false, "A boolean for the test.");
ABSL_FLAG(std::string, flags_usage_test_string, "", "A string for the test.");

namespace juke {
namespace {

// Calls `f(argc, argv)` for the command line "prog" followed by `args`.
template <typename F>
auto CallWithArgs(std::vector<std::string> args, F f) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& a : args) argv.push_back(a.data());
  return f(static_cast<int>(argv.size()), argv.data());
}

std::string Unknown(std::vector<std::string> args) {
  return CallWithArgs(std::move(args), UnknownFlag);
}

TEST(UnknownFlagTest, KnownFlagsInEveryFormPass) {
  EXPECT_EQ(Unknown({}), "");
  EXPECT_EQ(Unknown({"--flags_usage_test_bool", "-flags_usage_test_bool=true",
                     "--noflags_usage_test_bool",
                     "--flags_usage_test_string=a=b", "positional"}),
            "");
  // Abseil's own flags are known too.
  EXPECT_EQ(Unknown({"--help", "--flagfile=/nonexistent"}), "");
}

HelpRequest Help(std::vector<std::string> args) {
  return CallWithArgs(std::move(args), FindHelpRequest);
}

TEST(FindHelpRequestTest, FindsTheFirstHelpFlag) {
  EXPECT_EQ(Help({}), HelpRequest::kNone);
  EXPECT_EQ(Help({"--flags_usage_test_bool", "help"}), HelpRequest::kNone);
  EXPECT_EQ(Help({"--help"}), HelpRequest::kOwnFlags);
  EXPECT_EQ(Help({"-h"}), HelpRequest::kOwnFlags);
  EXPECT_EQ(Help({"-helpshort"}), HelpRequest::kOwnFlags);
  EXPECT_EQ(Help({"--helpfull", "--help"}), HelpRequest::kAllFlags);
  EXPECT_EQ(Help({"--version"}), HelpRequest::kVersion);
  EXPECT_EQ(Help({"--", "--help"}), HelpRequest::kNone);
  // A flag's value is not a help flag.
  EXPECT_EQ(Help({"--flags_usage_test_string=--help"}), HelpRequest::kNone);
}

TEST(FlagsHelpTest, ListsFlagsWithDefaultsAndWrappedHelp) {
  absl::SetProgramUsageMessage("does things.");
  // This test's flags are not in a main file: only --helpfull lists them.
  std::string own = FlagsHelp("prog", /*all=*/false);
  EXPECT_THAT(own, ::testing::StartsWith("prog: does things.\n\nFlags:\n"));
  EXPECT_THAT(own, ::testing::Not(::testing::HasSubstr("flags_usage_test")));
  std::string all = FlagsHelp("prog", /*all=*/true);
  EXPECT_THAT(
      all, ::testing::HasSubstr("  --flags_usage_test_bool  (default: false)\n"
                                "      A boolean for the test.\n"));
  EXPECT_THAT(all, ::testing::HasSubstr(
                       "  --flags_usage_test_string  (default: \"\")\n"));
  // Sorted by name.
  EXPECT_LT(all.find("--flags_usage_test_bool"),
            all.find("--flags_usage_test_string"));
  for (absl::string_view line : absl::StrSplit(all, '\n')) {
    EXPECT_LE(line.size(), 80u) << line;
  }
}

TEST(UnknownFlagTest, NamesTheFirstUnknownFlag) {
  EXPECT_EQ(Unknown({"--flags_usage_test_bool", "--bogus=1", "--other"}),
            "--bogus");
  EXPECT_EQ(Unknown({"-bogus"}), "--bogus");
  // "no" negates booleans only.
  EXPECT_EQ(Unknown({"--noflags_usage_test_string"}),
            "--noflags_usage_test_string");
  // After "--" nothing is a flag.
  EXPECT_EQ(Unknown({"--", "--bogus"}), "");
}

}  // namespace
}  // namespace juke
