#include "src/node/loop_device.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

#include "src/common/logging.h"
#include "src/common/status.h"

namespace juke::node {
namespace {

constexpr int kMaxAttachAttempts = 16;
constexpr absl::Duration kDetachTimeout = absl::Seconds(10);
constexpr absl::Duration kPollInterval = absl::Milliseconds(20);

Logger Log() {
  static const Logger* const log = new Logger(GetLogger("node"));
  return *log;
}

std::string DevicePath(int number) { return absl::StrCat("/dev/loop", number); }

// Reads a sysfs attribute; NotFound if it does not exist.
absl::StatusOr<std::string> ReadSysfs(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, " not found"));
  std::stringstream text;
  text << in.rdbuf();
  return std::string(absl::StripTrailingAsciiWhitespace(text.str()));
}

// Opens /dev/loopN, waiting briefly for devtmpfs to create a new node.
absl::StatusOr<int> OpenLoop(int number, int flags) {
  const std::string path = DevicePath(number);
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (true) {
    const int fd = open(path.c_str(), flags | O_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno != ENOENT || absl::Now() > deadline) {
      return ErrnoToStatus(errno, absl::StrCat("open ", path));
    }
    absl::SleepFor(kPollInterval);
  }
}

// One way of asking for the device's configuration.
struct Attempt {
  bool direct_io;
  uint32_t block_size;
};

// Configures with LOOP_CONFIGURE (kernel 5.8 and later). Returns errno.
int Configure(int loop_fd, int file_fd, const std::string& file,
              const Attempt& attempt, bool read_only) {
  loop_config config{};
  config.fd = static_cast<uint32_t>(file_fd);
  config.block_size = attempt.block_size;
  config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
  if (attempt.direct_io) config.info.lo_flags |= LO_FLAGS_DIRECT_IO;
  if (read_only) config.info.lo_flags |= LO_FLAGS_READ_ONLY;
  std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), file.c_str(),
               LO_NAME_SIZE - 1);
  return ioctl(loop_fd, LOOP_CONFIGURE, &config) == 0 ? 0 : errno;
}

// The pre-5.8 way: bind, then set flags, block size and direct I/O one by
// one. Returns errno of the bind; later steps are best effort.
int ConfigureLegacy(int loop_fd, int file_fd, const std::string& file,
                    const Attempt& attempt) {
  if (ioctl(loop_fd, LOOP_SET_FD, file_fd) != 0) return errno;
  loop_info64 info{};
  info.lo_flags = LO_FLAGS_AUTOCLEAR;
  std::strncpy(reinterpret_cast<char*>(info.lo_file_name), file.c_str(),
               LO_NAME_SIZE - 1);
  if (ioctl(loop_fd, LOOP_SET_STATUS64, &info) != 0) {
    const int err = errno;
    ioctl(loop_fd, LOOP_CLR_FD, 0);
    return err;
  }
  if (ioctl(loop_fd, LOOP_SET_BLOCK_SIZE, attempt.block_size) != 0) {
    JUKE_LOG_WARN(Log(), "Loop block size not set blockSize={} err={}",
                  attempt.block_size, std::strerror(errno));
  }
  if (attempt.direct_io && ioctl(loop_fd, LOOP_SET_DIRECT_IO, 1UL) != 0) {
    JUKE_LOG_WARN(Log(), "Loop direct I/O not enabled err={}",
                  std::strerror(errno));
  }
  return 0;
}

}  // namespace

absl::StatusOr<std::string> LoopBackingFile(int number) {
  return ReadSysfs(
      absl::StrCat("/sys/block/loop", number, "/loop/backing_file"));
}

absl::StatusOr<bool> LoopDirectIo(int number) {
  absl::StatusOr<std::string> dio =
      ReadSysfs(absl::StrCat("/sys/block/loop", number, "/loop/dio"));
  if (!dio.ok()) return dio.status();
  return *dio == "1";
}

absl::StatusOr<std::vector<LoopInfo>> ListLoopDevices() {
  DIR* dir = opendir("/sys/block");
  if (dir == nullptr) return ErrnoToStatus(errno, "open /sys/block");
  std::vector<LoopInfo> loops;
  while (const dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    int number = -1;
    if (!absl::ConsumePrefix(&name, "loop") ||
        !absl::SimpleAtoi(name, &number)) {
      continue;
    }
    absl::StatusOr<std::string> backing = LoopBackingFile(number);
    if (backing.ok()) loops.push_back({number, *std::move(backing)});
  }
  closedir(dir);
  return loops;
}

absl::Status DetachLoopNumber(int number) {
  JUKE_ASSIGN_OR_RETURN(int fd, OpenLoop(number, O_RDONLY));
  const int rc = ioctl(fd, LOOP_CLR_FD, 0);
  const int err = errno;
  close(fd);
  if (rc != 0 && err != ENXIO) {
    return ErrnoToStatus(err, absl::StrCat("detach ", DevicePath(number)));
  }
  return absl::OkStatus();
}

LoopDevice::LoopDevice(int number, int fd, std::string backing_file)
    : number_(number),
      path_(DevicePath(number)),
      backing_file_(std::move(backing_file)),
      fd_(fd) {}

absl::StatusOr<std::unique_ptr<LoopDevice>> LoopDevice::Attach(
    absl::string_view file, LoopOptions options) {
  const std::string name(file);
  const int access = options.read_only ? O_RDONLY : O_RDWR;
  // O_DIRECT on the backing file makes the kernel prefer direct I/O; not
  // every file system allows it, and the loop flag is what counts.
  int file_fd = open(name.c_str(), access | O_CLOEXEC | O_DIRECT);
  if (file_fd < 0 && errno == EINVAL) {
    file_fd = open(name.c_str(), access | O_CLOEXEC);
  }
  if (file_fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", name));

  const int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (control < 0) {
    const int err = errno;
    close(file_fd);
    return ErrnoToStatus(err, "open /dev/loop-control");
  }

  // Most wanted first. EINVAL means the kernel refused this combination.
  std::vector<Attempt> attempts;
  for (bool dio : {options.direct_io, false}) {
    for (uint32_t size : {options.block_size, uint32_t{512}}) {
      Attempt a{dio, size};
      bool seen = false;
      for (const Attempt& b : attempts) {
        seen |= b.direct_io == a.direct_io && b.block_size == a.block_size;
      }
      if (!seen) attempts.push_back(a);
    }
  }

  absl::Status status = absl::UnavailableError("no free loop device");
  int loop_fd = -1;
  int number = -1;
  for (int round = 0; round < kMaxAttachAttempts && loop_fd < 0; ++round) {
    number = ioctl(control, LOOP_CTL_GET_FREE);
    if (number < 0) {
      status = ErrnoToStatus(errno, "LOOP_CTL_GET_FREE");
      break;
    }
    absl::StatusOr<int> fd = OpenLoop(number, access);
    if (!fd.ok()) {
      status = fd.status();
      continue;
    }
    int err = EINVAL;
    for (const Attempt& attempt : attempts) {
      err = Configure(*fd, file_fd, name, attempt, options.read_only);
      if (err != EINVAL) break;
    }
    // LOOP_CONFIGURE unknown (ENOTTY, or EINVAL from old kernels).
    if (err == ENOTTY || err == EINVAL) {
      err = ConfigureLegacy(*fd, file_fd, name, attempts.back());
      if (err == 0 && options.direct_io) {
        ioctl(*fd, LOOP_SET_DIRECT_IO, 1UL);
      }
    }
    if (err == 0) {
      loop_fd = *fd;
      break;
    }
    close(*fd);
    status = ErrnoToStatus(err, absl::StrCat("configure ", DevicePath(number)));
    // EBUSY: another process took this device first; ask for another.
    if (err != EBUSY) break;
  }
  close(control);
  close(file_fd);
  if (loop_fd < 0) return Annotate(status, absl::StrCat("attach ", name));

  // What the kernel made of it, and the backing path as it reports it.
  std::unique_ptr<LoopDevice> loop(
      new LoopDevice(number, loop_fd, LoopBackingFile(number).value_or(name)));
  loop->direct_io_ = LoopDirectIo(number).value_or(false);
  absl::StatusOr<std::string> block_size = ReadSysfs(
      absl::StrCat("/sys/block/loop", number, "/queue/logical_block_size"));
  uint32_t parsed = 512;
  if (block_size.ok() && absl::SimpleAtoi(*block_size, &parsed)) {
    loop->block_size_ = parsed;
  }
  if (options.direct_io && !loop->direct_io_) {
    JUKE_LOG_WARN(Log(),
                  "Loop device uses buffered I/O; direct I/O was refused "
                  "device={} file={}",
                  loop->path_, name);
  }
  JUKE_LOG_INFO(Log(),
                "Loop device attached device={} file={} directIO={} "
                "blockSize={}",
                loop->path_, name, loop->direct_io_, loop->block_size_);
  return loop;
}

LoopDevice::~LoopDevice() {
  if (fd_ < 0) return;
  const absl::Status status = Detach(absl::Seconds(1));
  if (!status.ok()) {
    JUKE_LOG_WARN(Log(), "Loop device not detached device={} err={}", path_,
                  status);
  }
}

absl::Status LoopDevice::Detach(absl::Duration timeout) {
  if (detached_) return absl::OkStatus();
  if (fd_ >= 0) {
    // Modern kernels never say EBUSY here (they defer to the last close);
    // older ones do while someone has the device open.
    const absl::Time deadline = absl::Now() + kDetachTimeout;
    while (ioctl(fd_, LOOP_CLR_FD, 0) != 0) {
      const int err = errno;
      if (err == ENXIO) break;  // Already detached.
      if (err != EBUSY || absl::Now() > deadline) {
        return ErrnoToStatus(err, absl::StrCat("detach ", path_));
      }
      absl::SleepFor(kPollInterval);
    }
    // Our descriptor is the last one unless another user holds the device;
    // closing it lets the kernel tear down.
    close(fd_);
    fd_ = -1;
  }

  // Done once the device no longer points at our file (it may already be
  // reused for another).
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::StatusOr<std::string> backing = LoopBackingFile(number_);
    if (!backing.ok() || *backing != backing_file_) break;
    if (absl::Now() > deadline) {
      return absl::FailedPreconditionError(
          absl::StrCat(path_,
                       " is still in use; the kernel detaches it at its last "
                       "close"));
    }
    absl::SleepFor(kPollInterval);
  }
  detached_ = true;
  JUKE_LOG_INFO(Log(), "Loop device detached device={} file={}", path_,
                backing_file_);
  return absl::OkStatus();
}

absl::Status LoopDevice::RefreshCapacity() {
  if (fd_ < 0) return absl::FailedPreconditionError("detached");
  if (ioctl(fd_, LOOP_SET_CAPACITY, 0) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("LOOP_SET_CAPACITY ", path_));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> LoopDevice::SizeBytes() const {
  if (fd_ < 0) return absl::FailedPreconditionError("detached");
  uint64_t bytes = 0;
  if (ioctl(fd_, BLKGETSIZE64, &bytes) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("BLKGETSIZE64 ", path_));
  }
  return bytes;
}

}  // namespace juke::node
