#include "src/volume/snapshots.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "src/common/etcd_txn.h"
#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/map_store.h"
#include "src/volume/restore.h"
#include "src/volume/volume_client.h"

namespace juke {
namespace {

namespace v1 = storage::v1;

Logger Log() {
  static const Logger log = GetLogger("snapshot");
  return log;
}

absl::Status PutRecord(EtcdClient* etcd, const SnapshotRecord& record) {
  JUKE_ASSIGN_OR_RETURN(std::string value, EncodeSnapshotRecord(record));
  return etcd->Put(SnapshotKey(record.id), value);
}

// The daemons that serve the disks of `map` that are up, by address; the
// ids of those that are down.
struct Daemons {
  std::map<std::string, std::vector<std::string>> up;
  std::set<std::string> down_disks;
};

Daemons DaemonsOf(const ClusterMap& map) {
  Daemons d;
  for (const MapDisk& disk : map.disks()) {
    if (disk.up) {
      d.up[disk.address].push_back(disk.disk_id);
    } else {
      d.down_disks.insert(disk.disk_id);
    }
  }
  return d;
}

// Drops the chunks of snapshot `epoch` of the volume on every daemon of
// `map` that is up. Unavailable when some disk is down.
absl::Status DeleteSnapshotChunks(ChunkClientPool* clients,
                                  const ClusterMap& map,
                                  absl::string_view volume_id, uint64_t epoch,
                                  absl::Duration rpc_timeout) {
  Daemons daemons = DaemonsOf(map);
  for (const auto& [address, disks] : daemons.up) {
    v1::DeleteSnapshotRequest req;
    req.set_volume_id(std::string(volume_id));
    req.set_epoch(epoch);
    v1::DeleteSnapshotResponse resp;
    grpc::ClientContext ctx;
    SetDeadlineAfter(&ctx, rpc_timeout);
    JUKE_RETURN_IF_ERROR(Annotate(
        FromGrpcStatus(clients->For(address)->DeleteSnapshot(&ctx, req, &resp)),
        absl::StrCat("delete snapshot chunks on ", address)));
  }
  if (!daemons.down_disks.empty()) {
    return absl::UnavailableError(
        absl::StrCat("disk ", *daemons.down_disks.begin(),
                     " is down; its snapshot chunks remain until it returns"));
  }
  return absl::OkStatus();
}

// Undoes a snapshot attempt that failed after its barrier went up: the
// writer may go on, and the chunks and the record go.
void AbandonSnapshot(VolumeCatalog* catalog, EtcdClient* etcd,
                     ChunkClientPool* clients, const SnapshotRecord& record,
                     const SnapshotOptions& options) {
  absl::Status cleared =
      catalog->ClearBarrier(record.source_volume_id, record.id);
  absl::StatusOr<ClusterMap> live = RefreshMap(*etcd);
  absl::Status chunks = live.status();
  if (live.ok() && record.epoch != 0) {
    chunks = DeleteSnapshotChunks(clients, *live, record.source_volume_id,
                                  record.epoch, options.rpc_timeout);
  }
  // With chunks left on a disk that is down, the record stays "creating":
  // a retry or a DeleteSnapshot finds the epoch there and drops them.
  absl::Status removed = chunks;
  if (chunks.ok()) removed = etcd->Delete(SnapshotKey(record.id)).status();
  JUKE_LOG_WARN(Log(),
                "Snapshot abandoned snapshotID={} volumeID={} barrier={} "
                "chunks={} record={}",
                record.id, record.source_volume_id, cleared, chunks, removed);
}

// The snapshot's record from an earlier call, or one in state creating
// that this call now takes: new, or left by a call that stopped midway
// longer ago than any taker can still be at work (`stale_after`).
// AlreadyExists when the id is taken by a snapshot of another volume;
// Aborted while another call is taking it.
absl::StatusOr<SnapshotRecord> FindOrStart(VolumeCatalog* catalog,
                                           EtcdClient* etcd,
                                           absl::string_view snapshot_id,
                                           absl::string_view volume_id,
                                           absl::Duration stale_after) {
  const std::string key = SnapshotKey(snapshot_id);
  for (int attempt = 0; attempt < 5; ++attempt) {
    JUKE_ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> kv, etcd->Get(key));
    const absl::Time now = absl::Now();
    if (kv.has_value()) {
      JUKE_ASSIGN_OR_RETURN(SnapshotRecord existing,
                            DecodeSnapshotRecord(kv->value));
      if (existing.source_volume_id != volume_id) {
        return absl::AlreadyExistsError(
            absl::StrCat("snapshot ", snapshot_id, " exists, of volume ",
                         existing.source_volume_id));
      }
      if (existing.state == SnapshotState::kDeleting) {
        return absl::AbortedError(absl::StrCat(
            "snapshot ", snapshot_id, " is being deleted; retry later"));
      }
      if (existing.state == SnapshotState::kReady) return existing;
      // Creating: another call is at it, or one stopped midway.
      const absl::Time taken = absl::FromUnixSeconds(existing.created_at);
      if (now - taken < stale_after) {
        return absl::AbortedError(absl::StrCat(
            "snapshot ", snapshot_id, " is being taken by another call since ",
            absl::FormatTime(absl::RFC3339_sec, taken, absl::UTCTimeZone()),
            "; retry"));
      }
      existing.created_at = absl::ToUnixSeconds(now);
      JUKE_ASSIGN_OR_RETURN(std::string value, EncodeSnapshotRecord(existing));
      EtcdTxn take;
      take.IfValue(key, EtcdCompareOp::kEqual, kv->value).ThenPut(key, value);
      JUKE_ASSIGN_OR_RETURN(EtcdTxnResult taken_over, etcd->Txn(take));
      if (taken_over.succeeded) {
        JUKE_LOG_INFO(Log(),
                      "Taking over a snapshot left midway snapshotID={} "
                      "volumeID={} epoch={}",
                      snapshot_id, volume_id, existing.epoch);
        return existing;
      }
      continue;
    }

    JUKE_ASSIGN_OR_RETURN(VolumeRecord source, catalog->Get(volume_id));
    SnapshotRecord record;
    record.id = std::string(snapshot_id);
    record.source_volume_id = std::string(volume_id);
    record.size_bytes = source.size_bytes;
    record.replicas = source.replicas;
    record.failure_domain = source.failure_domain;
    record.chunk_size = source.chunk_size;
    record.state = SnapshotState::kCreating;
    record.created_at = absl::ToUnixSeconds(now);
    JUKE_ASSIGN_OR_RETURN(std::string value, EncodeSnapshotRecord(record));
    EtcdTxn create;
    create.IfAbsent(key).ThenPut(key, value);
    JUKE_ASSIGN_OR_RETURN(EtcdTxnResult created, etcd->Txn(create));
    if (created.succeeded) return record;
  }
  return absl::AbortedError(
      absl::StrCat("snapshot ", snapshot_id, " keeps changing; retry"));
}

// Everything after the barrier is up; on failure the caller abandons.
absl::Status TakeBehindBarrier(VolumeCatalog* catalog, EtcdClient* etcd,
                               ChunkClientPool* clients,
                               const VolumeRecord& volume,
                               SnapshotRecord* record,
                               const SnapshotOptions& options) {
  // No writer of an older generation can write once this returns.
  JUKE_ASSIGN_OR_RETURN(ClusterMap live, RefreshMap(*etcd));
  JUKE_RETURN_IF_ERROR(FenceVolumeEverywhere(
      etcd, clients, live, volume.id, record->epoch, options.fence_wait));

  // Replicas that missed writes hold none of the snapshot. Read after the
  // fence: from here on only recovery clears marks, and a replica counted
  // stale while current costs nothing but a choice of source.
  JUKE_ASSIGN_OR_RETURN(record->stale, catalog->StaleMarks(volume.id));

  JUKE_ASSIGN_OR_RETURN(ClusterMap placement,
                        catalog->PlacementMap(volume, live));
  Daemons daemons = DaemonsOf(placement);
  record->absent_disks = daemons.down_disks;
  for (const auto& [address, disks] : daemons.up) {
    v1::SnapshotVolumeRequest req;
    req.set_volume_id(volume.id);
    req.set_epoch(record->epoch);
    req.set_generation(record->epoch);
    v1::SnapshotVolumeResponse resp;
    grpc::ClientContext ctx;
    SetDeadlineAfter(&ctx, options.rpc_timeout);
    JUKE_RETURN_IF_ERROR(Annotate(
        FromGrpcStatus(clients->For(address)->SnapshotVolume(&ctx, req, &resp)),
        absl::StrCat("snapshot volume ", volume.id, " on ", address)));
  }

  // Ready, with its map epoch pinned so that the history keeps the
  // placement its chunks are found with.
  record->state = SnapshotState::kReady;
  JUKE_ASSIGN_OR_RETURN(std::string value, EncodeSnapshotRecord(*record));
  EtcdTxn ready;
  ready.ThenPut(SnapshotKey(record->id), value)
      .ThenPut(MapPinKey(record->placement_epoch, SnapshotPinName(record->id)),
               "");
  return etcd->Txn(ready).status();
}

}  // namespace

absl::StatusOr<SnapshotRecord> SnapshotCatalog::Get(absl::string_view id) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(id));
  JUKE_ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> kv,
                        etcd_->Get(SnapshotKey(id)));
  if (!kv.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("snapshot ", id, " does not exist"));
  }
  return DecodeSnapshotRecord(kv->value);
}

absl::StatusOr<std::vector<SnapshotRecord>> SnapshotCatalog::List() {
  JUKE_ASSIGN_OR_RETURN(std::vector<EtcdKeyValue> kvs,
                        etcd_->GetPrefix(kSnapshotsPrefix));
  std::vector<SnapshotRecord> out;
  for (const EtcdKeyValue& kv : kvs) {
    absl::StatusOr<SnapshotRecord> r = DecodeSnapshotRecord(kv.value);
    if (!r.ok()) {
      JUKE_LOG_WARN(Log(), "Unreadable snapshot record key={} err={}", kv.key,
                    r.status());
      continue;
    }
    out.push_back(*std::move(r));
  }
  std::sort(out.begin(), out.end(),
            [](const SnapshotRecord& a, const SnapshotRecord& b) {
              return a.id < b.id;
            });
  return out;
}

absl::StatusOr<SnapshotRecord> CreateSnapshot(VolumeCatalog* catalog,
                                              EtcdClient* etcd,
                                              ChunkClientPool* clients,
                                              absl::string_view snapshot_id,
                                              absl::string_view volume_id,
                                              const SnapshotOptions& options) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(snapshot_id));
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(volume_id));
  // A call still at work may hold the barrier and fence for up to this.
  const absl::Duration stale_after =
      options.barrier_hold + options.fence_wait + absl::Seconds(5);
  JUKE_ASSIGN_OR_RETURN(
      SnapshotRecord record,
      FindOrStart(catalog, etcd, snapshot_id, volume_id, stale_after));
  if (record.state == SnapshotState::kReady) return record;

  // An earlier attempt that stopped midway may have left chunks at its
  // own epoch; this one takes a new epoch, so they go first.
  if (record.epoch != 0) {
    JUKE_ASSIGN_OR_RETURN(ClusterMap live, RefreshMap(*etcd));
    JUKE_RETURN_IF_ERROR(DeleteSnapshotChunks(
        clients, live, volume_id, record.epoch, options.rpc_timeout));
  }

  // The barrier: a new generation that the snapshot fences the volume at.
  const int64_t until = absl::ToUnixSeconds(absl::Now() + options.barrier_hold);
  absl::StatusOr<VolumeRecord> volume =
      catalog->RaiseBarrier(volume_id, snapshot_id, until);
  if (!volume.ok()) {
    record.epoch = 0;
    AbandonSnapshot(catalog, etcd, clients, record, options);
    return volume.status();
  }
  record.epoch = volume->generation;
  record.placement_epoch = volume->placement_epoch;
  record.size_bytes = volume->size_bytes;
  absl::Status s = PutRecord(etcd, record);
  if (s.ok()) {
    s = TakeBehindBarrier(catalog, etcd, clients, *volume, &record, options);
  }
  if (!s.ok()) {
    AbandonSnapshot(catalog, etcd, clients, record, options);
    return Annotate(s, absl::StrCat("snapshot ", snapshot_id));
  }

  // The writer may go on. Should this fail, the barrier lapses by itself.
  absl::Status cleared = catalog->ClearBarrier(volume_id, snapshot_id);
  if (!cleared.ok()) {
    JUKE_LOG_WARN(Log(), "Cannot lift snapshot barrier volumeID={} err={}",
                  volume_id, cleared);
  }
  JUKE_LOG_INFO(Log(),
                "Snapshot created snapshotID={} volumeID={} epoch={} "
                "placementEpoch={} staleReplicas={} absentDisks={}",
                snapshot_id, volume_id, record.epoch, record.placement_epoch,
                record.stale.size(), record.absent_disks.size());
  return record;
}

absl::Status DeleteSnapshot(EtcdClient* etcd, ChunkClientPool* clients,
                            absl::string_view snapshot_id,
                            absl::Duration rpc_timeout) {
  // Marked deleting by a compare on the record's value: a snapshot mover
  // that switched the placement meanwhile must not be undone, or the pin
  // of its new epoch would be forgotten.
  std::optional<SnapshotRecord> record;
  for (int attempt = 0; !record.has_value(); ++attempt) {
    if (attempt == 10) {
      return absl::AbortedError(absl::StrCat(
          "snapshot ", snapshot_id, " keeps changing; delete it again"));
    }
    JUKE_RETURN_IF_ERROR(ValidateVolumeId(snapshot_id));
    JUKE_ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> kv,
                          etcd->Get(SnapshotKey(snapshot_id)));
    if (!kv.has_value()) return absl::OkStatus();
    JUKE_ASSIGN_OR_RETURN(SnapshotRecord current,
                          DecodeSnapshotRecord(kv->value));
    if (current.state == SnapshotState::kDeleting) {
      record = std::move(current);
      break;
    }
    current.state = SnapshotState::kDeleting;
    JUKE_ASSIGN_OR_RETURN(std::string value, EncodeSnapshotRecord(current));
    EtcdTxn mark;
    mark.IfValue(kv->key, EtcdCompareOp::kEqual, kv->value)
        .ThenPut(kv->key, value);
    JUKE_ASSIGN_OR_RETURN(EtcdTxnResult marked, etcd->Txn(mark));
    if (marked.succeeded) record = std::move(current);
  }
  if (record->epoch != 0) {
    JUKE_ASSIGN_OR_RETURN(ClusterMap live, RefreshMap(*etcd));
    absl::Status chunks = DeleteSnapshotChunks(
        clients, live, record->source_volume_id, record->epoch, rpc_timeout);
    if (!chunks.ok()) {
      return absl::Status(
          chunks.code(),
          absl::StrCat("snapshot ", snapshot_id, " is marked deleting, but ",
                       chunks.message()));
    }
  }
  EtcdTxn remove;
  remove.ThenDelete(SnapshotKey(snapshot_id));
  if (record->placement_epoch != 0) {
    remove.ThenDelete(
        MapPinKey(record->placement_epoch, SnapshotPinName(snapshot_id)));
  }
  JUKE_RETURN_IF_ERROR(etcd->Txn(remove).status());
  JUKE_LOG_INFO(Log(), "Snapshot deleted snapshotID={} volumeID={}",
                snapshot_id, record->source_volume_id);
  return absl::OkStatus();
}

std::string CloneSnapshotId(absl::string_view target_volume_id) {
  return absl::StrCat("clone-of.", target_volume_id);
}

absl::Status PopulateVolume(VolumeCatalog* catalog, EtcdClient* etcd,
                            ChunkClientPool* clients,
                            const VolumeRecord& target,
                            const SnapshotOptions& options) {
  if (!target.populating || !target.source.has_value()) {
    return absl::OkStatus();
  }
  const bool clone = target.source->kind == VolumeSource::Kind::kVolume;
  const std::string snapshot_id =
      clone ? CloneSnapshotId(target.id) : target.source->id;

  SnapshotCatalog snapshots(etcd);
  absl::StatusOr<SnapshotRecord> snapshot = snapshots.Get(snapshot_id);
  // A clone's internal snapshot being deleted means its copy was made.
  const bool copied =
      clone && snapshot.ok() && snapshot->state == SnapshotState::kDeleting;
  if (!copied) {
    if (clone) {
      snapshot = CreateSnapshot(catalog, etcd, clients, snapshot_id,
                                target.source->id, options);
    }
    JUKE_RETURN_IF_ERROR(snapshot.status());
    if (snapshot->state != SnapshotState::kReady) {
      return absl::FailedPreconditionError(
          absl::StrCat("snapshot ", snapshot_id, " is ",
                       SnapshotStateName(snapshot->state)));
    }
    JUKE_ASSIGN_OR_RETURN(ClusterMap live, RefreshMap(*etcd));
    JUKE_RETURN_IF_ERROR(CopySnapshotInto(catalog, clients, live, *snapshot,
                                          target, options.rpc_timeout));
  }
  if (clone) {
    JUKE_RETURN_IF_ERROR(
        DeleteSnapshot(etcd, clients, snapshot_id, options.rpc_timeout));
  }
  JUKE_RETURN_IF_ERROR(catalog->FinishPopulating(target.id));
  JUKE_LOG_INFO(Log(), "Volume filled volumeID={} from={} snapshotID={}",
                target.id, target.source->id, snapshot_id);
  return absl::OkStatus();
}

}  // namespace juke
