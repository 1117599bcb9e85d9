#include "src/node/filesystem.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "src/common/checksum.h"
#include "src/node/attachment.h"
#include "src/node/block_backend.h"
#include "src/node/mountinfo.h"
#include "src/node/test_util.h"

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace juke::node {
namespace {

using juke::testing::IsOk;
using juke::testing::IsOkAndHolds;
using juke::testing::TempDir;
using ::testing::IsEmpty;
using testing::Leftovers;
using testing::MissingFacility;
using testing::RandomBytes;

using Options = std::vector<std::string>;

TEST(MountOptionsTest, AcceptsAllowedOptions) {
  auto params =
      ParseMountOptions("ext4",
                        Options{"noatime", "nodiratime,discard", "data=ordered",
                                "commit=30", "nosuid", "nodev"},
                        false);
  ASSERT_THAT(params, IsOk());
  EXPECT_EQ(params->flags, MS_NOATIME | MS_NODIRATIME | MS_NOSUID | MS_NODEV);
  EXPECT_EQ(params->data, "discard,data=ordered,commit=30");

  params = ParseMountOptions("xfs", Options{"nouuid", "relatime"}, true);
  ASSERT_THAT(params, IsOk());
  EXPECT_EQ(params->flags, MS_RELATIME | MS_RDONLY);
  EXPECT_EQ(params->data, "nouuid");
}

TEST(MountOptionsTest, RejectsAnythingNotOnTheList) {
  for (const Options& bad : std::vector<Options>{
           {"exec,suid"},
           {"exec"},
           {"suid"},
           {"dev"},
           {"noatime,uid=0"},
           {"uid=0"},
           {"nobarrier"},
           {"errors=panic"},
           {"commit=0"},
           {"commit=5x"},
           {"commit=05"},
           {"noatime,"},
           {""},
           {"data=ordered\ncontext=x"},
           {"data=ordered,context=system_u:object_r:tmp_t:s0"}}) {
    EXPECT_EQ(ParseMountOptions("ext4", bad, false).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad[0];
  }
  // ext4 options are not xfs options, and the other way round.
  EXPECT_FALSE(ParseMountOptions("xfs", Options{"data=ordered"}, false).ok());
  EXPECT_FALSE(ParseMountOptions("ext4", Options{"nouuid"}, false).ok());
  EXPECT_FALSE(ParseMountOptions("btrfs", Options{}, false).ok());
  EXPECT_FALSE(ParseMountOptions("ext4", Options{"rw"}, true).ok());
}

class FilesystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = MissingFacility();
    if (!missing.empty()) GTEST_SKIP() << "FUSE or loop missing: " << missing;
    auto dir = TempDir::Create("filesystem-test");
    ASSERT_THAT(dir, IsOk());
    dir_ = *std::move(dir);
    state_dir_ = dir_->path() + "/state";
  }

  void TearDown() override {
    if (dir_ == nullptr) return;
    for (const char* name : {"/mnt", "/bind"}) {
      (void)umount2((dir_->path() + name).c_str(), MNT_DETACH);
    }
    (void)CleanupStale(state_dir_);
    EXPECT_THAT(Leftovers(dir_->path()), IsEmpty());
  }

  absl::StatusOr<std::unique_ptr<Attachment>> AttachNew(
      const std::shared_ptr<BlockBackend>& backend) {
    return Attachment::Attach(backend, state_dir_);
  }

  std::unique_ptr<TempDir> dir_;
  std::string state_dir_;
};

uint32_t Checksum(const std::string& s) {
  return Crc32c({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(FilesystemTest, BlankDeviceIsFormattedOnceAndDataSurvives) {
  auto backend = std::make_shared<MemoryBackend>(64 << 20);
  const std::string target = dir_->path() + "/mnt";
  const std::vector<uint8_t> payload = RandomBytes(256 << 10, 42);
  const std::string content(payload.begin(), payload.end());
  {
    auto att = AttachNew(backend);
    ASSERT_THAT(att, IsOk());
    const std::string device = (*att)->device_path();
    EXPECT_THAT(DetectFilesystem(device), IsOkAndHolds(std::string()));
    ASSERT_THAT(FormatIfBlank(device, "ext4"), IsOk());
    EXPECT_THAT(DetectFilesystem(device), IsOkAndHolds(std::string("ext4")));
    ASSERT_THAT(Mount(device, target, "ext4", Options{"noatime"}, false),
                IsOk());
    // Mounting again is fine, and so is what the kernel reports.
    ASSERT_THAT(Mount(device, target, "ext4", Options{"noatime"}, false),
                IsOk());
    std::ofstream(target + "/data", std::ios::binary) << content;
    ASSERT_THAT(Unmount(target), IsOk());
    ASSERT_THAT((*att)->Detach(), IsOk());
  }

  // Attached again on the same volume: found formatted, left alone.
  auto att = AttachNew(backend);
  ASSERT_THAT(att, IsOk());
  const std::string device = (*att)->device_path();
  ASSERT_THAT(FormatIfBlank(device, "ext4"), IsOk());
  ASSERT_THAT(Mount(device, target, "ext4", Options{}, false), IsOk());
  const std::string read_back = ReadFile(target + "/data");
  EXPECT_EQ(read_back.size(), content.size());
  EXPECT_EQ(Checksum(read_back), Checksum(content));
  ASSERT_THAT(Unmount(target), IsOk());
  EXPECT_THAT((*att)->Detach(), IsOk());
}

TEST_F(FilesystemTest, XfsIsNeverReformattedAsExt4) {
  // xfs needs 300 MiB; a sparse file keeps that cheap.
  auto file = FileBackend::Open(dir_->path() + "/backing", 320 << 20);
  ASSERT_THAT(file, IsOk());
  auto att = AttachNew(std::shared_ptr<BlockBackend>(std::move(*file)));
  ASSERT_THAT(att, IsOk());
  const std::string device = (*att)->device_path();
  ASSERT_THAT(FormatIfBlank(device, "xfs"), IsOk());
  EXPECT_THAT(FormatIfBlank(device, "xfs"), IsOk());
  EXPECT_EQ(FormatIfBlank(device, "ext4").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(DetectFilesystem(device), IsOkAndHolds(std::string("xfs")));

  const std::string target = dir_->path() + "/mnt";
  ASSERT_THAT(Mount(device, target, "xfs", Options{"noatime"}, false), IsOk());
  ASSERT_THAT(Unmount(target), IsOk());
  EXPECT_THAT((*att)->Detach(), IsOk());
}

TEST_F(FilesystemTest, UnknownDataIsNotBlankAndNotFormatted) {
  auto backend = std::make_shared<MemoryBackend>(64 << 20);
  const std::vector<uint8_t> noise = RandomBytes(64 << 10, 9);
  ASSERT_THAT(backend->WriteAt(128 << 10, noise), IsOk());
  auto att = AttachNew(backend);
  ASSERT_THAT(att, IsOk());
  const std::string device = (*att)->device_path();
  EXPECT_THAT(DetectFilesystem(device), IsOkAndHolds(std::string("unknown")));
  EXPECT_EQ(FormatIfBlank(device, "ext4").code(),
            absl::StatusCode::kFailedPrecondition);
  std::vector<uint8_t> still(noise.size());
  ASSERT_THAT(backend->ReadAt(128 << 10, still), IsOk());
  EXPECT_EQ(still, noise);
  EXPECT_THAT((*att)->Detach(), IsOk());
}

TEST_F(FilesystemTest, OnlyExt4AndXfsAreFormatted) {
  auto backend = std::make_shared<MemoryBackend>(64 << 20);
  auto att = AttachNew(backend);
  ASSERT_THAT(att, IsOk());
  EXPECT_EQ(FormatIfBlank((*att)->device_path(), "btrfs").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(DetectFilesystem((*att)->device_path()),
              IsOkAndHolds(std::string()));
  EXPECT_THAT((*att)->Detach(), IsOk());
}

TEST_F(FilesystemTest, UnmountIsIdempotent) {
  const std::string target = dir_->path() + "/mnt";
  EXPECT_THAT(Unmount(target), IsOk());  // Does not even exist.
  ASSERT_EQ(mkdir(target.c_str(), 0700), 0);
  EXPECT_THAT(Unmount(target), IsOk());  // Not mounted.
  ASSERT_THAT(BindMount(dir_->path(), target, false), IsOk());
  EXPECT_THAT(IsMountPoint(target), IsOkAndHolds(true));
  EXPECT_THAT(Unmount(target), IsOk());
  EXPECT_THAT(IsMountPoint(target), IsOkAndHolds(false));
  EXPECT_THAT(Unmount(target), IsOk());
}

TEST_F(FilesystemTest, ReadOnlyBindRefusesWrites) {
  const std::string source = dir_->path() + "/source";
  const std::string target = dir_->path() + "/bind";
  ASSERT_EQ(mkdir(source.c_str(), 0700), 0);
  std::ofstream(source + "/existing") << "x";
  ASSERT_THAT(BindMount(source, target, true), IsOk());
  EXPECT_THAT(BindMount(source, target, true), IsOk());  // Idempotent.

  errno = 0;
  EXPECT_LT(
      open((target + "/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600), 0);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_LT(open((target + "/existing").c_str(), O_WRONLY | O_CLOEXEC), 0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(ReadFile(target + "/existing"), "x");
  // The source itself stays writable.
  EXPECT_TRUE(static_cast<bool>(std::ofstream(source + "/more") << "y"));

  // Another source on the same target is refused.
  EXPECT_EQ(BindMount(dir_->path(), target, true).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(Unmount(target), IsOk());
}

TEST_F(FilesystemTest, MountRefusesAnotherDeviceOnTheSameTarget) {
  auto a = AttachNew(std::make_shared<MemoryBackend>(64 << 20));
  auto b = AttachNew(std::make_shared<MemoryBackend>(64 << 20));
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT(FormatIfBlank((*a)->device_path(), "ext4"), IsOk());
  ASSERT_THAT(FormatIfBlank((*b)->device_path(), "ext4"), IsOk());
  const std::string target = dir_->path() + "/mnt";
  ASSERT_THAT(Mount((*a)->device_path(), target, "ext4", Options{}, true),
              IsOk());
  EXPECT_EQ(Mount((*b)->device_path(), target, "ext4", Options{}, false).code(),
            absl::StatusCode::kAlreadyExists);
  errno = 0;
  EXPECT_LT(open((target + "/f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600),
            0);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(
      Mount((*a)->device_path(), target, "ext4", Options{"exec"}, false).code(),
      absl::StatusCode::kInvalidArgument);
  ASSERT_THAT(Unmount(target), IsOk());
  EXPECT_THAT((*a)->Detach(), IsOk());
  EXPECT_THAT((*b)->Detach(), IsOk());
}

}  // namespace
}  // namespace juke::node
