#pragma once

#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// File systems on attached devices: detect, format only when blank, mount
// with vetted options, bind mount, unmount, grow. Helper programs run
// through RunCommand (no shell); mounts use mount(2) directly.
//
// Thread-safe (no shared state), but two callers working on the same
// device or target at once get no protection from each other.
namespace juke::node {

// What `device` holds: "" when it is blank (no signature blkid knows and
// only zeros in its first and last MiB), the file system or partition
// table type blkid reports ("ext4", "xfs", "gpt", ...), or "unknown" for
// data nobody recognises. Anything but "" must never be formatted.
absl::StatusOr<std::string> DetectFilesystem(absl::string_view device);

// Creates a `fstype` ("ext4" or "xfs", else InvalidArgument) file system on
// `device` if it is blank. OK without doing anything if it already holds
// `fstype`; FailedPrecondition if it holds anything else. Never formats a
// device with data on it.
absl::Status FormatIfBlank(absl::string_view device, absl::string_view fstype);

// The mount(2) flags and data string for `options`, after checking every
// option against the allow-list. Each element may hold several options
// separated by commas; each option must be on the list, else
// InvalidArgument. Allowed: ro, rw, noatime, nodiratime, relatime,
// strictatime, lazytime, nolazytime, sync, dirsync, nosuid, nodev, noexec,
// discard, nodiscard; for ext4 also data=ordered|journal|writeback,
// errors=remount-ro|continue, commit=<1..300>; for xfs nouuid, inode64,
// largeio, noquota. Refused on purpose: exec, suid, dev (privilege),
// nobarrier (drops the flushes that make writes durable), errors=panic
// (takes the node down), anything setting ownership or quota.
struct MountParams {
  unsigned long flags = 0;  // NOLINT(google-runtime-int): mount(2)'s type.
  std::string data;
};
absl::StatusOr<MountParams> ParseMountOptions(
    absl::string_view fstype, std::span<const std::string> options,
    bool read_only);

// Mounts the `fstype` file system on `device` at `target` (created if
// missing). OK if `device` is already mounted there; AlreadyExists if
// something else is.
absl::Status Mount(absl::string_view device, absl::string_view target,
                   absl::string_view fstype,
                   std::span<const std::string> options, bool read_only);

// Bind mounts `source` (a directory, file or device node) at `target`,
// creating `target` (a directory or an empty file to match) if missing.
// read_only remounts the bind read-only: writes to files fail with EROFS.
// A read-only bind does not stop writes to a device node through it; use
// a read-only attachment for that. OK if `source` is already bound there.
absl::Status BindMount(absl::string_view source, absl::string_view target,
                       bool read_only);

// Unmounts `target`. OK if it is not mounted (or does not exist);
// FailedPrecondition if it is busy.
absl::Status Unmount(absl::string_view target);

// Grows the file system on `device`, mounted at `mountpoint`, to fill the
// device: resize2fs for ext4, xfs_growfs for xfs.
absl::Status GrowFilesystem(absl::string_view device,
                            absl::string_view mountpoint,
                            absl::string_view fstype);

}  // namespace juke::node
