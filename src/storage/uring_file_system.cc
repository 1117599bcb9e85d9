#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"

#include "src/common/checksum.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/storage/file_system.h"
#include "src/storage/ring_pool.h"

namespace juke::storage {
namespace {

// How often an I/O that keeps reporting EINTR or EAGAIN is resubmitted.
constexpr int kMaxRetries = 100;

bool Aligned(uint64_t value) { return value % kBlockSize == 0; }

bool Aligned(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % kBlockSize == 0;
}

// This boot of this machine, or empty when the kernel does not say.
const std::string& BootId() {
  static const std::string* const id = [] {
    std::string text;
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[64];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n > 0) text.assign(buf, static_cast<size_t>(n));
      close(fd);
    }
    return new std::string(absl::StripAsciiWhitespace(text));
  }();
  return *id;
}

std::string Parent(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

int RetryOnEintr(const std::function<int()>& call) {
  int r;
  do {
    r = call();
  } while (r < 0 && errno == EINTR);
  return r;
}

// fsyncs a directory so that entries created or renamed in it are durable.
absl::Status SyncDir(const std::string& dir) {
  int fd =
      RetryOnEintr([&] { return open(dir.c_str(), O_RDONLY | O_DIRECTORY); });
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open dir ", dir));
  int r = RetryOnEintr([&] { return fsync(fd); });
  int err = errno;
  close(fd);
  if (r < 0) return ErrnoToStatus(err, absl::StrCat("fsync dir ", dir));
  return absl::OkStatus();
}

// A kBlockSize-aligned heap buffer, for direct I/O from unaligned memory.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t size)
      : data(static_cast<uint8_t*>(std::aligned_alloc(kBlockSize, size))) {}
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data;
};

class UringFile : public File {
 public:
  UringFile(std::string path, int fd, bool direct, RingPool* rings)
      : path_(std::move(path)), fd_(fd), direct_(direct), rings_(rings) {}

  ~UringFile() override { close(fd_); }

  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    JUKE_RETURN_IF_ERROR(CheckDirect("read", offset, buf.size()));
    if (!direct_ || Aligned(buf.data())) return ReadInto(offset, buf);

    AlignedBuffer bounce(buf.size());
    if (bounce.data == nullptr) return OutOfMemory(buf.size());
    JUKE_RETURN_IF_ERROR(ReadInto(offset, {bounce.data, buf.size()}));
    std::memcpy(buf.data(), bounce.data, buf.size());
    return absl::OkStatus();
  }

  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    JUKE_RETURN_IF_ERROR(CheckDirect("write", offset, data.size()));
    if (!direct_ || Aligned(data.data())) return WriteFrom(offset, data);

    AlignedBuffer bounce(data.size());
    if (bounce.data == nullptr) return OutOfMemory(data.size());
    std::memcpy(bounce.data, data.data(), data.size());
    return WriteFrom(offset, {bounce.data, data.size()});
  }

  absl::Status Sync() override {
    int r = Submit(RingPool::Op::kDataSync, nullptr, 0, 0);
    if (r < 0) return ErrnoToStatus(-r, absl::StrCat("fdatasync ", path_));
    return absl::OkStatus();
  }

 private:
  absl::Status CheckDirect(absl::string_view what, uint64_t offset,
                           size_t size) const {
    if (!direct_ || (Aligned(offset) && Aligned(size))) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path_, ": offset ", offset, " and size ", size,
                     " must be multiples of ", kBlockSize, " for direct I/O"));
  }

  absl::Status OutOfMemory(size_t size) const {
    return absl::ResourceExhaustedError(absl::StrCat(
        "I/O on ", path_, ": cannot allocate a ", size, "-byte buffer"));
  }

  // Submits one request, resubmitting it while it reports EINTR or EAGAIN.
  int Submit(RingPool::Op op, void* buf, size_t len, uint64_t offset) {
    int r = 0;
    for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
      r = rings_->Run(op, fd_, buf, len, offset);
      if (r != -EINTR && r != -EAGAIN) break;
    }
    return r;
  }

  absl::Status ReadInto(uint64_t offset, std::span<uint8_t> buf) {
    size_t done = 0;
    while (done < buf.size()) {
      int r = Submit(RingPool::Op::kRead, buf.data() + done, buf.size() - done,
                     offset + done);
      if (r < 0) {
        return ErrnoToStatus(
            -r, absl::StrCat("read ", path_, " at ", offset + done));
      }
      // End of file. A direct read is short only there, and may stop off
      // the block grid, so the rest is not read again either way.
      if (r == 0 || (direct_ && !Aligned(done + r))) {
        std::memset(buf.data() + done + r, 0, buf.size() - done - r);
        return absl::OkStatus();
      }
      done += r;
    }
    return absl::OkStatus();
  }

  absl::Status WriteFrom(uint64_t offset, std::span<const uint8_t> data) {
    size_t done = 0;
    while (done < data.size()) {
      // io_uring takes a non-const buffer for writes too; it only reads it.
      int r =
          Submit(RingPool::Op::kWrite, const_cast<uint8_t*>(data.data()) + done,
                 data.size() - done, offset + done);
      // A write that makes no progress would loop forever; the device is
      // treated as failed.
      if (r == 0) r = -EIO;
      if (r < 0) {
        return ErrnoToStatus(
            -r, absl::StrCat("write ", path_, " at ", offset + done));
      }
      done += r;
    }
    return absl::OkStatus();
  }

  const std::string path_;
  const int fd_;
  const bool direct_;
  RingPool* const rings_;
};

class UringFileSystem : public FileSystem {
 public:
  UringFileSystem() : log_(GetLogger("storage")) {}

  absl::StatusOr<std::unique_ptr<File>> OpenFile(
      const std::string& path) override {
    // O_EXCL first, to learn whether the file is new and its directory
    // entry must be made durable.
    bool created = true;
    bool direct = true;
    int fd = OpenWithFallback(path, O_CREAT | O_EXCL, &direct);
    if (fd < 0 && errno == EEXIST) {
      created = false;
      fd = OpenWithFallback(path, 0, &direct);
    }
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));

    auto file = std::make_unique<UringFile>(path, fd, direct, &rings_);
    if (created) JUKE_RETURN_IF_ERROR(SyncDir(Parent(path)));
    return file;
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (unlink(path.c_str()) < 0) {
      return ErrnoToStatus(errno, absl::StrCat("remove ", path));
    }
    return absl::OkStatus();
  }

  absl::Status CreateDirs(const std::string& path) override {
    std::filesystem::path p(path);
    if (std::filesystem::is_directory(p)) return absl::OkStatus();
    if (p.has_parent_path()) {
      JUKE_RETURN_IF_ERROR(CreateDirs(p.parent_path().string()));
    }
    if (mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, absl::StrCat("mkdir ", path));
    }
    return SyncDir(Parent(path));
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) override {
    std::error_code ec;
    std::filesystem::directory_iterator it(path, ec);
    if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("list ", path));
    std::vector<std::string> names;
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
      names.push_back(it->path().filename().string());
    }
    if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("list ", path));
    return names;
  }

  absl::StatusOr<FileSystemStats> Stat(const std::string& path) override {
    struct statvfs st;
    if (statvfs(path.c_str(), &st) < 0) {
      return ErrnoToStatus(errno, absl::StrCat("statvfs ", path));
    }
    FileSystemStats stats;
    stats.capacity_bytes = uint64_t{st.f_blocks} * st.f_frsize;
    stats.available_bytes = uint64_t{st.f_bavail} * st.f_frsize;
    struct stat dev;
    if (!BootId().empty() && stat(path.c_str(), &dev) == 0) {
      stats.filesystem_id = absl::StrCat(BootId(), ":", major(dev.st_dev), ":",
                                         minor(dev.st_dev));
    }
    return stats;
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    int fd = RetryOnEintr([&] { return open(path.c_str(), O_RDONLY); });
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
    std::string contents;
    char buf[4096];
    while (true) {
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        close(fd);
        return ErrnoToStatus(err, absl::StrCat("read ", path));
      }
      if (n == 0) break;
      contents.append(buf, n);
    }
    close(fd);
    return contents;
  }

  absl::Status WriteFile(const std::string& path,
                         absl::string_view contents) override {
    std::string tmp = absl::StrCat(path, ".tmp");
    int fd = RetryOnEintr(
        [&] { return open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644); });
    if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", tmp));
    absl::Status status = WriteAll(fd, tmp, contents);
    if (status.ok() && RetryOnEintr([&] { return fsync(fd); }) < 0) {
      status = ErrnoToStatus(errno, absl::StrCat("fsync ", tmp));
    }
    close(fd);
    if (status.ok() && rename(tmp.c_str(), path.c_str()) < 0) {
      status = ErrnoToStatus(errno, absl::StrCat("rename ", tmp));
    }
    if (!status.ok()) {
      unlink(tmp.c_str());
      return status;
    }
    return SyncDir(Parent(path));
  }

 private:
  static absl::Status WriteAll(int fd, const std::string& path,
                               absl::string_view contents) {
    size_t done = 0;
    while (done < contents.size()) {
      ssize_t n = write(fd, contents.data() + done, contents.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoToStatus(errno, absl::StrCat("write ", path));
      done += n;
    }
    return absl::OkStatus();
  }

  // Opens with O_DIRECT unless the directory is known not to support it;
  // on EINVAL (tmpfs, some overlay file systems) remembers that and opens
  // buffered. Sets *direct to the mode used. Returns -1 with errno set on
  // failure.
  int OpenWithFallback(const std::string& path, int flags, bool* direct) {
    std::string dir = Parent(path);
    {
      absl::MutexLock lock(&mu_);
      *direct = !buffered_dirs_.contains(dir);
    }
    if (*direct) {
      int fd = RetryOnEintr([&] {
        return open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC | flags, 0644);
      });
      if (fd >= 0 || errno != EINVAL) return fd;

      absl::MutexLock lock(&mu_);
      if (buffered_dirs_.insert(dir).second) {
        JUKE_LOG_INFO(
            log_, "Direct I/O not supported, using buffered I/O dir={}", dir);
      }
      *direct = false;
    }
    return RetryOnEintr(
        [&] { return open(path.c_str(), O_RDWR | O_CLOEXEC | flags, 0644); });
  }

  const Logger log_;
  RingPool rings_;
  absl::Mutex mu_;
  std::set<std::string> buffered_dirs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<FileSystem> NewUringFileSystem() {
  return std::make_unique<UringFileSystem>();
}

}  // namespace juke::storage
