#include "src/volume/volume_catalog.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

#include "src/common/etcd_txn.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/keys.h"
#include "src/model/map_store.h"
#include "src/model/placement.h"

namespace juke {
namespace {

Logger Log() {
  static const Logger log = GetLogger("volume");
  return log;
}

constexpr int kMaxAttempts = 20;

// Replica counts compare as asked for: a volume that is moving to another
// count already has the shape of a request for that count.
bool SameShape(const VolumeRecord& a, const VolumeRecord& b) {
  return a.size_bytes == b.size_bytes &&
         TargetReplicas(a) == TargetReplicas(b) &&
         a.failure_domain == b.failure_domain && a.chunk_size == b.chunk_size &&
         a.source == b.source;
}

// The map epochs the volume places chunks with, and so keeps pinned.
std::set<uint64_t> PinnedEpochs(const VolumeRecord& r) {
  std::set<uint64_t> epochs;
  for (uint64_t e : {r.placement_epoch, r.moving_to_epoch, r.leaving_epoch}) {
    if (e != 0) epochs.insert(e);
  }
  return epochs;
}

}  // namespace

absl::StatusOr<VolumeRecord> VolumeCatalog::Create(const VolumeRecord& shape) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeShape(shape));

  // The map must be able to place every chunk before anything is written.
  MapStore maps(etcd_);
  absl::StatusOr<ClusterMap> map = maps.Load();
  if (absl::IsNotFound(map.status())) {
    map = RefreshMap(*etcd_);
  }
  if (!map.ok()) return Annotate(map.status(), "load the cluster map");
  JUKE_RETURN_IF_ERROR(
      CheckPlaceable(*map, shape.replicas, shape.failure_domain));

  VolumeRecord record = shape;
  record.state = VolumeState::kReady;
  record.created_at = absl::ToUnixSeconds(absl::Now());
  // A volume of the same id that was deleted left its fence behind on the
  // daemons; generations go on from it.
  record.generation = 0;
  JUKE_ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> fence,
                        etcd_->Get(FenceKey(record.id)));
  if (fence.has_value() &&
      !absl::SimpleAtoi(fence->value, &record.generation)) {
    return absl::InternalError(
        absl::StrCat("fence of volume ", record.id, " is unreadable"));
  }
  record.attachment.reset();
  record.placement_epoch = map->epoch();
  JUKE_ASSIGN_OR_RETURN(std::string value, EncodeVolumeRecord(record));
  EtcdTxn create;
  create.IfAbsent(VolumeKey(record.id))
      .ThenPut(VolumeKey(record.id), value)
      .ThenPut(MapPinKey(record.placement_epoch, record.id), "");
  JUKE_ASSIGN_OR_RETURN(EtcdTxnResult created, etcd_->Txn(create));
  if (created.succeeded) {
    JUKE_LOG_INFO(Log(),
                  "Volume created volumeID={} sizeBytes={} replicas={} "
                  "failureDomain={}",
                  record.id, record.size_bytes, record.replicas,
                  FailureDomainName(record.failure_domain));
    return record;
  }

  // It exists: the same request again is the same volume.
  JUKE_ASSIGN_OR_RETURN(VolumeRecord existing, Get(record.id));
  if (existing.state == VolumeState::kReady && SameShape(existing, record)) {
    return existing;
  }
  return absl::AlreadyExistsError(absl::StrCat(
      "volume ", record.id, " exists with another size, replica count, ",
      "failure domain or chunk size, or is being deleted"));
}

absl::StatusOr<VolumeRecord> VolumeCatalog::Get(absl::string_view id) {
  JUKE_ASSIGN_OR_RETURN(VersionedVolume v, GetVersioned(id));
  return std::move(v.record);
}

absl::StatusOr<VersionedVolume> VolumeCatalog::GetVersioned(
    absl::string_view id) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(id));
  JUKE_ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> kv,
                        etcd_->Get(VolumeKey(id)));
  if (!kv.has_value()) {
    return absl::NotFoundError(absl::StrCat("volume ", id, " does not exist"));
  }
  JUKE_ASSIGN_OR_RETURN(VolumeRecord record, DecodeVolumeRecord(kv->value));
  return VersionedVolume{std::move(record), kv->mod_revision};
}

absl::StatusOr<std::vector<VolumeRecord>> VolumeCatalog::List() {
  JUKE_ASSIGN_OR_RETURN(std::vector<EtcdKeyValue> kvs,
                        etcd_->GetPrefix(kVolumesPrefix));
  std::vector<VolumeRecord> out;
  for (const EtcdKeyValue& kv : kvs) {
    absl::StatusOr<VolumeRecord> r = DecodeVolumeRecord(kv.value);
    if (!r.ok()) {
      JUKE_LOG_WARN(Log(), "Unreadable volume record key={} err={}", kv.key,
                    r.status());
      continue;
    }
    out.push_back(*std::move(r));
  }
  return out;
}

absl::StatusOr<VolumeRecord> VolumeCatalog::Update(
    absl::string_view id,
    const std::function<absl::Status(VolumeRecord&)>& change) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(id));
  std::string key = VolumeKey(id);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    JUKE_ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> kv, etcd_->Get(key));
    if (!kv.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("volume ", id, " does not exist"));
    }
    JUKE_ASSIGN_OR_RETURN(VolumeRecord record, DecodeVolumeRecord(kv->value));
    VolumeRecord before = record;
    JUKE_RETURN_IF_ERROR(change(record));
    if (record == before) return record;
    JUKE_ASSIGN_OR_RETURN(std::string value, EncodeVolumeRecord(record));
    EtcdTxn txn;
    txn.IfModRevision(key, EtcdCompareOp::kEqual, kv->mod_revision)
        .ThenPut(key, value);
    if (record.generation != before.generation) {
      txn.ThenPut(FenceKey(id), absl::StrCat(record.generation));
    }
    JUKE_ASSIGN_OR_RETURN(EtcdTxnResult result, etcd_->Txn(txn));
    if (result.succeeded) return record;
  }
  return absl::AbortedError(absl::StrCat("volume ", id, " changed under ",
                                         kMaxAttempts, " attempts; retry"));
}

absl::StatusOr<VolumeRecord> VolumeCatalog::Grow(absl::string_view id,
                                                 uint64_t new_size) {
  uint64_t old_size = 0;
  absl::StatusOr<VolumeRecord> grown =
      Update(id, [&](VolumeRecord& r) -> absl::Status {
        if (r.state != VolumeState::kReady) {
          return absl::FailedPreconditionError(
              absl::StrCat("volume ", id, " is being deleted"));
        }
        old_size = r.size_bytes;
        if (new_size <= r.size_bytes) return absl::OkStatus();
        VolumeRecord next = r;
        next.size_bytes = new_size;
        JUKE_RETURN_IF_ERROR(ValidateVolumeShape(next));
        r.size_bytes = new_size;
        return absl::OkStatus();
      });
  if (grown.ok() && grown->size_bytes != old_size) {
    JUKE_LOG_INFO(Log(), "Volume grown volumeID={} oldSize={} newSize={}", id,
                  old_size, grown->size_bytes);
  }
  return grown;
}

absl::StatusOr<VolumeRecord> VolumeCatalog::SetReplicas(absl::string_view id,
                                                        int replicas) {
  if (replicas < 1 || replicas > 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas is ", replicas, "; use 1 to 5"));
  }
  JUKE_ASSIGN_OR_RETURN(VolumeRecord current, Get(id));
  // The map must be able to place them before anything is asked.
  absl::StatusOr<ClusterMap> map = MapStore(etcd_).Load();
  if (absl::IsNotFound(map.status())) map = RefreshMap(*etcd_);
  if (!map.ok()) return Annotate(map.status(), "load the cluster map");
  JUKE_RETURN_IF_ERROR(CheckPlaceable(*map, replicas, current.failure_domain));
  absl::StatusOr<VolumeRecord> set =
      Update(id, [&](VolumeRecord& r) -> absl::Status {
        if (r.state != VolumeState::kReady) {
          return absl::FailedPreconditionError(
              absl::StrCat("volume ", id, " is being deleted"));
        }
        if (TargetReplicas(r) == replicas) return absl::OkStatus();
        // Back to the count it has, with no move under way: nothing to do.
        const bool settled = r.moving_to_epoch == 0 && r.replicas == replicas;
        r.wanted_replicas = settled ? 0 : replicas;
        return absl::OkStatus();
      });
  if (set.ok() && set->wanted_replicas != 0) {
    JUKE_LOG_INFO(Log(),
                  "Replica count asked volumeID={} replicas={} wanted={}", id,
                  set->replicas, replicas);
  }
  return set;
}

absl::StatusOr<VolumeRecord> VolumeCatalog::Attach(absl::string_view id,
                                                   absl::string_view node,
                                                   bool read_only,
                                                   bool take_over) {
  if (node.empty()) return absl::InvalidArgumentError("node is empty");
  absl::StatusOr<VolumeRecord> record =
      Update(id, [&](VolumeRecord& r) -> absl::Status {
        if (r.state != VolumeState::kReady) {
          return absl::FailedPreconditionError(
              absl::StrCat("volume ", id, " is being deleted"));
        }
        if (r.populating) {
          return absl::FailedPreconditionError(absl::StrCat(
              "volume ", id, " is still being filled from its source"));
        }
        if (read_only) return absl::OkStatus();
        if (r.attachment.has_value()) {
          if (r.attachment->node == node) return absl::OkStatus();
          if (!take_over) {
            return absl::FailedPreconditionError(
                absl::StrCat("volume ", id, " is attached read-write on ",
                             r.attachment->node, "; detach it there first"));
          }
        }
        r.generation += 1;
        r.attachment = Attachment{std::string(node), false, r.generation,
                                  absl::ToUnixSeconds(absl::Now())};
        return absl::OkStatus();
      });
  if (record.ok() && !read_only) {
    JUKE_LOG_INFO(Log(), "Volume attached volumeID={} node={} generation={}",
                  id, node, record->generation);
  }
  return record;
}

absl::StatusOr<ClusterMap> VolumeCatalog::PlacementMap(
    const VolumeRecord& record, const ClusterMap& live) {
  return EpochMap(record.id, record.placement_epoch, live);
}

absl::StatusOr<ClusterMap> VolumeCatalog::EpochMap(absl::string_view id,
                                                   uint64_t epoch,
                                                   const ClusterMap& live) {
  if (epoch == 0 || epoch == live.epoch()) return live;
  absl::StatusOr<ClusterMap> pinned = MapStore(etcd_).LoadEpoch(epoch);
  if (absl::IsNotFound(pinned.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("volume ", id, " is placed with cluster map epoch ", epoch,
                     ", which the map history no longer holds"));
  }
  JUKE_RETURN_IF_ERROR(pinned.status());
  if (pinned->SamePlacement(live)) return live;
  // Placement from the pinned map; where to reach each disk, and whether
  // it is up, from the live one.
  std::vector<MapDisk> disks = pinned->disks();
  for (MapDisk& d : disks) {
    const MapDisk* now = live.FindDisk(d.disk_id);
    if (now == nullptr) {
      d.up = false;
      continue;
    }
    d.address = now->address;
    d.up = now->up;
  }
  return ClusterMap::Create(pinned->epoch(), std::move(disks));
}

absl::StatusOr<bool> VolumeCatalog::ReplaceIfUnchanged(
    const VersionedVolume& current, const VolumeRecord& next,
    const std::vector<std::string>& drop_keys) {
  const std::string& id = current.record.id;
  JUKE_ASSIGN_OR_RETURN(std::string value, EncodeVolumeRecord(next));
  std::set<uint64_t> before = PinnedEpochs(current.record);
  std::set<uint64_t> after = PinnedEpochs(next);
  EtcdTxn txn;
  txn.IfModRevision(VolumeKey(id), EtcdCompareOp::kEqual, current.mod_revision)
      .ThenPut(VolumeKey(id), value);
  for (uint64_t e : after) {
    if (before.count(e) == 0) txn.ThenPut(MapPinKey(e, id), "");
  }
  for (uint64_t e : before) {
    if (after.count(e) == 0) txn.ThenDelete(MapPinKey(e, id));
  }
  for (const std::string& key : drop_keys) txn.ThenDelete(key);
  JUKE_ASSIGN_OR_RETURN(EtcdTxnResult result, etcd_->Txn(txn));
  return result.succeeded;
}

absl::StatusOr<VolumeRecord> VolumeCatalog::Renew(absl::string_view id,
                                                  absl::string_view node,
                                                  uint64_t generation) {
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  absl::StatusOr<VolumeRecord> renewed =
      Update(id, [&](VolumeRecord& r) -> absl::Status {
        if (!r.attachment.has_value() || r.attachment->node != node ||
            r.attachment->generation != generation) {
          return absl::FailedPreconditionError(
              absl::StrCat("volume ", id,
                           " is no longer attached to the "
                           "writer of generation ",
                           generation));
        }
        if (r.barrier.has_value()) {
          if (now <= r.barrier->until) {
            return absl::UnavailableError(absl::StrCat("volume ", id,
                                                       " is held for snapshot ",
                                                       r.barrier->snapshot_id));
          }
          r.barrier.reset();  // its taker is gone
        }
        r.generation += 1;
        r.attachment->generation = r.generation;
        return absl::OkStatus();
      });
  if (renewed.ok()) {
    JUKE_LOG_INFO(Log(), "Writer resumed volumeID={} node={} generation={}", id,
                  node, renewed->generation);
  }
  return renewed;
}

absl::StatusOr<VolumeRecord> VolumeCatalog::RaiseBarrier(
    absl::string_view id, absl::string_view snapshot_id, int64_t until) {
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  return Update(id, [&](VolumeRecord& r) -> absl::Status {
    if (r.state != VolumeState::kReady) {
      return absl::FailedPreconditionError(
          absl::StrCat("volume ", id, " is being deleted"));
    }
    if (r.populating) {
      return absl::FailedPreconditionError(absl::StrCat(
          "volume ", id, " is still being filled from its source"));
    }
    if (r.moving_to_epoch != 0 || r.leaving_epoch != 0) {
      return absl::UnavailableError(absl::StrCat(
          "volume ", id, " is moving between disks; snapshot it once moved"));
    }
    if (r.barrier.has_value() && r.barrier->snapshot_id != snapshot_id &&
        now <= r.barrier->until) {
      return absl::UnavailableError(
          absl::StrCat("volume ", id, " is held for snapshot ",
                       r.barrier->snapshot_id, "; retry"));
    }
    r.generation += 1;
    r.barrier = SnapshotBarrier{std::string(snapshot_id), r.generation, until};
    return absl::OkStatus();
  });
}

absl::Status VolumeCatalog::ClearBarrier(absl::string_view id,
                                         absl::string_view snapshot_id) {
  absl::StatusOr<VolumeRecord> r =
      Update(id, [&](VolumeRecord& rec) -> absl::Status {
        if (rec.barrier.has_value() &&
            rec.barrier->snapshot_id == snapshot_id) {
          rec.barrier.reset();
        }
        return absl::OkStatus();
      });
  if (absl::IsNotFound(r.status())) return absl::OkStatus();
  return r.status();
}

absl::Status VolumeCatalog::FinishPopulating(absl::string_view id) {
  return Update(id,
                [](VolumeRecord& r) -> absl::Status {
                  r.populating = false;
                  return absl::OkStatus();
                })
      .status();
}

absl::Status VolumeCatalog::Detach(absl::string_view id,
                                   absl::string_view node) {
  absl::StatusOr<VolumeRecord> r =
      Update(id, [&](VolumeRecord& rec) -> absl::Status {
        if (rec.attachment.has_value() && rec.attachment->node == node) {
          rec.attachment.reset();
        }
        return absl::OkStatus();
      });
  return r.status();
}

absl::StatusOr<VolumeRecord> VolumeCatalog::MarkDeleting(absl::string_view id) {
  return Update(id, [&](VolumeRecord& r) -> absl::Status {
    if (r.attachment.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("volume ", id, " is attached on ", r.attachment->node,
                       "; detach it first"));
    }
    r.state = VolumeState::kDeleting;
    return absl::OkStatus();
  });
}

absl::Status VolumeCatalog::Remove(absl::string_view id) {
  absl::StatusOr<VolumeRecord> record = Get(id);
  if (absl::IsNotFound(record.status())) return absl::OkStatus();
  JUKE_RETURN_IF_ERROR(record.status());
  EtcdTxn txn;
  // The fence key stays: a daemon that comes back must still refuse any
  // writer that held the volume.
  txn.ThenDelete(VolumeKey(id))
      .ThenDeletePrefix(StaleVolumePrefix(id))
      .ThenDeletePrefix(DirtyVolumePrefix(id));
  for (uint64_t e : PinnedEpochs(*record)) txn.ThenDelete(MapPinKey(e, id));
  JUKE_RETURN_IF_ERROR(etcd_->Txn(txn).status());
  JUKE_LOG_INFO(Log(), "Volume removed volumeID={}", id);
  return absl::OkStatus();
}

absl::Status VolumeCatalog::MarkStale(absl::string_view id,
                                      uint64_t chunk_index,
                                      absl::string_view disk_id,
                                      uint64_t generation) {
  JUKE_RETURN_IF_ERROR(
      etcd_->Put(StaleKey(id, chunk_index, disk_id), absl::StrCat(generation)));
  JUKE_LOG_WARN(Log(),
                "Replica marked stale volumeID={} chunk={} diskID={} "
                "generation={}",
                id, chunk_index, disk_id, generation);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<StaleMark>> VolumeCatalog::ListStaleMarks(
    absl::string_view id) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(id));
  std::string prefix = StaleVolumePrefix(id);
  JUKE_ASSIGN_OR_RETURN(std::vector<EtcdKeyValue> kvs,
                        etcd_->GetPrefix(prefix));
  std::vector<StaleMark> marks;
  for (const EtcdKeyValue& kv : kvs) {
    std::vector<std::string> parts =
        absl::StrSplit(kv.key.substr(prefix.size()), '/');
    uint64_t chunk = 0;
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &chunk)) continue;
    absl::StatusOr<std::string> disk = UnescapeKeySegment(parts[1]);
    if (!disk.ok()) continue;
    marks.push_back({chunk, *std::move(disk), kv.mod_revision});
  }
  return marks;
}

absl::StatusOr<std::set<std::pair<uint64_t, std::string>>>
VolumeCatalog::StaleMarks(absl::string_view id) {
  JUKE_ASSIGN_OR_RETURN(std::vector<StaleMark> list, ListStaleMarks(id));
  std::set<std::pair<uint64_t, std::string>> marks;
  for (StaleMark& m : list) marks.emplace(m.chunk, std::move(m.disk_id));
  return marks;
}

absl::StatusOr<bool> VolumeCatalog::ClearStaleIfUnchanged(
    absl::string_view id, const StaleMark& mark, int64_t volume_revision) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(id));
  std::string key = StaleKey(id, mark.chunk, mark.disk_id);
  EtcdTxn txn;
  txn.IfModRevision(key, EtcdCompareOp::kEqual, mark.mod_revision);
  if (volume_revision != 0) {
    txn.IfModRevision(VolumeKey(id), EtcdCompareOp::kEqual, volume_revision);
  }
  txn.ThenDelete(key);
  JUKE_ASSIGN_OR_RETURN(EtcdTxnResult result, etcd_->Txn(txn));
  if (result.succeeded) {
    JUKE_LOG_INFO(Log(), "Replica current again volumeID={} chunk={} diskID={}",
                  id, mark.chunk, mark.disk_id);
  }
  return result.succeeded;
}

absl::Status VolumeCatalog::MarkDirty(absl::string_view id,
                                      uint64_t chunk_index,
                                      uint64_t generation) {
  return etcd_->Put(DirtyKey(id, chunk_index), absl::StrCat(generation));
}

absl::StatusOr<std::vector<DirtyMark>> VolumeCatalog::ListDirty(
    absl::string_view id) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(id));
  std::string prefix = DirtyVolumePrefix(id);
  JUKE_ASSIGN_OR_RETURN(std::vector<EtcdKeyValue> kvs,
                        etcd_->GetPrefix(prefix));
  std::vector<DirtyMark> marks;
  for (const EtcdKeyValue& kv : kvs) {
    DirtyMark m;
    if (!absl::SimpleAtoi(absl::string_view(kv.key).substr(prefix.size()),
                          &m.chunk) ||
        !absl::SimpleAtoi(kv.value, &m.generation)) {
      continue;
    }
    m.mod_revision = kv.mod_revision;
    marks.push_back(m);
  }
  return marks;
}

absl::StatusOr<bool> VolumeCatalog::SettleDirty(
    absl::string_view id, uint64_t chunk_index, int64_t mod_revision,
    const std::vector<std::string>& stale_disks, uint64_t generation) {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(id));
  const std::string key = DirtyKey(id, chunk_index);
  EtcdTxn txn;
  txn.IfValue(FenceKey(id), EtcdCompareOp::kEqual, absl::StrCat(generation));
  if (mod_revision != 0) {
    txn.IfModRevision(key, EtcdCompareOp::kEqual, mod_revision);
  }
  for (const std::string& disk : stale_disks) {
    txn.ThenPut(StaleKey(id, chunk_index, disk), absl::StrCat(generation));
  }
  txn.ThenDelete(key);
  JUKE_ASSIGN_OR_RETURN(EtcdTxnResult result, etcd_->Txn(txn));
  if (result.succeeded && !stale_disks.empty()) {
    JUKE_LOG_WARN(Log(),
                  "Dirty chunk settled, replicas marked stale volumeID={} "
                  "chunk={} diskIDs={} generation={}",
                  id, chunk_index, absl::StrJoin(stale_disks, ","), generation);
  }
  return result.succeeded;
}

}  // namespace juke
