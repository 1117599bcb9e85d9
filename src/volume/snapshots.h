#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "src/common/etcd_client.h"
#include "src/model/cluster_map.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/snapshot_record.h"
#include "src/volume/volume_catalog.h"

// Snapshots of volumes, and volumes filled from a snapshot or another
// volume. docs/snapshots.md tells the whole story:
//  - a snapshot is taken behind a barrier: the volume's generation is
//    raised and every daemon fenced at it before any chunk is snapshotted,
//    so every write acknowledged before is in it and none made after;
//  - each daemon snapshots the volume's chunks on its disks in place,
//    sharing their files (the chunk store copies a shared chunk on its next
//    write), and the record in etcd says where the snapshot lives;
//  - the volume's writer, fenced by the barrier, waits for it to go and
//    goes on with a new generation (VolumeClient).
namespace juke {

struct SnapshotOptions {
  // How long the barrier holds the writer back at most; a snapshot that
  // takes longer fails (the writer goes on).
  absl::Duration barrier_hold = absl::Seconds(30);
  absl::Duration fence_wait = absl::Seconds(20);
  absl::Duration rpc_timeout = absl::Seconds(10);
};

// Snapshot records in etcd. Thread-safe; the client is not owned.
class SnapshotCatalog {
 public:
  explicit SnapshotCatalog(EtcdClient* etcd) : etcd_(etcd) {}

  // NotFound for an unknown id, InvalidArgument for a malformed one.
  absl::StatusOr<SnapshotRecord> Get(absl::string_view id);
  // Every record, in id order; unreadable ones are logged and left out.
  absl::StatusOr<std::vector<SnapshotRecord>> List();

 private:
  EtcdClient* const etcd_;
};

// Takes snapshot `snapshot_id` of volume `volume_id`, or returns it when it
// exists already with that source (AlreadyExists with another source).
// NotFound for an unknown volume; Unavailable while the volume moves
// between disks, another snapshot of it is being taken, or a daemon
// cannot be reached (nothing is left behind then; call again); Aborted
// while another call takes this snapshot. A call that stopped midway (its
// process died) leaves the snapshot creating; a call more than
// barrier_hold + fence_wait later takes it over.
absl::StatusOr<SnapshotRecord> CreateSnapshot(
    VolumeCatalog* catalog, EtcdClient* etcd, ChunkClientPool* clients,
    absl::string_view snapshot_id, absl::string_view volume_id,
    const SnapshotOptions& options = {});

// Deletes the snapshot's chunks from every disk of the pool, then its
// record. OK for an unknown id. Unavailable while a disk is down: the
// record stays, marked deleting, and a later call finishes.
absl::Status DeleteSnapshot(EtcdClient* etcd, ChunkClientPool* clients,
                            absl::string_view snapshot_id,
                            absl::Duration rpc_timeout = absl::Seconds(10));

// Fills `target`, a volume created with a source and still populating:
// copies the source snapshot's chunks (for a clone, those of an internal
// snapshot of the source volume, deleted afterwards) into the target's
// placement, then marks it filled. Idempotent: a call after a failure
// copies again. NotFound when the source is gone; FailedPrecondition when
// it does not fit the target (larger, or another chunk size).
absl::Status PopulateVolume(VolumeCatalog* catalog, EtcdClient* etcd,
                            ChunkClientPool* clients,
                            const VolumeRecord& target,
                            const SnapshotOptions& options = {});

// The id of the internal snapshot a clone of a volume is copied from.
std::string CloneSnapshotId(absl::string_view target_volume_id);

}  // namespace juke
