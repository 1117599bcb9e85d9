#include "src/node/fuse_export.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "src/common/logging.h"
#include "src/common/status.h"

namespace juke::node {
namespace {

constexpr fuse_ino_t kFileIno = 2;
constexpr double kAttrTimeout = 1.0;
// The largest request the kernel sends; also the largest FUSE allows.
constexpr unsigned kMaxRequest = 1 << 20;

Logger Log() {
  static const Logger* const log = new Logger(GetLogger("node"));
  return *log;
}

}  // namespace

// The low-level callbacks. A struct so that it can be a friend.
struct FuseOps {
  static FuseExport& Self(fuse_req_t req) {
    return *static_cast<FuseExport*>(fuse_req_userdata(req));
  }

  static struct stat Attr(const FuseExport& fx, fuse_ino_t ino) {
    struct stat st {};
    st.st_ino = ino;
    st.st_uid = getuid();
    st.st_gid = getgid();
    st.st_atim.tv_sec = static_cast<time_t>(fx.start_time_);
    st.st_mtim = st.st_atim;
    st.st_ctim = st.st_atim;
    if (ino == FUSE_ROOT_ID) {
      st.st_mode = S_IFDIR | 0755;
      st.st_nlink = 2;
      return st;
    }
    const uint64_t size = fx.backend_->size();
    st.st_mode = S_IFREG | (fx.options_.read_only ? 0400 : 0600);
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(size);
    st.st_blksize = 4096;
    st.st_blocks = static_cast<blkcnt_t>(size / 512);
    return st;
  }

  static void Init(void* userdata, fuse_conn_info* conn) {
    // Large requests in both directions, many in flight (the loop device
    // in direct I/O mode sends asynchronous requests), no splicing.
    conn->max_write = kMaxRequest;
    conn->max_read = kMaxRequest;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->want &=
        ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
    if ((conn->capable & FUSE_CAP_ASYNC_DIO) != 0) {
      conn->want |= FUSE_CAP_ASYNC_DIO;
    }
  }

  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    FuseExport& fx = Self(req);
    if (parent != FUSE_ROOT_ID || fx.name_ != name) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    fuse_entry_param entry{};
    entry.ino = kFileIno;
    entry.generation = 1;
    entry.attr = Attr(fx, kFileIno);
    entry.attr_timeout = kAttrTimeout;
    entry.entry_timeout = kAttrTimeout;
    fuse_reply_entry(req, &entry);
  }

  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (ino != FUSE_ROOT_ID && ino != kFileIno) {
      fuse_reply_err(req, ENOENT);
      return;
    }
    struct stat st = Attr(Self(req), ino);
    fuse_reply_attr(req, &st, kAttrTimeout);
  }

  // Only the size of the file can change, only upwards, and only through
  // the backend.
  static void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr,
                      int to_set, fuse_file_info* fi) {
    FuseExport& fx = Self(req);
    if (ino != kFileIno) {
      fuse_reply_err(req, EPERM);
      return;
    }
    if ((to_set &
         (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0) {
      fuse_reply_err(req, EPERM);
      return;
    }
    const uint64_t new_size = static_cast<uint64_t>(attr->st_size);
    if ((to_set & FUSE_SET_ATTR_SIZE) != 0 && new_size != fx.backend_->size()) {
      if (fx.options_.read_only) {
        fuse_reply_err(req, EROFS);
        return;
      }
      // Shrinking would cut off whatever lives at the end of the volume
      // (an O_TRUNC open asks for size 0): only growth goes through.
      if (new_size < fx.backend_->size()) {
        fuse_reply_err(req, EPERM);
        return;
      }
      const absl::Status status = fx.backend_->Resize(new_size);
      if (!status.ok()) {
        JUKE_LOG_WARN(Log(), "Resize through truncate failed file={} err={}",
                      fx.file_path_, status);
        fuse_reply_err(req, absl::IsUnimplemented(status) ? EPERM : EIO);
        return;
      }
    }
    struct stat st = Attr(fx, ino);
    fuse_reply_attr(req, &st, kAttrTimeout);
  }

  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    FuseExport& fx = Self(req);
    if (ino != kFileIno) {
      fuse_reply_err(req, EISDIR);
      return;
    }
    if (fx.options_.read_only && (fi->flags & O_ACCMODE) != O_RDONLY) {
      fuse_reply_err(req, EROFS);
      return;
    }
    // With atomic O_TRUNC the truncation arrives here instead of as a
    // setattr; cutting the volume to nothing is never wanted.
    if ((fi->flags & O_TRUNC) != 0) {
      fuse_reply_err(req, EPERM);
      return;
    }
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
  }

  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   fuse_file_info* fi) {
    FuseExport& fx = Self(req);
    const uint64_t offset = static_cast<uint64_t>(off);
    const uint64_t end = fx.backend_->size();
    if (offset % kSectorSize != 0 || size % kSectorSize != 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    // Like any file: a read at or past the end is short.
    const uint64_t length =
        offset >= end ? 0 : std::min<uint64_t>(size, end - offset);
    thread_local std::vector<uint8_t> buffer;
    buffer.resize(length);
    const absl::Status status = fx.backend_->ReadAt(offset, buffer);
    if (!status.ok()) {
      JUKE_LOG_WARN(Log(), "Read failed file={} offset={} length={} err={}",
                    fx.file_path_, offset, length, status);
      fuse_reply_err(req, EIO);
      return;
    }
    fuse_reply_buf(req, reinterpret_cast<const char*>(buffer.data()), length);
  }

  static void Write(fuse_req_t req, fuse_ino_t ino, const char* buf,
                    size_t size, off_t off, fuse_file_info* fi) {
    FuseExport& fx = Self(req);
    const uint64_t offset = static_cast<uint64_t>(off);
    if (offset % kSectorSize != 0 || size % kSectorSize != 0) {
      fuse_reply_err(req, EINVAL);
      return;
    }
    const uint64_t end = fx.backend_->size();
    if (offset > end || size > end - offset) {
      fuse_reply_err(req, ENOSPC);
      return;
    }
    const absl::Status status = fx.backend_->WriteAt(
        offset, {reinterpret_cast<const uint8_t*>(buf), size});
    if (!status.ok()) {
      JUKE_LOG_WARN(Log(), "Write failed file={} offset={} length={} err={}",
                    fx.file_path_, offset, size, status);
      fuse_reply_err(req, EIO);
      return;
    }
    fuse_reply_write(req, size);
  }

  static void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                    fuse_file_info* fi) {
    FuseExport& fx = Self(req);
    const absl::Status status = fx.backend_->Flush();
    if (!status.ok()) {
      JUKE_LOG_WARN(Log(), "Flush failed file={} err={}", fx.file_path_,
                    status);
      fuse_reply_err(req, EIO);
      return;
    }
    fuse_reply_err(req, 0);
  }

  static void Ok(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    fuse_reply_err(req, 0);
  }

  static void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (ino != FUSE_ROOT_ID) {
      fuse_reply_err(req, ENOTDIR);
      return;
    }
    fuse_reply_open(req, fi);
  }

  static void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      fuse_file_info* fi) {
    FuseExport& fx = Self(req);
    struct Entry {
      const char* name;
      fuse_ino_t ino;
      mode_t mode;
    };
    const Entry entries[] = {{".", FUSE_ROOT_ID, S_IFDIR},
                             {"..", FUSE_ROOT_ID, S_IFDIR},
                             {fx.name_.c_str(), kFileIno, S_IFREG}};
    std::vector<char> buffer(size);
    size_t used = 0;
    for (off_t i = off; i < static_cast<off_t>(std::size(entries)); ++i) {
      struct stat st {};
      st.st_ino = entries[i].ino;
      st.st_mode = entries[i].mode;
      const size_t need = fuse_add_direntry(
          req, buffer.data() + used, size - used, entries[i].name, &st, i + 1);
      if (need > size - used) break;
      used += need;
    }
    fuse_reply_buf(req, buffer.data(), used);
  }

  static void StatFs(fuse_req_t req, fuse_ino_t ino) {
    struct statvfs st {};
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_blocks = Self(req).backend_->size() / 4096;
    st.f_files = 2;
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
  }
};

namespace {

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.init = &FuseOps::Init;
  ops.lookup = &FuseOps::Lookup;
  ops.getattr = &FuseOps::GetAttr;
  ops.setattr = &FuseOps::SetAttr;
  ops.open = &FuseOps::Open;
  ops.read = &FuseOps::Read;
  ops.write = &FuseOps::Write;
  ops.fsync = &FuseOps::Fsync;
  ops.release = &FuseOps::Ok;
  ops.opendir = &FuseOps::OpenDir;
  ops.readdir = &FuseOps::ReadDir;
  ops.releasedir = &FuseOps::Ok;
  ops.statfs = &FuseOps::StatFs;
  return ops;
}

}  // namespace

FuseExport::FuseExport(std::string mountpoint, std::string name,
                       std::shared_ptr<BlockBackend> backend,
                       FuseExportOptions options)
    : mountpoint_(std::move(mountpoint)),
      name_(std::move(name)),
      file_path_(absl::StrCat(mountpoint_, "/", name_)),
      backend_(std::move(backend)),
      options_(options),
      start_time_(static_cast<uint64_t>(absl::ToUnixSeconds(absl::Now()))) {}

absl::StatusOr<std::unique_ptr<FuseExport>> FuseExport::Start(
    absl::string_view mountpoint, absl::string_view name,
    std::shared_ptr<BlockBackend> backend, FuseExportOptions options) {
  if (name.empty() || name == "." || name == ".." ||
      absl::StrContains(name, '/')) {
    return absl::InvalidArgumentError(absl::StrCat("bad file name ", name));
  }
  if (backend == nullptr) return absl::InvalidArgumentError("no backend");
  if (options.threads < 1) options.threads = 1;
  std::unique_ptr<FuseExport> fx(new FuseExport(
      std::string(mountpoint), std::string(name), std::move(backend), options));

  // Only the mounting user may enter (no allow_other); the kernel checks
  // the file's mode (default_permissions).
  std::string mount_options = absl::StrCat(
      "default_permissions,fsname=juke,subtype=juke,max_read=", kMaxRequest);
  if (options.read_only) absl::StrAppend(&mount_options, ",ro");
  std::vector<std::string> args = {"juke", "-o", mount_options};
  std::vector<char*> argv;
  argv.reserve(args.size());
  for (std::string& arg : args) argv.push_back(arg.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  static const fuse_lowlevel_ops ops = MakeOps();
  fx->session_ = fuse_session_new(&fargs, &ops, sizeof(ops), fx.get());
  fuse_opt_free_args(&fargs);
  if (fx->session_ == nullptr) {
    return absl::InternalError("fuse_session_new failed");
  }
  if (fuse_session_mount(fx->session_, fx->mountpoint_.c_str()) != 0) {
    fuse_session_destroy(fx->session_);
    fx->session_ = nullptr;
    return absl::UnavailableError(
        absl::StrCat("mount FUSE at ", fx->mountpoint_,
                     " failed (is /dev/fuse there and are we root?)"));
  }

  // Serving threads poll the device and the stop event; a non-blocking
  // device lets every idle thread poll without one stealing all requests.
  const int fuse_fd = fuse_session_fd(fx->session_);
  const int flags = fcntl(fuse_fd, F_GETFL);
  fcntl(fuse_fd, F_SETFL, flags | O_NONBLOCK);
  fx->stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fx->stop_fd_ < 0) {
    const absl::Status status = ErrnoToStatus(errno, "eventfd");
    (void)fx->Stop();
    return status;
  }
  for (int i = 0; i < options.threads; ++i) {
    fx->threads_.emplace_back([self = fx.get()] { self->Serve(); });
  }

  // The first lookup waits for FUSE_INIT: once it answers, we serve.
  struct stat st {};
  if (stat(fx->file_path_.c_str(), &st) != 0) {
    const absl::Status status =
        ErrnoToStatus(errno, absl::StrCat("stat ", fx->file_path_));
    (void)fx->Stop();
    return status;
  }
  JUKE_LOG_INFO(Log(), "FUSE export started file={} size={} threads={}",
                fx->file_path_, fx->backend_->size(), options.threads);
  return fx;
}

FuseExport::~FuseExport() {
  const absl::Status status = Stop();
  if (!status.ok()) {
    JUKE_LOG_WARN(Log(), "FUSE export stopped uncleanly file={} err={}",
                  file_path_, status);
  }
}

void FuseExport::Serve() {
  const int fuse_fd = fuse_session_fd(session_);
  fuse_buf buf{};
  while (!fuse_session_exited(session_)) {
    pollfd fds[2] = {{fuse_fd, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    const int ready = poll(fds, 2, -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    if (fds[1].revents != 0) break;
    // POLLERR: the connection was aborted or the file system unmounted.
    if ((fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) break;
    const int res = fuse_session_receive_buf(session_, &buf);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0) break;
    fuse_session_process_buf(session_, &buf);
  }
  std::free(buf.mem);
}

absl::Status FuseExport::Stop() {
  if (stopped_.exchange(true)) return absl::OkStatus();
  if (session_ == nullptr) return absl::OkStatus();

  // A plain unmount works when nothing holds the file; the kernel then ends
  // the connection itself. A busy mount is detached lazily instead, and the
  // connection is aborted below by closing the device, so that whoever
  // still holds the file gets errors instead of waiting forever.
  absl::Status result;
  if (umount2(mountpoint_.c_str(), UMOUNT_NOFOLLOW) != 0) {
    const int err = errno;
    if (err != EINVAL && err != ENOENT) {
      JUKE_LOG_WARN(Log(),
                    "FUSE mount busy; detaching lazily and aborting "
                    "mountpoint={} err={}",
                    mountpoint_, std::strerror(err));
      if (umount2(mountpoint_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 &&
          errno != EINVAL) {
        result = ErrnoToStatus(errno, absl::StrCat("umount ", mountpoint_));
      } else {
        result = absl::FailedPreconditionError(
            absl::StrCat(mountpoint_, " was busy (", std::strerror(err),
                         "); detached lazily and its connection aborted"));
      }
    }
  }

  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) {
      JUKE_LOG_WARN(Log(), "Stop event not written err={}",
                    std::strerror(errno));
    }
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  // Closes the FUSE device: the last reference, so the kernel aborts the
  // connection if the unmount did not already end it.
  fuse_session_destroy(session_);
  session_ = nullptr;
  if (stop_fd_ >= 0) close(stop_fd_);
  stop_fd_ = -1;
  JUKE_LOG_INFO(Log(), "FUSE export stopped file={}", file_path_);
  return result;
}

absl::Status FuseExport::Resize(uint64_t new_size) {
  if (stopped_.load()) return absl::FailedPreconditionError("stopped");
  JUKE_RETURN_IF_ERROR(Annotate(backend_->Resize(new_size), "resize"));
  // Drop the kernel's cached attributes, then fetch them, so that the new
  // size is what the loop device reads from the inode.
  const int err = fuse_lowlevel_notify_inval_inode(session_, kFileIno, -1, 0);
  if (err != 0 && err != -ENOENT) {
    return ErrnoToStatus(-err, "invalidate cached size");
  }
  struct stat st {};
  if (stat(file_path_.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("stat ", file_path_));
  }
  if (static_cast<uint64_t>(st.st_size) != new_size) {
    return absl::InternalError(absl::StrCat("kernel sees size ", st.st_size,
                                            " after resize to ", new_size));
  }
  return absl::OkStatus();
}

}  // namespace juke::node
