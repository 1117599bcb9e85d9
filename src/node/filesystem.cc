#include "src/node/filesystem.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/node/exec.h"
#include "src/node/mountinfo.h"

namespace juke::node {
namespace {

constexpr uint64_t kScanBytes = 1 << 20;
constexpr absl::Duration kProbeTimeout = absl::Seconds(60);
constexpr absl::Duration kMkfsTimeout = absl::Minutes(10);

Logger Log() {
  static const Logger* const log = new Logger(GetLogger("node"));
  return *log;
}

bool Supported(absl::string_view fstype) {
  return fstype == "ext4" || fstype == "xfs";
}

// Whether the first and last kScanBytes of `device` are all zeros.
absl::StatusOr<bool> EdgesAreZero(const std::string& device) {
  const int fd = open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", device));
  uint64_t size = 0;
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
    const int err = errno;
    close(fd);
    return ErrnoToStatus(err, absl::StrCat("size of ", device));
  }
  std::vector<uint8_t> buffer(kScanBytes);
  bool zero = true;
  for (uint64_t start :
       {uint64_t{0}, size > kScanBytes ? size - kScanBytes : uint64_t{0}}) {
    const size_t want = static_cast<size_t>(std::min(size, kScanBytes));
    size_t done = 0;
    while (done < want) {
      const ssize_t n = pread(fd, buffer.data() + done, want - done,
                              static_cast<off_t>(start + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        close(fd);
        return ErrnoToStatus(err, absl::StrCat("read ", device));
      }
      done += static_cast<size_t>(n);
    }
    zero &= std::all_of(buffer.begin(), buffer.begin() + want,
                        [](uint8_t b) { return b == 0; });
  }
  close(fd);
  return zero;
}

}  // namespace

absl::StatusOr<std::string> DetectFilesystem(absl::string_view device) {
  const std::string dev(device);
  // Low-level probing (-p) reads the device itself, not blkid's cache.
  const std::vector<std::string> argv = {"blkid", "-p", "-o", "export", dev};
  JUKE_ASSIGN_OR_RETURN(CommandResult result, RunCommand(argv, kProbeTimeout));
  switch (result.exit_code) {
    case 0: {
      std::string type;
      std::string table;
      for (absl::string_view line : absl::StrSplit(result.out, '\n')) {
        if (absl::ConsumePrefix(&line, "TYPE=")) type = std::string(line);
        if (absl::ConsumePrefix(&line, "PTTYPE=")) table = std::string(line);
      }
      if (!type.empty()) return type;
      if (!table.empty()) return table;
      return std::string("unknown");
    }
    case 2: {
      // No known signature. Only zeros count as blank: a device holding
      // data of a kind blkid does not know is not ours to format.
      JUKE_ASSIGN_OR_RETURN(bool zero, EdgesAreZero(dev));
      return zero ? std::string() : std::string("unknown");
    }
    case 8:  // Several signatures: ambivalent, and certainly not blank.
      return std::string("unknown");
    default:
      return absl::InternalError(absl::StrCat(
          "blkid ", dev, " exited with ", result.exit_code, ": ", result.err));
  }
}

absl::Status FormatIfBlank(absl::string_view device, absl::string_view fstype) {
  if (!Supported(fstype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot format as ", fstype, "; ext4 or xfs only"));
  }
  const std::string dev(device);
  JUKE_ASSIGN_OR_RETURN(std::string found, DetectFilesystem(dev));
  if (found == fstype) return absl::OkStatus();
  if (!found.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        dev, " holds ", found, "; refusing to format it as ", fstype));
  }

  // No -F / -f: the tools' own checks stay on as a second line of defence.
  // No discard: the backend has no discard, and it would only be slow.
  std::vector<std::string> argv;
  if (fstype == "ext4") {
    argv = {"mkfs.ext4", "-q", "-E", "lazy_itable_init=1,nodiscard", dev};
  } else {
    argv = {"mkfs.xfs", "-q", "-K", dev};
  }
  JUKE_LOG_INFO(Log(), "Formatting blank device device={} fstype={}", dev,
                fstype);
  JUKE_RETURN_IF_ERROR(RunCommandChecked(argv, kMkfsTimeout).status());

  JUKE_ASSIGN_OR_RETURN(std::string made, DetectFilesystem(dev));
  if (made != fstype) {
    return absl::InternalError(
        absl::StrCat(dev, " reads as '", made, "' after mkfs ", fstype));
  }
  return absl::OkStatus();
}

absl::StatusOr<MountParams> ParseMountOptions(
    absl::string_view fstype, std::span<const std::string> options,
    bool read_only) {
  struct FlagOption {
    absl::string_view name;
    unsigned long set;    // NOLINT(google-runtime-int)
    unsigned long clear;  // NOLINT(google-runtime-int)
  };
  static constexpr FlagOption kFlags[] = {
      {"ro", MS_RDONLY, 0},
      {"rw", 0, MS_RDONLY},
      {"noatime", MS_NOATIME, MS_RELATIME | MS_STRICTATIME},
      {"nodiratime", MS_NODIRATIME, 0},
      {"relatime", MS_RELATIME, MS_NOATIME | MS_STRICTATIME},
      {"strictatime", MS_STRICTATIME, MS_NOATIME | MS_RELATIME},
      {"lazytime", MS_LAZYTIME, 0},
      {"nolazytime", 0, MS_LAZYTIME},
      {"sync", MS_SYNCHRONOUS, 0},
      {"dirsync", MS_DIRSYNC, 0},
      {"nosuid", MS_NOSUID, 0},
      {"nodev", MS_NODEV, 0},
      {"noexec", MS_NOEXEC, 0},
  };
  static constexpr absl::string_view kCommonData[] = {"discard", "nodiscard"};
  static constexpr absl::string_view kExt4Data[] = {
      "data=ordered", "data=journal", "data=writeback", "errors=remount-ro",
      "errors=continue"};
  static constexpr absl::string_view kXfsData[] = {"nouuid", "inode64",
                                                   "largeio", "noquota"};
  if (!Supported(fstype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported file system ", fstype));
  }

  MountParams params;
  std::vector<std::string> data;
  bool asked_rw = false;
  for (const std::string& element : options) {
    for (absl::string_view option : absl::StrSplit(element, ',')) {
      if (option.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("empty mount option in '", element, "'"));
      }
      bool known = false;
      for (const FlagOption& flag : kFlags) {
        if (option != flag.name) continue;
        params.flags = (params.flags & ~flag.clear) | flag.set;
        asked_rw |= option == "rw";
        known = true;
      }
      auto listed = [&](std::span<const absl::string_view> list) {
        return std::find(list.begin(), list.end(), option) != list.end();
      };
      if (!known &&
          (listed(kCommonData) || (fstype == "ext4" && listed(kExt4Data)) ||
           (fstype == "xfs" && listed(kXfsData)))) {
        data.emplace_back(option);
        known = true;
      }
      absl::string_view seconds = option;
      int commit = 0;
      if (!known && fstype == "ext4" &&
          absl::ConsumePrefix(&seconds, "commit=") &&
          absl::SimpleAtoi(seconds, &commit) && commit >= 1 && commit <= 300 &&
          seconds == absl::StrCat(commit)) {
        data.emplace_back(option);
        known = true;
      }
      if (!known) {
        return absl::InvalidArgumentError(absl::StrCat(
            "mount option '", option, "' is not allowed for ", fstype));
      }
    }
  }
  if (read_only) {
    if (asked_rw) {
      return absl::InvalidArgumentError("rw asked for a read-only mount");
    }
    params.flags |= MS_RDONLY;
  }
  params.data = absl::StrJoin(data, ",");
  return params;
}

absl::Status Mount(absl::string_view device, absl::string_view target,
                   absl::string_view fstype,
                   std::span<const std::string> options, bool read_only) {
  JUKE_ASSIGN_OR_RETURN(MountParams params,
                        ParseMountOptions(fstype, options, read_only));
  const std::string dev(device);
  const std::string where = CanonicalPath(target);
  struct stat dev_stat {};
  if (stat(dev.c_str(), &dev_stat) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("stat ", dev));
  }

  // Idempotent: the same device already mounted there is success.
  JUKE_ASSIGN_OR_RETURN(std::vector<MountEntry> mounts, ReadMountInfo());
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
    if (it->mount_point != where) continue;
    if (S_ISBLK(dev_stat.st_mode) && it->device == dev_stat.st_rdev) {
      return absl::OkStatus();
    }
    return absl::AlreadyExistsError(absl::StrCat(
        where, " already has ", it->source, " (", it->fstype, ") mounted"));
  }

  std::error_code ec;
  std::filesystem::create_directories(where, ec);
  if (ec) {
    return ErrnoToStatus(ec.value(), absl::StrCat("create ", where));
  }
  const std::string type(fstype);
  if (mount(dev.c_str(), where.c_str(), type.c_str(), params.flags,
            params.data.empty() ? nullptr : params.data.c_str()) != 0) {
    return ErrnoToStatus(
        errno, absl::StrCat("mount ", dev, " at ", where, " as ", type, " (",
                            params.data, ")"));
  }
  JUKE_LOG_INFO(Log(), "Mounted device={} target={} fstype={} readOnly={}", dev,
                where, type, read_only);
  return absl::OkStatus();
}

absl::Status BindMount(absl::string_view source, absl::string_view target,
                       bool read_only) {
  const std::string src(source);
  const std::string where = CanonicalPath(target);
  struct stat src_stat {};
  if (stat(src.c_str(), &src_stat) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("stat ", src));
  }

  JUKE_ASSIGN_OR_RETURN(bool mounted, IsMountPoint(where));
  struct stat target_stat {};
  if (mounted) {
    if (stat(where.c_str(), &target_stat) == 0 &&
        target_stat.st_dev == src_stat.st_dev &&
        target_stat.st_ino == src_stat.st_ino) {
      return absl::OkStatus();
    }
    return absl::AlreadyExistsError(
        absl::StrCat(where, " already has something else mounted"));
  }

  // The target must be of the source's kind: a directory for a directory,
  // a file for anything else.
  if (stat(where.c_str(), &target_stat) != 0) {
    if (errno != ENOENT) {
      return ErrnoToStatus(errno, absl::StrCat("stat ", where));
    }
    if (S_ISDIR(src_stat.st_mode)) {
      if (mkdir(where.c_str(), 0750) != 0 && errno != EEXIST) {
        return ErrnoToStatus(errno, absl::StrCat("mkdir ", where));
      }
    } else {
      const int fd = open(where.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
      if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("create ", where));
      close(fd);
    }
  }

  if (mount(src.c_str(), where.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ErrnoToStatus(errno,
                         absl::StrCat("bind mount ", src, " at ", where));
  }
  // MS_RDONLY is ignored on the first bind; it takes a remount.
  if (read_only && mount(nullptr, where.c_str(), nullptr,
                         MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    absl::Status status =
        ErrnoToStatus(errno, absl::StrCat("remount read-only ", where));
    umount2(where.c_str(), UMOUNT_NOFOLLOW);
    return status;
  }
  JUKE_LOG_INFO(Log(), "Bind mounted source={} target={} readOnly={}", src,
                where, read_only);
  return absl::OkStatus();
}

absl::Status Unmount(absl::string_view target) {
  const std::string where = CanonicalPath(target);
  // Mounts may be stacked; take them all off.
  for (int i = 0; i < 16; ++i) {
    JUKE_ASSIGN_OR_RETURN(bool mounted, IsMountPoint(where));
    if (!mounted) return absl::OkStatus();
    if (umount2(where.c_str(), UMOUNT_NOFOLLOW) != 0) {
      const int err = errno;
      if (err == EINVAL || err == ENOENT) return absl::OkStatus();
      if (err == EBUSY) {
        return absl::FailedPreconditionError(
            absl::StrCat(where, " is busy; not unmounted"));
      }
      return ErrnoToStatus(err, absl::StrCat("umount ", where));
    }
    JUKE_LOG_INFO(Log(), "Unmounted target={}", where);
  }
  return absl::InternalError(absl::StrCat(where, " is still mounted"));
}

absl::Status GrowFilesystem(absl::string_view device,
                            absl::string_view mountpoint,
                            absl::string_view fstype) {
  std::vector<std::string> argv;
  if (fstype == "ext4") {
    argv = {"resize2fs", std::string(device)};
  } else if (fstype == "xfs") {
    argv = {"xfs_growfs", std::string(mountpoint)};
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot grow ", fstype, "; ext4 or xfs only"));
  }
  JUKE_RETURN_IF_ERROR(RunCommandChecked(argv, kMkfsTimeout).status());
  JUKE_LOG_INFO(Log(), "File system grown device={} mountpoint={} fstype={}",
                device, mountpoint, fstype);
  return absl::OkStatus();
}

}  // namespace juke::node
