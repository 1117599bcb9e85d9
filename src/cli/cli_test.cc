#include "src/cli/cli.h"

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace juke::cli {
namespace {

using ::testing::HasSubstr;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunJuke(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = RunCli(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(CliTest, HelpExplainsTheCommands) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"help"}, {"--help"}, {"-h"}}) {
    Result r = RunJuke(args);
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("Usage:\n  juke <command> [flags]"));
    EXPECT_THAT(r.out, HasSubstr("  status    Show every host of the pool"));
    EXPECT_THAT(r.out, HasSubstr("--etcd=HOST:PORT"));
    EXPECT_EQ(r.err, "");
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"help", "status"}, {"status", "--help"}}) {
    Result r = RunJuke(args);
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("--output=text|json"));
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"help", "disk"}, {"disk", "--help"}}) {
    Result r = RunJuke(args);
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("juke disk out DISK"));
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"help", "snapshot"}, {"snapshot", "--help"}}) {
    Result r = RunJuke(args);
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("juke snapshot create ID --volume=VOLUME"));
  }
}

TEST(CliTest, VersionPrintsTheVersion) {
  Result r = RunJuke({"version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "juke 0.1.0\n");
  EXPECT_EQ(r.err, "");
}

TEST(CliTest, NoCommandPrintsUsageAndFails) {
  Result r = RunJuke({});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("Usage:"));
}

TEST(CliTest, UsageErrorsAreExitCodeTwo) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"frobnicate"}, "juke: unknown command \"frobnicate\""},
           {{"status", "--bogus"}, "juke: unknown flag --bogus"},
           {{"status", "--output=yaml"}, "--output must be text or json"},
           {{"status", "--timeout=soon"}, "--timeout must be a positive"},
           {{"status", "extra"}, "status takes no arguments"},
           {{"status", "--etcd=a:1,b:2"}, "juke: --etcd: several etcd"},
           {{"help", "frobnicate"}, "no help for unknown command"},
           {{"disk", "sideways", "d1"}, "disk wants an action, out or in"},
           {{"disk", "out"}, "disk wants an action, out or in"},
           {{"disk", "out", "d1", "--size=1"}, "disk does not take --size"},
           {{"snapshot"}, "snapshot wants one action"},
           {{"snapshot", "take", "s1"}, "snapshot wants one action"},
           {{"snapshot", "create", "s1"}, "snapshot create needs --volume"},
           {{"snapshot", "delete"}, "snapshot delete takes one snapshot id"},
           {{"snapshot", "list", "s1"}, "snapshot list takes no snapshot id"},
           {{"snapshot", "list", "--size=1"}, "snapshot does not take --size"},
       }) {
    Result r = RunJuke(c.args);
    EXPECT_EQ(r.code, 2) << c.args[0];
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_EQ(r.out, "");
  }
}

// The real binary, for main()'s part: arguments in, exit code out.
TEST(CliBinaryTest, ExitCodesOfTheBuiltBinary) {
  const char* build_dir = std::getenv("JUKE_BUILD_DIR");
  if (build_dir == nullptr) GTEST_SKIP() << "JUKE_BUILD_DIR not set";
  std::string binary = std::string(build_dir) + "/src/cli/juke";
  ASSERT_TRUE(std::filesystem::exists(binary)) << binary;
  auto dir = testing::TempDir::Create("cli-test");
  ASSERT_TRUE(dir.ok());

  auto run = [&](std::vector<std::string> args) {
    testing::SubprocessOptions opts;
    opts.argv = {binary};
    opts.argv.insert(opts.argv.end(), args.begin(), args.end());
    opts.log_path = (*dir)->path() + "/log";
    auto proc = testing::Subprocess::Start(opts);
    EXPECT_TRUE(proc.ok()) << proc.status();
    if (!proc.ok()) return -1;
    auto info = (*proc)->Wait(absl::Seconds(20));
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->exit_code : -1;
  };
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_EQ(run({"frobnicate"}), 2);
  EXPECT_EQ(run({"status", "--etcd=127.0.0.1:1", "--timeout=1s"}), 1);
}

}  // namespace
}  // namespace juke::cli
