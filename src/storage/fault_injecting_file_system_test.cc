#include "src/storage/fault_injecting_file_system.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

#include "src/common/checksum.h"
#include "src/storage/test_util.h"

namespace juke::storage {
namespace {

using testing::Pattern;
using testing::TempDir;

class FaultInjectingFileSystemTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) { return dir_.path() + "/" + name; }

  TempDir dir_;
  std::unique_ptr<FileSystem> base_ = NewUringFileSystem();
  FaultInjectingFileSystem fs_{base_.get()};
};

TEST_F(FaultInjectingFileSystemTest, FailsOnlyTheNthWriteWithTheGivenErrno) {
  auto file = fs_.OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  fs_.FailNth(FaultOp::kWrite, 2, ENOSPC);
  std::vector<uint8_t> data = Pattern(1, 1);

  EXPECT_TRUE((*file)->WriteAt(0, data).ok());
  absl::Status second = (*file)->WriteAt(0, data);
  EXPECT_TRUE(absl::IsResourceExhausted(second)) << second;
  EXPECT_NE(second.message().find("injected"), std::string::npos);
  EXPECT_TRUE((*file)->WriteAt(0, data).ok());
  EXPECT_EQ(fs_.injected_faults(), 1u);
}

TEST_F(FaultInjectingFileSystemTest, FailAlwaysLastsUntilReset) {
  auto file = fs_.OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  fs_.FailAlways(FaultOp::kSync, EIO);
  EXPECT_TRUE(absl::IsUnavailable((*file)->Sync()));
  EXPECT_TRUE(absl::IsUnavailable((*file)->Sync()));
  std::vector<uint8_t> buf(kBlockSize);
  EXPECT_TRUE((*file)->ReadAt(0, buf).ok());

  fs_.Reset();
  EXPECT_TRUE((*file)->Sync().ok());
}

TEST_F(FaultInjectingFileSystemTest, RulesMatchOnlyTheirPaths) {
  fs_.FailAlways(FaultOp::kOpen, EIO, "bad");
  EXPECT_TRUE(absl::IsUnavailable(fs_.OpenFile(Path("bad-file")).status()));
  EXPECT_TRUE(fs_.OpenFile(Path("good-file")).ok());
}

TEST_F(FaultInjectingFileSystemTest, TornWriteKeepsAPrefixAndCrashes) {
  auto file = fs_.OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> old_data = Pattern(1, 3);
  std::vector<uint8_t> new_data = Pattern(2, 3);
  ASSERT_TRUE((*file)->WriteAt(0, old_data).ok());

  FaultRule rule;
  rule.op = FaultOp::kWrite;
  rule.tear_bytes = kBlockSize + 100;
  fs_.AddRule(rule);
  EXPECT_TRUE(absl::IsUnavailable((*file)->WriteAt(0, new_data)));
  EXPECT_TRUE(fs_.crashed());
  EXPECT_TRUE(absl::IsUnavailable((*file)->Sync()));
  EXPECT_TRUE(absl::IsUnavailable(fs_.OpenFile(Path("g")).status()));

  // What reached the disk: one whole new block, 100 new bytes, then old.
  auto raw = base_->OpenFile(Path("f"));
  ASSERT_TRUE(raw.ok());
  std::vector<uint8_t> back(old_data.size());
  ASSERT_TRUE((*raw)->ReadAt(0, back).ok());
  size_t torn = kBlockSize + 100;
  EXPECT_TRUE(std::equal(back.begin(), back.begin() + torn, new_data.begin()));
  EXPECT_TRUE(
      std::equal(back.begin() + torn, back.end(), old_data.begin() + torn));

  fs_.Reset();
  EXPECT_FALSE(fs_.crashed());
  EXPECT_TRUE((*file)->Sync().ok());
}

TEST_F(FaultInjectingFileSystemTest, DelaySlowsTheOperationDown) {
  auto file = fs_.OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  FaultRule rule;
  rule.op = FaultOp::kSync;
  rule.error = 0;
  rule.delay = absl::Milliseconds(50);
  fs_.AddRule(rule);
  absl::Time start = absl::Now();
  EXPECT_TRUE((*file)->Sync().ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
}

TEST_F(FaultInjectingFileSystemTest, CountsOperationsAcrossThreadsExactly) {
  auto file = fs_.OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  fs_.FailNth(FaultOp::kWrite, 150, EIO);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> data = Pattern(t, 1);
      for (int i = 0; i < 100; ++i) {
        if (!(*file)->WriteAt(t * kBlockSize, data).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 1);
}

}  // namespace
}  // namespace juke::storage
