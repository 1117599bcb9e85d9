#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/model/cluster_map.h"

// A volume as the catalog in etcd keeps it: its shape, its state and who
// holds it attached. The record is JSON under /juke/v1/volumes/<id>.
namespace juke {

inline constexpr uint64_t kDefaultChunkSize = 4ull << 20;
inline constexpr uint64_t kMinChunkSize = 64ull << 10;
inline constexpr uint64_t kMaxChunkSize = 64ull << 20;
// The largest volume: 1 PiB. Chunk indexes stay far below 2^32.
inline constexpr uint64_t kMaxVolumeSize = 1ull << 50;
// Volume ids are opaque: 1 to 128 bytes of [A-Za-z0-9._-], not "." or "..".
inline constexpr size_t kMaxVolumeIdLength = 128;

enum class VolumeState { kReady, kDeleting };

struct Attachment {
  std::string node;  // the host the volume is attached on
  bool read_only = false;
  uint64_t generation = 0;  // the writer generation this attachment holds
  int64_t attached_at = 0;  // unix seconds

  bool operator==(const Attachment&) const = default;
};

// Where a volume's first content came from: a snapshot, or another
// volume (a clone).
struct VolumeSource {
  enum class Kind { kSnapshot, kVolume } kind = Kind::kSnapshot;
  std::string id;

  bool operator==(const VolumeSource&) const = default;
};

// A snapshot being taken holds back the volume's writer: the volume's
// generation was raised to `generation` and every daemon fenced at it, so
// that the snapshot's chunks are all taken at one point of the writes. The
// writer, fenced, waits until the barrier is gone (or `until`, unix
// seconds, has passed: its taker is gone) and goes on with a new
// generation (docs/snapshots.md).
struct SnapshotBarrier {
  std::string snapshot_id;
  uint64_t generation = 0;
  int64_t until = 0;

  bool operator==(const SnapshotBarrier&) const = default;
};

struct VolumeRecord {
  std::string id;
  uint64_t size_bytes = 0;
  int replicas = 3;
  FailureDomain failure_domain = FailureDomain::kHost;
  uint64_t chunk_size = kDefaultChunkSize;
  VolumeState state = VolumeState::kReady;
  int64_t created_at = 0;
  // The highest generation ever handed out; the next attach takes +1.
  uint64_t generation = 0;
  std::optional<Attachment> attachment;
  // The epoch of the cluster map its chunks are placed with, fixed at
  // creation (pinned in the map history), so that later map changes never
  // send reads to disks without the data. 0: the current map (records
  // from before placement was pinned).
  uint64_t placement_epoch = 0;
  // A move to another epoch's placement (docs/recovery.md, "Moving
  // chunks"). While `moving_to_epoch` is set, reads use placement_epoch,
  // writes go to the replicas of both epochs, and the chunks are copied to
  // their new disks. Once every copy is made, placement_epoch becomes
  // moving_to_epoch and `leaving_epoch` the old one, until the copies on
  // the disks it no longer uses are deleted. 0: no move.
  uint64_t moving_to_epoch = 0;
  uint64_t leaving_epoch = 0;
  // `replicas` is the replica count of the volume's placement. A move may
  // also change it: `moving_to_replicas` is the count of the placement it
  // copies to (0: the same as `replicas`), and becomes `replicas` when the
  // volume switches. `wanted_replicas` is a count asked for that no move
  // has started towards yet (0: none); the mover starts one.
  int moving_to_replicas = 0;
  int wanted_replicas = 0;
  // The content the volume was created with, if any; while `populating`,
  // it is being copied in and the volume cannot be attached.
  std::optional<VolumeSource> source;
  bool populating = false;
  std::optional<SnapshotBarrier> barrier;

  bool operator==(const VolumeRecord&) const = default;
};

// The replica count of the placement the volume's move copies to.
inline int MovingToReplicas(const VolumeRecord& r) {
  return r.moving_to_replicas != 0 ? r.moving_to_replicas : r.replicas;
}

// The replica count the volume has once every move asked for is done.
inline int TargetReplicas(const VolumeRecord& r) {
  if (r.wanted_replicas != 0) return r.wanted_replicas;
  return r.moving_to_epoch != 0 ? MovingToReplicas(r) : r.replicas;
}

// InvalidArgument unless `id` is a valid volume id; the message says why.
absl::Status ValidateVolumeId(absl::string_view id);

// Checks the shape of a new volume: id, size (a positive multiple of the
// chunk size: InvalidArgument; above kMaxVolumeSize: OutOfRange), replicas
// 1 to 5, chunk size a power of two from 64 KiB to 64 MiB.
absl::Status ValidateVolumeShape(const VolumeRecord& record);

absl::StatusOr<std::string> EncodeVolumeRecord(const VolumeRecord& record);
absl::StatusOr<VolumeRecord> DecodeVolumeRecord(absl::string_view json);

absl::string_view VolumeStateName(VolumeState state);

// Keys of the catalog.
inline constexpr char kVolumesPrefix[] = "/juke/v1/volumes/";
inline constexpr char kStalePrefix[] = "/juke/v1/stale/";
inline constexpr char kDirtyPrefix[] = "/juke/v1/dirty/";
std::string VolumeKey(absl::string_view volume_id);
// Prefix of every stale mark of the volume.
std::string StaleVolumePrefix(absl::string_view volume_id);
// The mark that says `disk_id` missed writes to the chunk.
std::string StaleKey(absl::string_view volume_id, uint64_t chunk_index,
                     absl::string_view disk_id);
// Prefix of every dirty mark of the volume.
std::string DirtyVolumePrefix(absl::string_view volume_id);
// The mark that says a writer is writing the chunk, or wrote it lately.
std::string DirtyKey(absl::string_view volume_id, uint64_t chunk_index);

}  // namespace juke
