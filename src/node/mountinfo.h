#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// The mount table as the kernel reports it in /proc/self/mountinfo.
namespace juke::node {

struct MountEntry {
  int id = 0;
  int parent_id = 0;
  dev_t device = 0;         // st_dev of the files on this mount.
  std::string root;         // The mounted subtree of the source, "/...".
  std::string mount_point;  // Unescaped.
  std::string fstype;       // "ext4", "fuse.juke", ...
  std::string source;       // "/dev/loop3", "juke", ...
  std::string options;      // Per-mount options, "rw,noatime".
};

absl::StatusOr<std::vector<MountEntry>> ReadMountInfo();

// Parses one line; InvalidArgument if malformed.
absl::StatusOr<MountEntry> ParseMountInfoLine(absl::string_view line);

// `path` made absolute and free of symlinks, "." and "..", without
// touching the last component if it cannot be resolved (a dead FUSE mount
// answers ENOTCONN to everything).
std::string CanonicalPath(absl::string_view path);

// Whether `path` is a mount point.
absl::StatusOr<bool> IsMountPoint(absl::string_view path);

}  // namespace juke::node
