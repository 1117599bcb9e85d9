#include "src/node/exec.h"

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/status_matchers.h"

namespace juke::node {
namespace {

using juke::testing::IsOk;

TEST(RunCommandTest, CapturesOutputAndExitCode) {
  const std::vector<std::string> argv = {"sh", "-c",
                                         "echo out; echo err >&2; exit 3"};
  auto result = RunCommand(argv, absl::Seconds(10));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->out, "out\n");
  EXPECT_EQ(result->err, "err\n");
}

TEST(RunCommandTest, ArgumentsAreNotInterpretedByAShell) {
  const std::vector<std::string> argv = {"echo", "$(id)", ";", "ls"};
  auto result = RunCommand(argv, absl::Seconds(10));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->out, "$(id) ; ls\n");
}

TEST(RunCommandTest, MissingProgramIsNotFound) {
  const std::vector<std::string> argv = {"no-such-program-anywhere"};
  EXPECT_EQ(RunCommand(argv, absl::Seconds(10)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(RunCommandTest, TimeoutKillsTheProgram) {
  const std::vector<std::string> argv = {"sleep", "30"};
  const absl::Time start = absl::Now();
  EXPECT_EQ(RunCommand(argv, absl::Milliseconds(200)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(RunCommandTest, CheckedReportsFailureWithStderr) {
  const std::vector<std::string> argv = {"sh", "-c", "echo broken >&2; exit 1"};
  auto result = RunCommandChecked(argv, absl::Seconds(10));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(result.status().message(), ::testing::HasSubstr("broken"));
}

}  // namespace
}  // namespace juke::node
