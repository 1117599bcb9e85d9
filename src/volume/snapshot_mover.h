#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "src/common/etcd_client.h"
#include "src/common/rate_limiter.h"
#include "src/model/cluster_map.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/volume_catalog.h"

// Moving a snapshot's chunks when the cluster map changes, and bringing
// its replicas that lack its data up to date (docs/snapshots.md, "Moving
// snapshots"). A snapshot is never written, so its move is simpler than a
// volume's (mover.h): the chunks are copied onto the disks the current
// map's placement gives them and lack them, then one compare-and-swap on
// the snapshot's record makes that placement its own, and only then are
// the copies on disks that left deleted.
//
// A copy is made by deleting what the disk has under the snapshot's key
// and writing the pieces again as conditional writes, each expecting the
// version the previous one made, so two movers at work on one copy
// cannot both finish it. Copies the record does not name (a pass cut off,
// a switch lost to another mover) are left for the next pass to redo, and
// go at the latest with the snapshot, whose deletion clears every disk.
namespace juke {

struct SnapshotMoveProgress {
  // "" when nothing is due; "moved" when this pass switched the snapshot
  // to the current placement; "waiting" when it could not (`reason`).
  std::string phase;
  uint64_t from_epoch = 0;
  uint64_t to_epoch = 0;
  uint64_t chunks = 0;   // chunks of the snapshot this pass looked at
  uint64_t copied = 0;   // copies made
  uint64_t dropped = 0;  // copies deleted from disks that left
  uint64_t bytes = 0;    // bytes copied
  // Replicas left lacking the data because their disk is down; they are
  // recorded stale and copied by a later pass.
  uint64_t stale = 0;
  std::string reason;
};

// One pass over snapshot `snapshot_id` with the current map `live`:
// nothing when its placement is the current one and every replica holds
// its data, else copies and switches as above. A snapshot that is not
// ready (being taken or deleted) or unknown has nothing due. Waits
// (phase "waiting") rather than switch when some chunk could not be
// copied: a source or target failed, or its data is only on disks that
// are down. `limiter` (may be null) paces the copies.
absl::StatusOr<SnapshotMoveProgress> MoveSnapshot(
    EtcdClient* etcd, VolumeCatalog* catalog, ChunkClientPool* clients,
    const ClusterMap& live, absl::string_view snapshot_id, RateLimiter* limiter,
    absl::Duration rpc_timeout);

}  // namespace juke
