#include "tests/testing/subprocess.h"

#include <csignal>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

#include "tests/testing/temp_dir.h"

namespace juke::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

TEST(SubprocessTest, ReportsExitCodeAndWritesLog) {
  auto dir = TempDir::Create("subprocess-test");
  ASSERT_TRUE(dir.ok()) << dir.status();
  SubprocessOptions opts;
  opts.argv = {"sh", "-c", "echo out-$JUKE_X; echo err >&2; exit 3"};
  opts.env = {{"JUKE_X", "42"}};
  opts.log_path = (*dir)->path() + "/log";

  auto proc = Subprocess::Start(opts);
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto info = (*proc)->Wait(absl::Seconds(10));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->exit_code, 3);
  EXPECT_EQ(info->signal, 0);
  EXPECT_FALSE((*proc)->IsRunning());
  EXPECT_EQ(ReadFile(opts.log_path), "out-42\nerr\n");
}

TEST(SubprocessTest, KillEndsRunningProcess) {
  SubprocessOptions opts;
  opts.argv = {"sleep", "60"};
  auto proc = Subprocess::Start(opts);
  ASSERT_TRUE(proc.ok()) << proc.status();
  EXPECT_TRUE((*proc)->IsRunning());
  EXPECT_TRUE(
      absl::IsDeadlineExceeded((*proc)->Wait(absl::Milliseconds(50)).status()));

  ASSERT_TRUE((*proc)->Kill(SIGKILL).ok());
  auto info = (*proc)->Wait(absl::Seconds(10));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->signal, SIGKILL);
  EXPECT_FALSE((*proc)->IsRunning());
  EXPECT_TRUE(absl::IsFailedPrecondition((*proc)->Kill(SIGTERM)));
}

TEST(SubprocessTest, TerminateSendsSigterm) {
  SubprocessOptions opts;
  opts.argv = {"sleep", "60"};
  auto proc = Subprocess::Start(opts);
  ASSERT_TRUE(proc.ok()) << proc.status();
  auto info = (*proc)->Terminate(absl::Seconds(5));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->signal, SIGTERM);
}

TEST(SubprocessTest, MissingProgramFailsAtStart) {
  SubprocessOptions opts;
  opts.argv = {"/nonexistent/juke-no-such-binary"};
  auto proc = Subprocess::Start(opts);
  EXPECT_TRUE(absl::IsNotFound(proc.status())) << proc.status();
}

}  // namespace
}  // namespace juke::testing
