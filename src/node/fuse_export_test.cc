#include "src/node/fuse_export.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "src/node/block_backend.h"
#include "src/node/mountinfo.h"
#include "src/node/test_util.h"

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace juke::node {
namespace {

using juke::testing::IsOk;
using juke::testing::TempDir;
using testing::AlignedBuffer;
using testing::MissingFacility;
using testing::RandomBytes;

constexpr uint64_t kSize = 8 << 20;

class FuseExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = MissingFacility();
    if (!missing.empty()) GTEST_SKIP() << "FUSE unavailable: " << missing;
    auto dir = TempDir::Create("fuse-export-test");
    ASSERT_THAT(dir, IsOk());
    dir_ = *std::move(dir);
    backend_ = std::make_shared<MemoryBackend>(kSize);
    auto fx = FuseExport::Start(dir_->path(), "volume", backend_);
    ASSERT_THAT(fx, IsOk());
    fx_ = *std::move(fx);
  }

  void TearDown() override {
    if (fd_ >= 0) close(fd_);
    if (fx_ != nullptr) {
      EXPECT_THAT(fx_->Stop(), IsOk());
    }
    if (dir_ != nullptr) {
      EXPECT_THAT(IsMountPoint(dir_->path()),
                  juke::testing::IsOkAndHolds(false));
    }
  }

  int OpenFile() {
    fd_ = open(fx_->file_path().c_str(), O_RDWR | O_CLOEXEC);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    return fd_;
  }

  std::unique_ptr<TempDir> dir_;
  std::shared_ptr<MemoryBackend> backend_;
  std::unique_ptr<FuseExport> fx_;
  int fd_ = -1;
};

TEST_F(FuseExportTest, FileHasBackendSizeAndIsMounted) {
  struct stat st {};
  ASSERT_EQ(stat(fx_->file_path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kSize);
  EXPECT_THAT(IsMountPoint(dir_->path()), juke::testing::IsOkAndHolds(true));
}

TEST_F(FuseExportTest, WritesThroughFileReachBackend) {
  const int fd = OpenFile();
  ASSERT_GE(fd, 0);
  // Small, unaligned-to-4K but sector aligned, and larger than one request.
  for (auto [offset, length] : std::vector<std::pair<uint64_t, size_t>>{
           {0, 4096}, {512 * 7, 512 * 3}, {1 << 20, 3 << 20}}) {
    const std::vector<uint8_t> data = RandomBytes(length, offset + length);
    AlignedBuffer out(length);
    std::memcpy(out.data(), data.data(), length);
    ASSERT_EQ(pwrite(fd, out.data(), length, static_cast<off_t>(offset)),
              static_cast<ssize_t>(length));
    std::vector<uint8_t> stored(length);
    ASSERT_THAT(backend_->ReadAt(offset, stored), IsOk());
    EXPECT_EQ(stored, data) << "offset " << offset;
  }
}

TEST_F(FuseExportTest, ReadsThroughFileComeFromBackend) {
  const std::vector<uint8_t> data = RandomBytes(2 << 20, 7);
  ASSERT_THAT(backend_->WriteAt(4096, data), IsOk());
  const int fd = OpenFile();
  ASSERT_GE(fd, 0);
  AlignedBuffer read_back(data.size());
  ASSERT_EQ(pread(fd, read_back.data(), read_back.size(), 4096),
            static_cast<ssize_t>(read_back.size()));
  EXPECT_EQ(std::memcmp(read_back.data(), data.data(), data.size()), 0);

  // At the end the read is short, past it empty.
  AlignedBuffer tail(8192);
  EXPECT_EQ(pread(fd, tail.data(), tail.size(), kSize - 4096), 4096);
  EXPECT_EQ(pread(fd, tail.data(), tail.size(), kSize), 0);
}

TEST_F(FuseExportTest, FsyncFlushesBackend) {
  const int fd = OpenFile();
  ASSERT_GE(fd, 0);
  const int before = backend_->flush_count();
  ASSERT_EQ(fsync(fd), 0) << std::strerror(errno);
  EXPECT_EQ(backend_->flush_count(), before + 1);
  ASSERT_EQ(fdatasync(fd), 0) << std::strerror(errno);
  EXPECT_EQ(backend_->flush_count(), before + 2);
}

TEST_F(FuseExportTest, BackendErrorsAreEio) {
  const int fd = OpenFile();
  ASSERT_GE(fd, 0);
  backend_->SetFault(absl::FailedPreconditionError("fenced"));
  AlignedBuffer buffer(4096);
  errno = 0;
  EXPECT_EQ(pwrite(fd, buffer.data(), buffer.size(), 0), -1);
  EXPECT_EQ(errno, EIO);
  errno = 0;
  EXPECT_EQ(pread(fd, buffer.data(), buffer.size(), 0), -1);
  EXPECT_EQ(errno, EIO);
  errno = 0;
  EXPECT_EQ(fsync(fd), -1);
  EXPECT_EQ(errno, EIO);

  backend_->SetFault(absl::OkStatus());
  EXPECT_EQ(pwrite(fd, buffer.data(), buffer.size(), 0), 4096);
}

TEST_F(FuseExportTest, RejectsUnalignedAndOutOfRangeWrites) {
  const int fd = OpenFile();
  ASSERT_GE(fd, 0);
  AlignedBuffer buffer(4096);
  errno = 0;
  EXPECT_EQ(pwrite(fd, buffer.data(), 100, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(pwrite(fd, buffer.data(), buffer.size(), kSize), -1);
  EXPECT_EQ(errno, ENOSPC);
  // O_TRUNC would cut the volume to nothing: refused.
  const int truncating =
      open(fx_->file_path().c_str(), O_RDWR | O_TRUNC | O_CLOEXEC);
  EXPECT_LT(truncating, 0);
  if (truncating >= 0) close(truncating);
  EXPECT_EQ(backend_->size(), kSize);
  // Growing through truncate is allowed.
  ASSERT_EQ(ftruncate(fd, 2 * kSize), 0) << std::strerror(errno);
  EXPECT_EQ(backend_->size(), 2 * kSize);
}

TEST_F(FuseExportTest, ResizeIsVisibleToTheKernel) {
  struct stat st {};
  ASSERT_EQ(stat(fx_->file_path().c_str(), &st), 0);
  ASSERT_THAT(fx_->Resize(2 * kSize), IsOk());
  ASSERT_EQ(stat(fx_->file_path().c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), 2 * kSize);
}

TEST_F(FuseExportTest, StopWhileOpenAbortsInsteadOfHanging) {
  const int fd = OpenFile();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(fx_->Stop().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(IsMountPoint(dir_->path()), juke::testing::IsOkAndHolds(false));
  AlignedBuffer buffer(4096);
  errno = 0;
  EXPECT_EQ(pread(fd, buffer.data(), buffer.size(), 0), -1);
  EXPECT_THAT(errno, ::testing::AnyOf(ENOTCONN, EIO));
}

}  // namespace
}  // namespace juke::node
