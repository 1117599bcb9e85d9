#pragma once

#include <cstdint>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

#include "src/model/cluster_map.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/snapshot_record.h"
#include "src/volume/volume_catalog.h"

namespace juke {

// Where CopySnapshotChunk puts what it reads.
class SnapshotPieceSink {
 public:
  virtual ~SnapshotPieceSink() = default;
  // Called before each source is tried: what an earlier source's pieces
  // left behind must be started over.
  virtual absl::Status Begin() = 0;
  // One piece of the chunk at `offset`, checked, not all zeros. An error
  // ends the copy: another source would not help.
  virtual absl::Status Piece(uint64_t offset,
                             const storage::v1::ReadChunkResponse& data) = 0;
};

// Reads chunk `chunk` of `snapshot` piece by piece (at most 1 MiB) from
// the first of `sources` that serves it whole, each 4 KiB block checked on
// arrival, and hands `sink` the pieces that are not all zeros. Unavailable
// (or the last source's error) when no source serves it.
absl::Status CopySnapshotChunk(ChunkClientPool* clients,
                               const SnapshotRecord& snapshot, uint64_t chunk,
                               const std::vector<const MapDisk*>& sources,
                               absl::Duration rpc_timeout,
                               SnapshotPieceSink* sink);

// The indexes of the chunks `snapshot` holds, listed on the disks of
// `from` (its placement) that are up and took it. Unavailable when some
// chunk may exist only on disks that are down: none of its replicas that
// hold the snapshot's data could be listed.
absl::StatusOr<std::set<uint64_t>> ListSnapshotChunks(
    ChunkClientPool* clients, const ClusterMap& from,
    const SnapshotRecord& snapshot, absl::Duration rpc_timeout);

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
