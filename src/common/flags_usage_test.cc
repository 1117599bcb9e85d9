#include "src/common/flags_usage.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

ABSL_FLAG(bool, flags_usage_test_bool, false, "A boolean for the test.");
ABSL_FLAG(std::string, flags_usage_test_string, "", "A string for the test.");

namespace juke {
namespace {

std::string Unknown(std::vector<std::string> args) {
  args.insert(args.begin(), "prog");
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& a : args) argv.push_back(a.data());
  return UnknownFlag(static_cast<int>(argv.size()), argv.data());
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
