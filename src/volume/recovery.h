#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "src/common/rate_limiter.h"
#include "src/model/cluster_map.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/volume_catalog.h"

// Recovery brings stale replicas back: it copies the chunk from a current
// replica onto the stale one and then clears the stale mark in etcd.
//
// A copy must never undo a write the replica took meanwhile, so who copies
// depends on who may write:
//  - A volume that a writer holds is recovered by that writer
//    (VolumeClient::RecoverStale), which keeps its own writes to the chunk
//    out while it copies.
//  - A volume nobody holds is recovered by the daemon that owns the stale
//    disk, or by `juke volume recover` (RecoverDetachedVolume). Its copies
//    carry the volume's current generation, so once a writer attaches and
//    fences the daemons they are refused; and a mark is cleared only if
//    the volume's record did not change since the pass read it.
// Every copy is a conditional write on the replica's version, so a write
// that lands on the replica during the copy makes the copy fail (and it is
// tried again) instead of being overwritten with older data.
//
// Everything recovery knows is in etcd (the marks), so after a crash of
// any daemon or of the recoverer the next pass goes on where it stopped.
namespace juke {

struct RecoveryProgress {
  uint64_t marks = 0;      // stale replicas this pass looked at
  uint64_t recovered = 0;  // brought current, mark cleared
  uint64_t waiting = 0;    // left for a later pass (see the log for why)
  uint64_t bytes = 0;      // copied

  RecoveryProgress& operator+=(const RecoveryProgress& o);
};

// Copies the whole chunk onto `target` from the first replica that is up
// and not in `stale`, paced by `limiter`, writing with `generation`. The
// replicas are placed by `placement`; their addresses and states come
// from `live`.
// Returns the bytes copied. FailedPrecondition when `target` is not a
// replica of the chunk under `map` or no current replica holds the chunk;
// Aborted when a write reached the target during the copy; other errors
// from the target (Unavailable while it is down).
absl::StatusOr<uint64_t> CopyReplica(
    ChunkClientPool* clients, const ClusterMap& placement,
    const ClusterMap& live, const VolumeRecord& record, uint64_t chunk,
    const std::string& target, const std::set<std::string>& stale,
    uint64_t generation, RateLimiter* limiter, absl::Duration rpc_timeout);

// Copies the whole chunk onto `target` from the first of `sources` that is
// up in `live` and holds it, as CopyReplica() does.
absl::StatusOr<uint64_t> CopyChunk(ChunkClientPool* clients,
                                   const ClusterMap& live,
                                   const VolumeRecord& record, uint64_t chunk,
                                   const std::vector<std::string>& sources,
                                   const std::string& target,
                                   uint64_t generation, RateLimiter* limiter,
                                   absl::Duration rpc_timeout);

// One pass over the stale marks of volume `id` whose disk `accept` takes,
// for a volume that no writer holds (one that is held is counted waiting:
// its writer recovers it). NotFound volumes have nothing to recover.
absl::StatusOr<RecoveryProgress> RecoverDetachedVolume(
    VolumeCatalog* catalog, ChunkClientPool* clients, const ClusterMap& map,
    absl::string_view id,
    const std::function<bool(absl::string_view disk_id)>& accept,
    RateLimiter* limiter, absl::Duration rpc_timeout = absl::Seconds(10));

}  // namespace juke
