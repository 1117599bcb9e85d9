#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/node/block_backend.h"
#include "src/node/fuse_export.h"
#include "src/node/loop_device.h"

// A volume attached to this node as a block device: the backend served
// through FUSE as <state_dir>/vol-XXXXXX/volume, and a loop device with
// direct I/O on that file.
//
//   JUKE_ASSIGN_OR_RETURN(auto att, Attachment::Attach(backend, state_dir));
//   JUKE_RETURN_IF_ERROR(FormatIfBlank(att->device_path(), "ext4"));
//   ...
//   JUKE_RETURN_IF_ERROR(att->Detach());
//
// The FUSE server runs inside the owning process. The owner must call
// Detach() before it exits, also on SIGTERM: block SIGTERM in main()
// (BlockTerminationSignals), wait for it (WaitForTerminationSignal), then
// Detach() every attachment. If the owner dies without that (SIGKILL, a
// crash), the FUSE mount is left behind answering ENOTCONN and any user of
// the device gets EIO; the loop device goes away by itself once its last
// user closes it (autoclear). CleanupStale() removes the rest when the
// owner starts again.
//
// Thread-compatible.
namespace juke::node {

struct AttachOptions {
  bool read_only = false;
  bool direct_io = true;
  int fuse_threads = 4;
};

class Attachment {
 public:
  // Creates a fresh directory under `state_dir` (created if missing),
  // serves `backend` there and attaches a loop device to it. The backend's
  // size should be a multiple of 4096 (the device's block size).
  static absl::StatusOr<std::unique_ptr<Attachment>> Attach(
      const std::shared_ptr<BlockBackend>& backend, absl::string_view state_dir,
      AttachOptions options = {});

  // Detaches if still attached. If the device is still in use, tears the
  // FUSE side down anyway: its users get EIO from then on.
  ~Attachment();

  Attachment(const Attachment&) = delete;
  Attachment& operator=(const Attachment&) = delete;

  // Flushes the device, detaches the loop device, stops FUSE, flushes the
  // backend and removes the directory. FailedPrecondition, with everything
  // left working, if the device is still mounted or held exclusively;
  // unmount first. Idempotent.
  absl::Status Detach();

  // Grows the volume to `new_size` bytes and the device with it, online.
  // Shrinking is refused (FailedPrecondition): a file system on the device
  // would lose its tail.
  absl::Status Resize(uint64_t new_size);

  const std::string& device_path() const { return device_path_; }
  bool direct_io() const { return direct_io_; }
  // The directory FUSE is mounted on.
  const std::string& dir() const { return dir_; }
  BlockBackend& backend() const { return *backend_; }

 private:
  Attachment(std::string dir, std::shared_ptr<BlockBackend> backend)
      : dir_(std::move(dir)), backend_(std::move(backend)) {}

  const std::string dir_;
  const std::shared_ptr<BlockBackend> backend_;
  std::unique_ptr<FuseExport> export_;
  std::unique_ptr<LoopDevice> loop_;
  std::string device_path_;
  bool direct_io_ = false;
  bool detached_ = false;
};

// Removes what a dead owner left under `state_dir`: detaches loop devices
// whose backing file lies there (deferred by the kernel to their last
// close if still in use), lazily unmounts every mount below it and removes
// the empty vol-* directories. Call it at start, before any Attach() with
// the same `state_dir`: it would also tear down live attachments.
absl::Status CleanupStale(absl::string_view state_dir);

}  // namespace juke::node
