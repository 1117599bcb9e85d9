#include "src/cli/command_line.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace juke::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

const std::set<std::string> kKnown = {"etcd", "output"};
const std::set<std::string> kSwitches = {"force"};

TEST(CommandLineTest, ParsesCommandFlagsAndArguments) {
  auto line = ParseCommandLine(
      {"--etcd=1.2.3.4:2379", "status", "--output", "json", "extra"}, kKnown,
      kSwitches);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->command, "status");
  EXPECT_THAT(line->positional, ElementsAre("extra"));
  EXPECT_THAT(line->flags, ElementsAre(Pair("etcd", "1.2.3.4:2379"),
                                       Pair("output", "json")));
  EXPECT_FALSE(line->help);
}

TEST(CommandLineTest, SwitchesStandAloneOrTakeABoolean) {
  auto line = ParseCommandLine({"volume", "--force", "x"}, kKnown, kSwitches);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->flags.at("force"), "true");
  EXPECT_EQ(line->positional, std::vector<std::string>{"x"});
  line = ParseCommandLine({"--force=false"}, kKnown, kSwitches);
  ASSERT_TRUE(line.ok());
  EXPECT_EQ(line->flags.at("force"), "false");
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseCommandLine({"--force=yes"}, kKnown, kSwitches).status()));
}

TEST(CommandLineTest, RecognisesHelp) {
  EXPECT_TRUE(ParseCommandLine({"status", "-h"}, kKnown, kSwitches)->help);
  EXPECT_TRUE(ParseCommandLine({"--help"}, kKnown, kSwitches)->help);
}

TEST(CommandLineTest, RejectsMistakes) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"status", "--bogus=1"},
                                             {"status", "--bogus"},
                                             {"status", "-x"},
                                             {"status", "--"},
                                             {"status", "--output"},
                                             {"--etcd=a:1", "--etcd=b:1"}}) {
    EXPECT_TRUE(absl::IsInvalidArgument(
        ParseCommandLine(args, kKnown, kSwitches).status()))
        << args.back();
  }
}

}  // namespace
}  // namespace juke::cli
