#include "src/node/attachment.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/node/mountinfo.h"

namespace juke::node {
namespace {

constexpr char kFileName[] = "volume";
constexpr char kDirPrefix[] = "vol-";

Logger Log() {
  static const Logger* const log = new Logger(GetLogger("node"));
  return *log;
}

// Writes back the device's dirty pages and asks for a cache flush down to
// the backend; then fails if someone else holds the device exclusively (a
// mounted file system does).
absl::Status FlushAndCheckIdle(const std::string& device) {
  const int fd = open(device.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
  if (fd < 0 && errno == EBUSY) {
    return absl::FailedPreconditionError(
        absl::StrCat(device, " is mounted or in use; unmount it first"));
  }
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", device));
  absl::Status status;
  if (fsync(fd) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("fsync ", device));
  } else if (ioctl(fd, BLKFLSBUF, 0) != 0) {
    status = ErrnoToStatus(errno, absl::StrCat("BLKFLSBUF ", device));
  }
  close(fd);
  return status;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Attachment>> Attachment::Attach(
    const std::shared_ptr<BlockBackend>& backend, absl::string_view state_dir,
    AttachOptions options) {
  if (backend == nullptr) return absl::InvalidArgumentError("no backend");
  std::error_code ec;
  std::filesystem::create_directories(std::string(state_dir), ec);
  if (ec) {
    return ErrnoToStatus(ec.value(), absl::StrCat("create ", state_dir));
  }
  std::string pattern =
      absl::StrCat(CanonicalPath(state_dir), "/", kDirPrefix, "XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    return ErrnoToStatus(errno, absl::StrCat("mkdtemp ", pattern));
  }
  std::unique_ptr<Attachment> att(new Attachment(pattern, backend));

  FuseExportOptions fuse_options;
  fuse_options.threads = options.fuse_threads;
  fuse_options.read_only = options.read_only;
  absl::StatusOr<std::unique_ptr<FuseExport>> fx =
      FuseExport::Start(att->dir_, kFileName, backend, fuse_options);
  if (!fx.ok()) {
    rmdir(att->dir_.c_str());
    att->detached_ = true;
    return fx.status();
  }
  att->export_ = *std::move(fx);

  LoopOptions loop_options;
  loop_options.direct_io = options.direct_io;
  loop_options.read_only = options.read_only;
  absl::StatusOr<std::unique_ptr<LoopDevice>> loop =
      LoopDevice::Attach(att->export_->file_path(), loop_options);
  if (!loop.ok()) {
    (void)att->Detach();
    return loop.status();
  }
  att->loop_ = *std::move(loop);
  att->device_path_ = att->loop_->path();
  att->direct_io_ = att->loop_->direct_io();
  JUKE_LOG_INFO(Log(), "Volume attached device={} dir={} directIO={}",
                att->device_path_, att->dir_, att->direct_io_);
  return att;
}

Attachment::~Attachment() {
  if (detached_) return;
  const absl::Status status = Detach();
  if (status.ok()) return;
  JUKE_LOG_ERROR(Log(),
                 "Volume torn down while in use; its users get EIO "
                 "device={} err={}",
                 device_path_, status);
  if (loop_ != nullptr) (void)loop_->Detach(absl::ZeroDuration());
  loop_.reset();
  export_.reset();
  rmdir(dir_.c_str());
}

absl::Status Attachment::Detach() {
  if (detached_) return absl::OkStatus();
  if (loop_ != nullptr) {
    JUKE_RETURN_IF_ERROR(FlushAndCheckIdle(loop_->path()));
    JUKE_RETURN_IF_ERROR(loop_->Detach());
    loop_.reset();
  }
  absl::Status result;
  if (export_ != nullptr) {
    result.Update(export_->Stop());
    export_.reset();
  }
  result.Update(Annotate(backend_->Flush(), "flush backend"));
  if (rmdir(dir_.c_str()) != 0 && errno != ENOENT) {
    result.Update(ErrnoToStatus(errno, absl::StrCat("rmdir ", dir_)));
  }
  detached_ = true;
  JUKE_LOG_INFO(Log(), "Volume detached device={} dir={}", device_path_, dir_);
  return result;
}

absl::Status Attachment::Resize(uint64_t new_size) {
  if (detached_) return absl::FailedPreconditionError("detached");
  const uint64_t old_size = backend_->size();
  if (new_size < old_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "shrinking from ", old_size, " to ", new_size, " is not supported"));
  }
  if (new_size == old_size) {
    // Done before, unless the loop device missed it last time.
    JUKE_ASSIGN_OR_RETURN(uint64_t seen, loop_->SizeBytes());
    if (seen == new_size) return absl::OkStatus();
  }
  JUKE_RETURN_IF_ERROR(export_->Resize(new_size));
  JUKE_RETURN_IF_ERROR(loop_->RefreshCapacity());
  JUKE_ASSIGN_OR_RETURN(uint64_t seen, loop_->SizeBytes());
  if (seen != new_size) {
    return absl::InternalError(absl::StrCat(
        device_path_, " has ", seen, " bytes after resize to ", new_size));
  }
  JUKE_LOG_INFO(Log(), "Volume resized device={} oldSize={} newSize={}",
                device_path_, old_size, new_size);
  return absl::OkStatus();
}

absl::Status CleanupStale(absl::string_view state_dir) {
  const std::string dir = CanonicalPath(state_dir);
  const std::string prefix = absl::StrCat(dir, "/");
  absl::Status result;

  // Loop devices first: they keep the FUSE files, and so the mounts, busy.
  absl::StatusOr<std::vector<LoopInfo>> loops = ListLoopDevices();
  if (loops.ok()) {
    for (const LoopInfo& loop : *loops) {
      if (!absl::StartsWith(loop.backing_file, prefix)) continue;
      JUKE_LOG_WARN(Log(),
                    "Detaching stale loop device device=/dev/loop{} "
                    "file={}",
                    loop.number, loop.backing_file);
      result.Update(DetachLoopNumber(loop.number));
    }
  } else {
    result.Update(loops.status());
  }

  // Then the mounts, deepest first. Lazily: a dead FUSE mount answers
  // ENOTCONN, and a busy one goes once its last user lets go.
  JUKE_ASSIGN_OR_RETURN(std::vector<MountEntry> mounts, ReadMountInfo());
  std::vector<std::string> stale;
  for (const MountEntry& entry : mounts) {
    if (absl::StartsWith(entry.mount_point, prefix)) {
      stale.push_back(entry.mount_point);
    }
  }
  std::sort(stale.begin(), stale.end(),
            [](const std::string& a, const std::string& b) {
              return a.size() > b.size();
            });
  for (const std::string& target : stale) {
    JUKE_LOG_WARN(Log(), "Unmounting stale mount target={}", target);
    if (umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 &&
        errno != EINVAL && errno != ENOENT) {
      result.Update(ErrnoToStatus(errno, absl::StrCat("umount ", target)));
    }
  }

  DIR* listing = opendir(dir.c_str());
  if (listing == nullptr) {
    if (errno != ENOENT) {
      result.Update(ErrnoToStatus(errno, absl::StrCat("open ", dir)));
    }
    return result;
  }
  while (const dirent* entry = readdir(listing)) {
    if (!absl::StartsWith(entry->d_name, kDirPrefix)) continue;
    const std::string path = absl::StrCat(prefix, entry->d_name);
    if (rmdir(path.c_str()) != 0 && errno != ENOENT) {
      JUKE_LOG_WARN(Log(), "Stale directory not removed dir={} err={}", path,
                    std::strerror(errno));
    }
  }
  closedir(listing);
  return result;
}

}  // namespace juke::node
