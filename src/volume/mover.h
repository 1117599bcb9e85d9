#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "src/common/rate_limiter.h"
#include "src/model/cluster_map.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/volume_catalog.h"

// Moving a volume's chunks when the cluster map changes (a disk goes out,
// a new one comes in) or its replica count does: the chunks whose
// placement changed are copied to their new disks, the volume switches to
// the new placement, and only then are the old copies dropped.
// docs/recovery.md tells the whole story.
//
// A move has two phases, both recorded in the volume's record:
//  - copying (moving_to_epoch set): reads use the old placement, writes go
//    to the replicas of both, and every chunk is copied onto the disks the
//    new placement adds. Once every copy is made and every chunk has a
//    current replica in the new placement, one transaction makes the new
//    placement the volume's and the old one "leaving";
//  - dropping (leaving_epoch set): the copies on disks that the new
//    placement no longer uses are deleted; then the record forgets the old
//    epoch.
// Every step is idempotent and every phase change is a compare-and-swap on
// the record, so a move resumes after a crash of any daemon or mover, and
// two movers never undo each other.
namespace juke {

// Where one volume's chunks are read from and written to at one moment.
struct VolumePlacement {
  ClusterMap read;                      // the volume's placement
  int replicas = 0;                     // its replica count
  std::optional<ClusterMap> moving_to;  // during a move's copy phase
  int moving_to_replicas = 0;

  // The replicas reads go to, in placement order.
  absl::StatusOr<std::vector<std::string>> ReadReplicas(
      const VolumeRecord& record, uint64_t chunk) const;
  // The replicas writes go to: the read replicas and, during a move, the
  // new placement's replicas that are not among them.
  absl::StatusOr<std::vector<std::string>> WriteReplicas(
      const VolumeRecord& record, uint64_t chunk) const;
};

// The placement of the volume as its record says, with each disk's address
// and state from `live`.
absl::StatusOr<VolumePlacement> LoadVolumePlacement(VolumeCatalog* catalog,
                                                    const VolumeRecord& record,
                                                    const ClusterMap& live);

// The writer that holds a volume, seen by its mover: the writer moves its
// own volume, keeping its writes to a chunk out while the chunk is copied.
class MoveHolder {
 public:
  virtual ~MoveHolder() = default;
  // The writer's generation; the volume's record must show it attached.
  virtual uint64_t generation() const = 0;
  // Runs `fn` with the writer's writes to `chunk` held back.
  virtual absl::Status WithChunkHeld(uint64_t chunk,
                                     absl::FunctionRef<absl::Status()> fn) = 0;
  // Runs `fn` with every write held back; `fn` changes the record, and the
  // writer then takes its new placement from `Adopt()`, called inside.
  virtual absl::Status WithWritesHeld(absl::FunctionRef<absl::Status()> fn) = 0;
  virtual absl::Status Adopt(const VolumeRecord& record) = 0;
  // The mover brought the replica up to date and cleared its stale mark.
  virtual void ForgetStale(uint64_t chunk, const std::string& disk_id) = 0;
};

struct MoveProgress {
  // "" when no move is due; "copying", "dropping" or "done" (this pass
  // finished a move); "pending" when the volume's writer has yet to take
  // the current map (`left_to_writer`).
  std::string phase;
  uint64_t from_epoch = 0;
  uint64_t to_epoch = 0;
  uint64_t chunks = 0;   // chunks of the volume this pass looked at
  uint64_t copied = 0;   // copies made on new disks
  uint64_t dropped = 0;  // copies deleted from disks that left
  uint64_t waiting = 0;  // copies or deletes left for a later pass
  uint64_t bytes = 0;    // bytes copied
  std::string reason;    // why something waits, for the log and the CLI
  // The volume is attached read-write elsewhere: its writer moves it, and
  // this pass only reported the phase its record shows.
  bool left_to_writer = false;
};

// One pass of the volume's move, if one is due: starts a move when the
// volume's placement differs from the current map's (`live`) or another
// replica count is wanted, else goes on with the phase its record shows,
// as far as it can.
//
// `holder` is the volume's writer when it is attached read-write here, and
// nullptr for a volume that no writer holds (a daemon or `juke volume
// recover` moves it, writing with the volume's current generation; a
// writer that attaches meanwhile fences those writes and takes over).
// A volume held by another writer, being deleted, or unknown has nothing
// to move here (empty phase). FailedPrecondition when `holder` no longer
// holds the volume.
absl::StatusOr<MoveProgress> MoveVolume(
    VolumeCatalog* catalog, ChunkClientPool* clients, const ClusterMap& live,
    absl::string_view id, MoveHolder* holder, RateLimiter* limiter,
    absl::Duration rpc_timeout);

}  // namespace juke
