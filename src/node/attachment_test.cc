#include "src/node/attachment.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "src/node/block_backend.h"
#include "src/node/exec.h"
#include "src/node/filesystem.h"
#include "src/node/loop_device.h"
#include "src/node/mountinfo.h"
#include "src/node/test_util.h"

#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace juke::node {
namespace {

using juke::testing::IsOk;
using juke::testing::IsOkAndHolds;
using juke::testing::Subprocess;
using juke::testing::SubprocessOptions;
using juke::testing::TempDir;
using testing::AlignedBuffer;
using ::testing::IsEmpty;
using testing::Leftovers;
using testing::MissingFacility;
using testing::RandomBytes;

constexpr uint64_t kSize = 64 << 20;

int LoopNumber(absl::string_view device) {
  int number = -1;
  absl::ConsumePrefix(&device, "/dev/loop");
  EXPECT_TRUE(absl::SimpleAtoi(device, &number)) << device;
  return number;
}

class AttachmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string missing = MissingFacility();
    if (!missing.empty()) GTEST_SKIP() << "FUSE or loop missing: " << missing;
    auto dir = TempDir::Create("attachment-test");
    ASSERT_THAT(dir, IsOk());
    dir_ = *std::move(dir);
    state_dir_ = dir_->path() + "/state";
  }

  void TearDown() override {
    if (dir_ == nullptr) return;
    // Whatever a failed test left, and then the proof that nothing is.
    (void)umount2((dir_->path() + "/mnt").c_str(), MNT_DETACH);
    (void)CleanupStale(state_dir_);
    EXPECT_THAT(Leftovers(dir_->path()), IsEmpty());
  }

  std::unique_ptr<TempDir> dir_;
  std::string state_dir_;
};

TEST_F(AttachmentTest, DeviceServesBackendWithDirectIo) {
  auto backend = std::make_shared<MemoryBackend>(kSize);
  auto att = Attachment::Attach(backend, state_dir_);
  ASSERT_THAT(att, IsOk());
  const std::string device = (*att)->device_path();

  struct stat st {};
  ASSERT_EQ(stat(device.c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  const int fd = open(device.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  uint64_t bytes = 0;
  ASSERT_EQ(ioctl(fd, BLKGETSIZE64, &bytes), 0);
  EXPECT_EQ(bytes, kSize);

  // What the attachment reports is what the kernel does.
  EXPECT_THAT(LoopDirectIo(LoopNumber(device)),
              IsOkAndHolds((*att)->direct_io()));
  RecordProperty("loopDirectIO", (*att)->direct_io() ? "1" : "0");

  struct Extent {
    uint64_t offset;
    size_t length;
  };
  for (const Extent& e : std::vector<Extent>{{0, 4096},
                                             {uint64_t{4096} * 5, 8192},
                                             {(1 << 20) + 8192, 3 << 20},
                                             {kSize - 4096, 4096}}) {
    const std::vector<uint8_t> data = RandomBytes(e.length, e.offset);
    AlignedBuffer out(e.length);
    std::memcpy(out.data(), data.data(), e.length);
    ASSERT_EQ(pwrite(fd, out.data(), e.length, static_cast<off_t>(e.offset)),
              static_cast<ssize_t>(e.length))
        << std::strerror(errno);
    AlignedBuffer in(e.length);
    ASSERT_EQ(pread(fd, in.data(), e.length, static_cast<off_t>(e.offset)),
              static_cast<ssize_t>(e.length));
    EXPECT_EQ(std::memcmp(in.data(), data.data(), e.length), 0)
        << "device at " << e.offset;
    std::vector<uint8_t> stored(e.length);
    ASSERT_THAT(backend->ReadAt(e.offset, stored), IsOk());
    EXPECT_EQ(stored, data) << "backend at " << e.offset;
  }

  // A flush of the device reaches the backend.
  const int flushes = backend->flush_count();
  ASSERT_EQ(fsync(fd), 0);
  EXPECT_GT(backend->flush_count(), flushes);
  close(fd);

  ASSERT_THAT((*att)->Detach(), IsOk());
  EXPECT_FALSE(std::filesystem::exists((*att)->dir()));
  EXPECT_THAT(Leftovers(dir_->path()), IsEmpty());
}

TEST_F(AttachmentTest, BackendErrorReachesDeviceUserAsEio) {
  auto backend = std::make_shared<MemoryBackend>(kSize);
  auto att = Attachment::Attach(backend, state_dir_);
  ASSERT_THAT(att, IsOk());
  const int fd =
      open((*att)->device_path().c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  AlignedBuffer buffer(4096);
  std::memset(buffer.data(), 0xab, buffer.size());

  backend->SetFault(absl::FailedPreconditionError("fenced by a newer writer"));
  errno = 0;
  EXPECT_EQ(pwrite(fd, buffer.data(), buffer.size(), 0), -1);
  EXPECT_EQ(errno, EIO);
  errno = 0;
  EXPECT_EQ(pread(fd, buffer.data(), buffer.size(), 0), -1);
  EXPECT_EQ(errno, EIO);

  backend->SetFault(absl::OkStatus());
  EXPECT_EQ(pwrite(fd, buffer.data(), buffer.size(), 0), 4096);
  close(fd);
  EXPECT_THAT((*att)->Detach(), IsOk());
}

TEST_F(AttachmentTest, ReadOnlyAttachmentRefusesWrites) {
  auto backend = std::make_shared<MemoryBackend>(kSize);
  const std::vector<uint8_t> data = RandomBytes(4096, 3);
  ASSERT_THAT(backend->WriteAt(0, data), IsOk());
  AttachOptions options;
  options.read_only = true;
  auto att = Attachment::Attach(backend, state_dir_, options);
  ASSERT_THAT(att, IsOk());
  const std::string device = (*att)->device_path();

  AlignedBuffer buffer(4096);
  const int writer = open(device.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (writer >= 0) {
    EXPECT_EQ(pwrite(writer, buffer.data(), buffer.size(), 0), -1);
    close(writer);
  }
  const int reader = open(device.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  ASSERT_EQ(pread(reader, buffer.data(), buffer.size(), 0), 4096);
  EXPECT_EQ(std::memcmp(buffer.data(), data.data(), data.size()), 0);
  close(reader);
  std::vector<uint8_t> stored(4096);
  ASSERT_THAT(backend->ReadAt(0, stored), IsOk());
  EXPECT_EQ(stored, data);
  EXPECT_THAT((*att)->Detach(), IsOk());
}

TEST_F(AttachmentTest, DetachRefusedWhileMountedThenSucceeds) {
  auto backend = std::make_shared<MemoryBackend>(kSize);
  auto att = Attachment::Attach(backend, state_dir_);
  ASSERT_THAT(att, IsOk());
  const std::string device = (*att)->device_path();
  ASSERT_THAT(FormatIfBlank(device, "ext4"), IsOk());
  const std::string target = dir_->path() + "/mnt";
  ASSERT_THAT(Mount(device, target, "ext4", {}, false), IsOk());

  EXPECT_EQ((*att)->Detach().code(), absl::StatusCode::kFailedPrecondition);
  // Still fully working.
  std::ofstream(target + "/file") << "still here";
  ASSERT_THAT(Unmount(target), IsOk());
  EXPECT_THAT((*att)->Detach(), IsOk());
}

// Grows a mounted `fstype` file system by growing its volume.
void GrowMounted(const std::string& dir, const std::string& state_dir,
                 const std::string& fstype, uint64_t size) {
  auto file = FileBackend::Open(dir + "/backing", size);
  ASSERT_THAT(file, IsOk());
  auto att = Attachment::Attach(std::shared_ptr<BlockBackend>(std::move(*file)),
                                state_dir);
  ASSERT_THAT(att, IsOk());
  const std::string device = (*att)->device_path();
  ASSERT_THAT(FormatIfBlank(device, fstype), IsOk());
  const std::string target = dir + "/mnt";
  ASSERT_THAT(Mount(device, target, fstype, {}, false), IsOk());
  struct statvfs before {};
  ASSERT_EQ(statvfs(target.c_str(), &before), 0);

  EXPECT_EQ((*att)->Resize(size / 2).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_THAT((*att)->Resize(2 * size), IsOk());
  uint64_t bytes = 0;
  const int fd = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ioctl(fd, BLKGETSIZE64, &bytes), 0);
  close(fd);
  EXPECT_EQ(bytes, 2 * size);
  EXPECT_THAT(GrowFilesystem(device, target, fstype), IsOk());
  struct statvfs after {};
  ASSERT_EQ(statvfs(target.c_str(), &after), 0);
  EXPECT_GT(after.f_blocks * after.f_frsize,
            before.f_blocks * before.f_frsize + size / 2);

  ASSERT_THAT(Unmount(target), IsOk());
  EXPECT_THAT((*att)->Detach(), IsOk());
}

TEST_F(AttachmentTest, ResizeGrowsDeviceAndXfsOnline) {
  GrowMounted(dir_->path(), state_dir_, "xfs", 320 << 20);
}

TEST_F(AttachmentTest, ResizeGrowsDeviceAndExt4Online) {
  // The kernel lets only CAP_SYS_RESOURCE grow a mounted ext4.
  std::ifstream status("/proc/self/status");
  std::string line;
  uint64_t caps = 0;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "CapEff:")) {
      (void)absl::SimpleHexAtoi(absl::StripAsciiWhitespace(rest), &caps);
    }
  }
  if ((caps & (uint64_t{1} << 24)) == 0) {
    GTEST_SKIP() << "online ext4 growth needs CAP_SYS_RESOURCE";
  }
  GrowMounted(dir_->path(), state_dir_, "ext4", 64 << 20);
}

TEST_F(AttachmentTest, FioVerifiesDataThroughFileBackedDevice) {
  const std::vector<std::string> probe = {"fio", "--version"};
  if (!RunCommand(probe, absl::Seconds(10)).ok()) {
    GTEST_SKIP() << "fio is not installed";
  }
  auto backend = FileBackend::Open(dir_->path() + "/backing", kSize);
  ASSERT_THAT(backend, IsOk());
  auto att = Attachment::Attach(
      std::shared_ptr<BlockBackend>(std::move(*backend)), state_dir_);
  ASSERT_THAT(att, IsOk());
  const std::vector<std::string> argv = {
      "fio",
      "--name=verify",
      absl::StrCat("--filename=", (*att)->device_path()),
      "--direct=1",
      "--ioengine=libaio",
      "--iodepth=16",
      "--rw=randwrite",
      "--bs=4k",
      "--size=32M",
      "--verify=crc32c",
      "--do_verify=1",
      "--verify_fatal=1",
      "--randrepeat=0",
      "--output-format=terse"};
  auto result = RunCommand(argv, absl::Seconds(60));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->exit_code, 0) << result->out << result->err;
  EXPECT_THAT((*att)->Detach(), IsOk());
}

std::string HelperPath() {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() /
          "node_attach_helper")
      .string();
}

// Starts the helper and waits until it has attached; returns the device.
std::string StartOwner(const std::string& state_dir, const std::string& dir,
                       std::unique_ptr<Subprocess>& owner) {
  const std::string ready = dir + "/ready";
  SubprocessOptions options;
  options.argv = {HelperPath(), state_dir, ready};
  options.log_path = dir + "/helper.log";
  auto started = Subprocess::Start(options);
  EXPECT_THAT(started, IsOk());
  if (!started.ok()) return "";
  owner = *std::move(started);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline && owner->IsRunning()) {
    std::ifstream in(ready);
    std::string device;
    if (in >> device) return device;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ADD_FAILURE() << "helper did not attach: " << owner->LogTail();
  return "";
}

TEST_F(AttachmentTest, SigtermMakesOwnerDetachEverything) {
  std::unique_ptr<Subprocess> owner;
  const std::string device = StartOwner(state_dir_, dir_->path(), owner);
  ASSERT_FALSE(device.empty());
  ASSERT_THAT(Leftovers(dir_->path()), ::testing::SizeIs(2));

  auto exit = owner->Terminate(absl::Seconds(20));
  ASSERT_THAT(exit, IsOk());
  EXPECT_EQ(exit->exit_code, 0) << owner->LogTail();
  EXPECT_THAT(Leftovers(dir_->path()), IsEmpty());
  EXPECT_FALSE(LoopBackingFile(LoopNumber(device)).ok() &&
               absl::StartsWith(*LoopBackingFile(LoopNumber(device)),
                                CanonicalPath(state_dir_)));
}

TEST_F(AttachmentTest, KilledOwnerLeavesDeadMountThatCleanupStaleRemoves) {
  std::unique_ptr<Subprocess> owner;
  const std::string device = StartOwner(state_dir_, dir_->path(), owner);
  ASSERT_FALSE(device.empty());
  // A user of the device (like a mounted file system) keeps the loop alive.
  const int user = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(user, 0);

  ASSERT_THAT(owner->Kill(SIGKILL), IsOk());
  ASSERT_THAT(owner->Wait(absl::Seconds(10)), IsOk());

  // The FUSE mount is dead but still there, and the device fails I/O.
  auto mounts = ReadMountInfo();
  ASSERT_THAT(mounts, IsOk());
  std::string fuse_dir;
  for (const MountEntry& m : *mounts) {
    if (absl::StartsWith(m.mount_point, CanonicalPath(state_dir_))) {
      fuse_dir = m.mount_point;
    }
  }
  ASSERT_FALSE(fuse_dir.empty());
  errno = 0;
  EXPECT_LT(open((fuse_dir + "/volume").c_str(), O_RDONLY | O_CLOEXEC), 0);
  EXPECT_EQ(errno, ENOTCONN);
  std::vector<uint8_t> buffer(4096);
  EXPECT_EQ(pread(user, buffer.data(), buffer.size(), kSize / 2), -1);

  ASSERT_THAT(CleanupStale(state_dir_), IsOk());
  close(user);
  // The loop device goes at its last close, which was just now.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!Leftovers(dir_->path()).empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(Leftovers(dir_->path()), IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(fuse_dir));
}

TEST_F(AttachmentTest, KilledOwnerWithIdleDeviceLosesLoopByAutoclear) {
  std::unique_ptr<Subprocess> owner;
  const std::string device = StartOwner(state_dir_, dir_->path(), owner);
  ASSERT_FALSE(device.empty());
  ASSERT_THAT(owner->Kill(SIGKILL), IsOk());
  ASSERT_THAT(owner->Wait(absl::Seconds(10)), IsOk());

  // Nothing held the device: the kernel detached it with the owner's last
  // descriptor. Only the dead FUSE mount remains.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::vector<std::string> left = Leftovers(dir_->path());
  while (left.size() != 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    left = Leftovers(dir_->path());
  }
  ASSERT_THAT(left, ::testing::ElementsAre(::testing::StartsWith("mount ")));

  ASSERT_THAT(CleanupStale(state_dir_), IsOk());
  EXPECT_THAT(Leftovers(dir_->path()), IsEmpty());
}

}  // namespace
}  // namespace juke::node
