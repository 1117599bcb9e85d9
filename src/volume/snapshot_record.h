#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/model/cluster_map.h"

// A snapshot as the catalog in etcd keeps it, JSON under
// /juke/v1/snapshots/<id> (docs/etcd-layout.md, docs/snapshots.md).
namespace juke {

enum class SnapshotState { kCreating, kReady, kDeleting };

struct SnapshotRecord {
  // Opaque, like a volume id: [A-Za-z0-9._-], 1 to 128 bytes.
  std::string id;
  std::string source_volume_id;
  // The source volume's shape when the snapshot was taken.
  uint64_t size_bytes = 0;
  int replicas = 3;
  FailureDomain failure_domain = FailureDomain::kHost;
  uint64_t chunk_size = 0;
  SnapshotState state = SnapshotState::kCreating;
  int64_t created_at = 0;  // unix seconds
  // The snapshot's chunks are (source volume id, index, epoch) on the
  // disks that the source's placement at `placement_epoch` gave them. The
  // epoch is the generation the snapshot's barrier fenced the volume at,
  // unique among the volume id's snapshots because generations only grow.
  uint64_t epoch = 0;
  uint64_t placement_epoch = 0;
  // Replicas that do not hold the snapshot's data: (chunk, disk) marked
  // stale when it was taken, and disks that were down.
  std::set<std::pair<uint64_t, std::string>> stale;
  std::set<std::string> absent_disks;

  bool operator==(const SnapshotRecord&) const = default;

  // Whether the replica of `chunk` on `disk` holds the snapshot's data.
  bool Holds(uint64_t chunk, const std::string& disk) const {
    return absent_disks.count(disk) == 0 && stale.count({chunk, disk}) == 0;
  }
};

absl::StatusOr<std::string> EncodeSnapshotRecord(const SnapshotRecord& record);
absl::StatusOr<SnapshotRecord> DecodeSnapshotRecord(absl::string_view json);
absl::string_view SnapshotStateName(SnapshotState state);

inline constexpr char kSnapshotsPrefix[] = "/juke/v1/snapshots/";
std::string SnapshotKey(absl::string_view snapshot_id);
// The name a snapshot pins its map epoch under (map/pins/<epoch>/...):
// never a volume id, which cannot hold '/'.
std::string SnapshotPinName(absl::string_view snapshot_id);

}  // namespace juke
