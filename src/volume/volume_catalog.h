#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/common/etcd_client.h"
#include "src/volume/volume_record.h"

namespace juke {

// A stale mark as read from etcd, with the mod revision that clearing it
// safely compares against.
struct StaleMark {
  uint64_t chunk = 0;
  std::string disk_id;
  int64_t mod_revision = 0;
};

// A dirty mark as read from etcd (see VolumeCatalog::MarkDirty).
struct DirtyMark {
  uint64_t chunk = 0;
  uint64_t generation = 0;  // of the writer that made it
  int64_t mod_revision = 0;
};

// A volume record with the mod revision of its key. Every attach changes
// the record, so an unchanged revision proves no writer came in between.
struct VersionedVolume {
  VolumeRecord record;
  int64_t mod_revision = 0;
};

// The volume catalog in etcd: create, look up, list, resize and delete
// volumes; attach and detach them, each writer attachment taking a new
// generation in one etcd transaction; and the stale marks of replicas that
// missed writes. Every change is a compare-and-swap on the record's
// revision, so concurrent callers never lose each other's updates.
// Thread-safe; the client is not owned.
class VolumeCatalog {
 public:
  explicit VolumeCatalog(EtcdClient* etcd) : etcd_(etcd) {}

  // Creates the volume described by `shape` (id, size, replicas, failure
  // domain, chunk size). Checks the shape (InvalidArgument, OutOfRange) and
  // that the current cluster map can place it (FailedPrecondition: e.g. 3
  // replicas on 2 hosts) before writing anything. Creating a volume that
  // exists with the same shape returns it; with another shape is
  // AlreadyExists.
  absl::StatusOr<VolumeRecord> Create(const VolumeRecord& shape);

  // NotFound for an unknown id, InvalidArgument for a malformed one.
  absl::StatusOr<VolumeRecord> Get(absl::string_view id);
  absl::StatusOr<VersionedVolume> GetVersioned(absl::string_view id);
  absl::StatusOr<std::vector<VolumeRecord>> List();

  // Grows the volume to `new_size` bytes (a multiple of its chunk size, at
  // most kMaxVolumeSize: InvalidArgument, OutOfRange) and returns the
  // record. Never shrinks: at or below the current size it changes nothing
  // and returns the record as it is, so a retried grow succeeds.
  // FailedPrecondition while the volume is being deleted.
  absl::StatusOr<VolumeRecord> Grow(absl::string_view id, uint64_t new_size);

  // Asks for the volume to have `replicas` replicas (1 to 5, else
  // InvalidArgument) and returns the record. Records the count asked for;
  // the volume's mover then moves its chunks there as it does after a map
  // change (mover.h): its writer if attached, else the storage daemons or
  // `juke volume recover`. FailedPrecondition, changing nothing, when the
  // current map cannot place that many replicas or the volume is being
  // deleted. The count it already has or moves to is a no-op.
  absl::StatusOr<VolumeRecord> SetReplicas(absl::string_view id, int replicas);

  // Attaches the volume on `node`. A writer attachment takes generation+1;
  // if another node holds it read-write, FailedPrecondition unless
  // `take_over` (the old writer is then fenced by the caller's FenceVolume
  // calls before the new one writes). Attaching again on the same node
  // keeps the attachment and its generation. Read-only attachments change
  // nothing and return the record.
  absl::StatusOr<VolumeRecord> Attach(absl::string_view id,
                                      absl::string_view node, bool read_only,
                                      bool take_over);

  // The map the volume's chunks are placed with: the pinned epoch's map
  // from the history, with each disk's address and state taken from
  // `live` (the current map). FailedPrecondition if the pinned epoch is
  // missing from the history.
  absl::StatusOr<ClusterMap> PlacementMap(const VolumeRecord& record,
                                          const ClusterMap& live);
  // The same for any epoch the volume pins (placement, moving to or
  // leaving).
  absl::StatusOr<ClusterMap> EpochMap(absl::string_view id, uint64_t epoch,
                                      const ClusterMap& live);

  // Replaces the record with `next` if its key still has the revision of
  // `current`, in one transaction that also pins the map epochs `next`
  // uses, unpins those only `current` used and deletes `drop_keys` (stale
  // marks that no longer matter). Returns false, changing nothing, when the
  // record changed meanwhile.
  absl::StatusOr<bool> ReplaceIfUnchanged(
      const VersionedVolume& current, const VolumeRecord& next,
      const std::vector<std::string>& drop_keys = {});

  // Takes a new generation for the writer attachment (node, generation)
  // after a snapshot's barrier fenced it (docs/snapshots.md). Unavailable
  // while the barrier is in force: wait and call again. FailedPrecondition
  // when the volume is no longer attached to that writer.
  absl::StatusOr<VolumeRecord> Renew(absl::string_view id,
                                     absl::string_view node,
                                     uint64_t generation);

  // Raises the volume's generation for snapshot `snapshot_id` and records
  // the barrier, in force until `until` (unix seconds). Unavailable while
  // the volume moves between disks or another snapshot's barrier is in
  // force; FailedPrecondition while it is being deleted or filled.
  absl::StatusOr<VolumeRecord> RaiseBarrier(absl::string_view id,
                                            absl::string_view snapshot_id,
                                            int64_t until);
  // Drops the barrier of `snapshot_id`; OK when there is none, or the
  // volume is gone.
  absl::Status ClearBarrier(absl::string_view id,
                            absl::string_view snapshot_id);

  // Marks a volume created from a source as filled: it can be attached.
  absl::Status FinishPopulating(absl::string_view id);

  // Drops `node`'s attachment; OK when it holds none.
  absl::Status Detach(absl::string_view id, absl::string_view node);

  // Marks the volume deleting; it can no longer be attached.
  // FailedPrecondition while attached read-write.
  absl::StatusOr<VolumeRecord> MarkDeleting(absl::string_view id);
  // Removes the record, its stale and its dirty marks, once its chunks
  // are gone.
  absl::Status Remove(absl::string_view id);

  // Records that `disk_id` missed writes to the chunk. Durable on return.
  absl::Status MarkStale(absl::string_view id, uint64_t chunk_index,
                         absl::string_view disk_id, uint64_t generation);
  // Every (chunk index, disk id) marked stale for the volume.
  absl::StatusOr<std::set<std::pair<uint64_t, std::string>>> StaleMarks(
      absl::string_view id);
  // The volume's stale marks in key order (chunk, then disk).
  absl::StatusOr<std::vector<StaleMark>> ListStaleMarks(absl::string_view id);
  // Clears `mark` once its replica is current again, but only if nobody
  // marked it again since it was read and, when `volume_revision` is not 0,
  // the volume's record still has that revision (no writer attached in
  // between). Returns whether it cleared the mark.
  absl::StatusOr<bool> ClearStaleIfUnchanged(absl::string_view id,
                                             const StaleMark& mark,
                                             int64_t volume_revision);

  // Records, before a writer first writes to the chunk, that its replicas
  // may disagree should the writer stop midway: a write that reached some
  // replicas and not others, and was never acknowledged, leaves no stale
  // mark. The next writer settles every chunk still marked
  // (docs/recovery.md, "Dirty chunks"). Durable on return.
  absl::Status MarkDirty(absl::string_view id, uint64_t chunk_index,
                         uint64_t generation);
  // The volume's dirty marks, in chunk order.
  absl::StatusOr<std::vector<DirtyMark>> ListDirty(absl::string_view id);
  // Settles a dirty chunk in one transaction: marks `stale_disks` stale and
  // drops the dirty mark, only while `generation` is still the volume's
  // fence (the caller is its writer) and, when `mod_revision` is not 0,
  // the mark still has that revision. Returns whether it did.
  absl::StatusOr<bool> SettleDirty(absl::string_view id, uint64_t chunk_index,
                                   int64_t mod_revision,
                                   const std::vector<std::string>& stale_disks,
                                   uint64_t generation);

 private:
  // Applies `change` to the record with a compare-and-swap, retrying when
  // another writer got there first.
  absl::StatusOr<VolumeRecord> Update(
      absl::string_view id,
      const std::function<absl::Status(VolumeRecord&)>& change);

  EtcdClient* const etcd_;
};

}  // namespace juke
