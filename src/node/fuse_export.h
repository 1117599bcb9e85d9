#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/node/block_backend.h"

struct fuse_session;

// Serves one BlockBackend as a single regular file, <mountpoint>/<name>,
// through FUSE, so that a loop device can be put on it (see attachment.h).
//
//   JUKE_ASSIGN_OR_RETURN(auto fx, FuseExport::Start(dir, "volume", backend));
//   ... losetup on fx->file_path() ...
//   JUKE_RETURN_IF_ERROR(fx->Stop());
//
// The file is opened with FOPEN_DIRECT_IO: the kernel keeps no page cache
// for it, every read and write reaches the backend, and fsync calls
// backend->Flush(). Requests are served by a small pool of threads that
// poll the FUSE device. Only the mounting user (root) may use the file;
// nobody else is allowed in by the kernel.
//
// Backend errors reach the caller of the syscall as EIO. Requests that are
// not sector aligned fail with EINVAL, writes past the end with ENOSPC.
// Because the kernel splits a direct request along the pages of the
// caller's buffer, a user of the file must use sector-aligned buffers as
// well as offsets and lengths, as O_DIRECT demands anyway; the loop device
// always does. Truncating to a larger size grows the backend (if it can be
// resized); truncating to a smaller one fails with EPERM.
//
// Thread-safe. Stop() (or the destructor) must not be called from inside a
// request, i.e. from a backend callback.
namespace juke::node {

struct FuseExportOptions {
  // Threads serving requests.
  int threads = 4;
  // Whether the file refuses writes (EROFS on open for writing).
  bool read_only = false;
};

class FuseExport {
 public:
  // Mounts at `mountpoint` (an existing empty directory) and starts
  // serving. `name` is the file's name: no '/', not "." or "..".
  static absl::StatusOr<std::unique_ptr<FuseExport>> Start(
      absl::string_view mountpoint, absl::string_view name,
      std::shared_ptr<BlockBackend> backend, FuseExportOptions options = {});

  // Stops if still running.
  ~FuseExport();

  FuseExport(const FuseExport&) = delete;
  FuseExport& operator=(const FuseExport&) = delete;

  // Unmounts and stops serving. If the file is still open somewhere (a
  // loop device still attached), the mount is detached lazily and the FUSE
  // connection aborted: the holder's further I/O fails (ENOTCONN/EIO)
  // rather than hanging; FailedPrecondition reports that case. Idempotent.
  absl::Status Stop();

  // Resizes the backend and tells the kernel the file size changed.
  absl::Status Resize(uint64_t new_size);

  const std::string& mountpoint() const { return mountpoint_; }
  const std::string& file_path() const { return file_path_; }
  BlockBackend& backend() const { return *backend_; }

 private:
  friend struct FuseOps;

  FuseExport(std::string mountpoint, std::string name,
             std::shared_ptr<BlockBackend> backend, FuseExportOptions options);

  // One serving thread: polls the FUSE device and the stop event.
  void Serve();

  const std::string mountpoint_;
  const std::string name_;
  const std::string file_path_;
  const std::shared_ptr<BlockBackend> backend_;
  const FuseExportOptions options_;
  const uint64_t start_time_;

  fuse_session* session_ = nullptr;
  int stop_fd_ = -1;  // An eventfd, readable once Stop() began.
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

}  // namespace juke::node
