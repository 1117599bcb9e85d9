#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// A storage host as the pool remembers it: what the storage daemon of that
// host last wrote under /juke/v1/hosts/<id> (docs/etcd-layout.md). The
// record stays while the host is down; whether it is up is told by its
// alive key, not by the record.
//
// Stored as JSON with lowerCamelCase field names. Decoding ignores fields
// it does not know and takes absent ones as empty, so that older and newer
// versions can read each other's records.
namespace juke {

inline constexpr char kDiskHealthy[] = "healthy";
inline constexpr char kDiskDegraded[] = "degraded";
inline constexpr char kDiskFailed[] = "failed";

// Longest host or pool id, that of a DNS name.
inline constexpr size_t kMaxIdLength = 253;

struct DiskRecord {
  std::string disk_id;
  std::string path;
  std::string state;  // kDiskHealthy, kDiskDegraded or kDiskFailed.
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t available_bytes = 0;
  uint64_t chunk_count = 0;
  // Which file system holds the disk, the same string for every disk of one
  // file system on one boot of one machine; empty when unknown. Capacity and
  // available space are the file system's, so disks that share one must
  // count them once (DiskSpaceSum).
  std::string filesystem;

  bool operator==(const DiskRecord&) const = default;
};

// Capacity and available space of a set of disks, where disks that share a
// file system count its space once: the directories of a test pool, or two
// disks a host was given on the same partition.
class DiskSpaceSum {
 public:
  void Add(const DiskRecord& disk);

  uint64_t capacity_bytes() const { return capacity_bytes_; }
  uint64_t available_bytes() const { return available_bytes_; }
  // Disks whose space was already counted through another disk.
  uint64_t shared_disks() const { return shared_disks_; }

 private:
  std::set<std::string> filesystems_;
  uint64_t capacity_bytes_ = 0;
  uint64_t available_bytes_ = 0;
  uint64_t shared_disks_ = 0;
};

// Failure domains of a host, from the largest to the smallest.
struct HostLabels {
  std::string region;
  std::string zone;
  std::string cluster;  // The Kubernetes cluster.
  std::string host;     // The node name.

  bool operator==(const HostLabels&) const = default;
};

struct HostRecord {
  std::string host_id;
  std::string pool_id;
  std::string address;  // The storage daemon's gRPC host:port.
  HostLabels labels;
  std::vector<DiskRecord> disks;
  int64_t started_at = 0;  // When the daemon started, unix seconds.
  std::string version;     // The daemon's version.

  bool operator==(const HostRecord&) const = default;
};

// Checks what a daemon may register: host id of 1 to 253 bytes, pool id of
// at most 253, an address, disks with distinct non-empty ids and a known
// state, and valid UTF-8 in every string (JSON holds nothing else).
absl::Status ValidateHostRecord(const HostRecord& record);

// InvalidArgument when a string is not valid UTF-8.
absl::StatusOr<std::string> EncodeHostRecord(const HostRecord& record);

// InvalidArgument for text that is not JSON, not an object, has a field of
// the wrong type or a negative size, or lacks the host id.
absl::StatusOr<HostRecord> DecodeHostRecord(absl::string_view json);

// The value of a host's alive key.
absl::StatusOr<std::string> EncodeAliveRecord(absl::string_view host_id,
                                              absl::string_view address,
                                              int64_t lease_id,
                                              int64_t since_unix_seconds);

}  // namespace juke
