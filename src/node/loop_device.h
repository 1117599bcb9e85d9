#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// A loop block device (/dev/loopN) over a file.
//
//   JUKE_ASSIGN_OR_RETURN(auto loop, LoopDevice::Attach(file, {}));
//   ... mkfs / mount loop->path() ...
//   JUKE_RETURN_IF_ERROR(loop->Detach());
//
// The device is set up with LO_FLAGS_AUTOCLEAR and this object keeps it
// open: if the owning process dies, the kernel detaches the device as soon
// as its last user (a mount, another opener) lets go, so a crash leaks no
// device. Direct I/O (LO_FLAGS_DIRECT_IO) and a 4 KiB logical block size
// are asked for; the kernel may refuse either, in which case the device
// falls back to buffered I/O or 512-byte blocks. direct_io() reports what
// took effect.
//
// Thread-compatible.
namespace juke::node {

struct LoopOptions {
  bool direct_io = true;
  // 512, 1024, 2048 or 4096. Falls back to 512 if the kernel refuses.
  uint32_t block_size = 4096;
  bool read_only = false;
};

class LoopDevice {
 public:
  // Attaches `file` to a free loop device.
  static absl::StatusOr<std::unique_ptr<LoopDevice>> Attach(
      absl::string_view file, LoopOptions options = {});

  // Detaches if still attached, waiting at most a second; logs failures.
  ~LoopDevice();

  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  // Detaches the file (LOOP_CLR_FD, retried while EBUSY) and waits until
  // the kernel has let go of it. If another user keeps the device open
  // (e.g. a mounted file system), the kernel detaches only when that user
  // closes it: FailedPrecondition then, and a later Detach() may succeed.
  // Idempotent once it succeeded.
  absl::Status Detach(absl::Duration timeout = absl::Seconds(10));

  // Re-reads the backing file's size (LOOP_SET_CAPACITY), for online
  // growth after the file grew.
  absl::Status RefreshCapacity();

  // The device size in bytes, as the block layer sees it.
  absl::StatusOr<uint64_t> SizeBytes() const;

  const std::string& path() const { return path_; }  // "/dev/loopN"
  int number() const { return number_; }
  bool direct_io() const { return direct_io_; }
  uint32_t block_size() const { return block_size_; }

 private:
  LoopDevice(int number, int fd, std::string backing_file);

  const int number_;
  const std::string path_;
  const std::string backing_file_;
  int fd_;                 // Open while attached; -1 after Detach().
  bool detached_ = false;  // Confirmed by the kernel.
  bool direct_io_ = false;
  uint32_t block_size_ = 512;
};

// The file a loop device is attached to, from sysfs; NotFound when the
// device is not attached.
absl::StatusOr<std::string> LoopBackingFile(int number);

// Whether the kernel uses direct I/O for the device, from sysfs.
absl::StatusOr<bool> LoopDirectIo(int number);

// Every attached loop device: its number and backing file.
struct LoopInfo {
  int number = -1;
  std::string backing_file;
};
absl::StatusOr<std::vector<LoopInfo>> ListLoopDevices();

// Detaches loop device `number` whatever process attached it (for stale
// devices). If it is in use the kernel detaches it on the last close.
absl::Status DetachLoopNumber(int number);

}  // namespace juke::node
