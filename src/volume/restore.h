#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "src/model/cluster_map.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/snapshot_record.h"
#include "src/volume/volume_catalog.h"

namespace juke {

// Copies every chunk of `snapshot` into the live chunks of `target`, from
// a replica that holds the snapshot's data to every replica of the
// target's placement, daemon to daemon through this process, each 4 KiB
// block checked on arrival and again by the receiving daemon. Pieces that
// read as zeros are not written: the target's chunks are new, and unwritten
// blocks read as zeros too. Writes carry the target's generation.
//
// FailedPrecondition when the snapshot does not fit the target (larger,
// or another chunk size); Unavailable when some chunk's data is only on
// disks that are down. Copying again is harmless.
absl::Status CopySnapshotInto(VolumeCatalog* catalog, ChunkClientPool* clients,
                              const ClusterMap& live,
                              const SnapshotRecord& snapshot,
                              const VolumeRecord& target,
                              absl::Duration rpc_timeout);

}  // namespace juke
