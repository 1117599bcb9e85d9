#include "src/volume/snapshot_mover.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/map_store.h"
#include "src/model/placement.h"
#include "src/volume/restore.h"
#include "src/volume/snapshot_record.h"
#include "src/volume/volume_record.h"

namespace juke {
namespace {

namespace v1 = storage::v1;

Logger Log() {
  static const Logger log = GetLogger("snapshot");
  return log;
}

v1::ChunkId SnapshotChunkId(const SnapshotRecord& snapshot, uint64_t chunk) {
  v1::ChunkId id;
  id.set_volume_id(snapshot.source_volume_id);
  id.set_index(chunk);
  id.set_epoch(snapshot.epoch);
  return id;
}

// Deletes the snapshot's chunk from `disk`; OK when it has none.
absl::Status DropCopy(ChunkClientPool* clients, const SnapshotRecord& snapshot,
                      uint64_t chunk, const MapDisk& disk,
                      absl::Duration rpc_timeout) {
  v1::DeleteChunkRequest req;
  req.set_disk_id(disk.disk_id);
  *req.mutable_chunk() = SnapshotChunkId(snapshot, chunk);
  v1::DeleteChunkResponse resp;
  grpc::ClientContext ctx;
  SetDeadlineAfter(&ctx, rpc_timeout);
  absl::Status s =
      FromGrpcStatus(clients->For(disk.address)->DeleteChunk(&ctx, req, &resp));
  if (absl::IsNotFound(s)) return absl::OkStatus();
  return Annotate(s, absl::StrCat("delete chunk ", chunk, " of snapshot ",
                                  snapshot.id, " on ", disk.disk_id));
}

// Makes one copy of a snapshot's chunk on one disk: what the disk had under
// the key goes first, then every piece is a write expecting the version
// the previous one made, so that a copy another mover started over
// meanwhile fails this one (Aborted) instead of mixing the two.
class CopySink : public SnapshotPieceSink {
 public:
  CopySink(ChunkClientPool* clients, const SnapshotRecord& snapshot,
           uint64_t chunk, const MapDisk& target, RateLimiter* limiter,
           absl::Duration rpc_timeout)
      : clients_(clients),
        snapshot_(snapshot),
        chunk_(chunk),
        target_(target),
        limiter_(limiter),
        rpc_timeout_(rpc_timeout) {}

  absl::Status Begin() override {
    version_ = 0;
    bytes_ = 0;
    return DropCopy(clients_, snapshot_, chunk_, target_, rpc_timeout_);
  }

  absl::Status Piece(uint64_t offset,
                     const v1::ReadChunkResponse& data) override {
    if (limiter_ != nullptr) limiter_->Acquire(data.data().size());
    v1::WriteChunkRequest req;
    req.set_disk_id(target_.disk_id);
    *req.mutable_chunk() = SnapshotChunkId(snapshot_, chunk_);
    req.set_offset(offset);
    req.set_data(data.data());
    *req.mutable_checksums() = data.checksums();
    req.set_expected_version(version_);
    v1::WriteChunkResponse resp;
    grpc::ClientContext ctx;
    SetDeadlineAfter(&ctx, rpc_timeout_);
    JUKE_RETURN_IF_ERROR(Annotate(
        FromGrpcStatus(
            clients_->For(target_.address)->WriteChunk(&ctx, req, &resp)),
        absl::StrCat("write to ", target_.disk_id)));
    version_ = resp.version();
    bytes_ += data.data().size();
    return absl::OkStatus();
  }

  uint64_t bytes() const { return bytes_; }

 private:
  ChunkClientPool* const clients_;
  const SnapshotRecord& snapshot_;
  const uint64_t chunk_;
  const MapDisk& target_;
  RateLimiter* const limiter_;
  const absl::Duration rpc_timeout_;
  uint64_t version_ = 0;
  uint64_t bytes_ = 0;
};

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

absl::StatusOr<SnapshotMoveProgress> MoveSnapshot(
    EtcdClient* etcd, VolumeCatalog* catalog, ChunkClientPool* clients,
    const ClusterMap& live, absl::string_view snapshot_id, RateLimiter* limiter,
    absl::Duration rpc_timeout) {
  SnapshotMoveProgress progress;
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(snapshot_id));
  const std::string key = SnapshotKey(snapshot_id);
  JUKE_ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> kv, etcd->Get(key));
  if (!kv.has_value()) return progress;
  JUKE_ASSIGN_OR_RETURN(SnapshotRecord record, DecodeSnapshotRecord(kv->value));
  if (record.state != SnapshotState::kReady || record.epoch == 0) {
    return progress;
  }
  JUKE_ASSIGN_OR_RETURN(
      ClusterMap from,
      catalog->EpochMap(record.source_volume_id, record.placement_epoch, live));
  // EpochMap gives the live map itself when the placement is the same.
  const bool same_placement = from.epoch() == live.epoch();
  if (same_placement && record.stale.empty() && record.absent_disks.empty()) {
    return progress;
  }
  progress.from_epoch = record.placement_epoch;
  progress.to_epoch = live.epoch();
  auto wait = [&](const absl::Status& why) {
    progress.phase = "waiting";
    progress.reason = std::string(why.message());
    JUKE_LOG_INFO(Log(),
                  "Snapshot move waits snapshotID={} fromEpoch={} toEpoch={} "
                  "copied={} reason={}",
                  record.id, progress.from_epoch, progress.to_epoch,
                  progress.copied, progress.reason);
    return progress;
  };

  absl::StatusOr<std::set<uint64_t>> chunks =
      ListSnapshotChunks(clients, from, record, rpc_timeout);
  if (absl::IsUnavailable(chunks.status())) return wait(chunks.status());
  JUKE_RETURN_IF_ERROR(chunks.status());

  SnapshotRecord next = record;
  next.placement_epoch = live.epoch();
  next.stale.clear();
  next.absent_disks.clear();
  std::vector<std::pair<uint64_t, const MapDisk*>> made;
  std::vector<std::pair<uint64_t, const MapDisk*>> leaving;
  for (uint64_t c : *chunks) {
    ++progress.chunks;
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> old_replicas,
                          PlaceChunk(from, record.source_volume_id, c,
                                     record.replicas, record.failure_domain));
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> new_replicas,
                          PlaceChunk(live, record.source_volume_id, c,
                                     record.replicas, record.failure_domain));
    auto holds = [&](const std::string& d) {
      return Contains(old_replicas, d) && record.Holds(c, d);
    };
    std::vector<const MapDisk*> sources;
    for (const std::string& d : old_replicas) {
      const MapDisk* disk = live.FindDisk(d);
      if (holds(d) && disk != nullptr && disk->up) sources.push_back(disk);
    }
    bool kept = false;  // whether a replica of the new placement has it
    for (const std::string& d : new_replicas) {
      // A holder that is down has the data still, and serves it when back.
      if (holds(d)) {
        kept = true;
        continue;
      }
      const MapDisk* disk = live.FindDisk(d);
      if (disk == nullptr || !disk->up) {
        next.stale.insert({c, d});
        ++progress.stale;
        continue;
      }
      CopySink sink(clients, record, c, *disk, limiter, rpc_timeout);
      absl::Status s =
          CopySnapshotChunk(clients, record, c, sources, rpc_timeout, &sink);
      if (!s.ok()) {
        return wait(Annotate(
            s, absl::StrCat("copy chunk ", c, " to disk ", disk->disk_id)));
      }
      made.emplace_back(c, disk);
      ++progress.copied;
      progress.bytes += sink.bytes();
      kept = true;
    }
    if (!kept) {
      return wait(absl::UnavailableError(absl::StrCat(
          "every disk the current map places chunk ", c, " on is down")));
    }
    for (const std::string& d : old_replicas) {
      const MapDisk* disk = live.FindDisk(d);
      if (!Contains(new_replicas, d) && disk != nullptr && disk->up) {
        leaving.emplace_back(c, disk);
      }
    }
  }
  if (next == record) {
    // Only replicas on disks that are still down lack the data.
    return wait(absl::UnavailableError(
        absl::StrCat(progress.stale, " replicas are on disks that are down")));
  }

  // The switch: the record names the new placement and pins its epoch.
  JUKE_ASSIGN_OR_RETURN(std::string value, EncodeSnapshotRecord(next));
  EtcdTxn txn;
  txn.IfValue(key, EtcdCompareOp::kEqual, kv->value).ThenPut(key, value);
  if (next.placement_epoch != record.placement_epoch) {
    txn.ThenPut(MapPinKey(next.placement_epoch, SnapshotPinName(record.id)), "")
        .ThenDelete(
            MapPinKey(record.placement_epoch, SnapshotPinName(record.id)));
  }
  JUKE_ASSIGN_OR_RETURN(EtcdTxnResult switched, etcd->Txn(txn));
  if (!switched.succeeded) {
    // Another mover switched it, or it is being deleted: then the copies
    // made here would outlive it, so they go now.
    absl::StatusOr<std::optional<EtcdKeyValue>> now = etcd->Get(key);
    if (now.ok()) {
      absl::StatusOr<SnapshotRecord> r =
          now->has_value() ? DecodeSnapshotRecord((*now)->value)
                           : absl::NotFoundError("gone");
      if (!r.ok() || r->state == SnapshotState::kDeleting) {
        for (const auto& [c, disk] : made) {
          DropCopy(clients, record, c, *disk, rpc_timeout).IgnoreError();
        }
      }
    }
    return wait(absl::AbortedError(
        "the snapshot's record changed meanwhile; the next pass looks again"));
  }

  // The copies on disks that left: nobody reads them any more.
  for (const auto& [c, disk] : leaving) {
    absl::Status s = DropCopy(clients, record, c, *disk, rpc_timeout);
    if (!s.ok()) {
      // Left behind until the snapshot is deleted, which clears every disk.
      JUKE_LOG_WARN(Log(), "Cannot drop snapshot copy snapshotID={} err={}",
                    record.id, s);
      continue;
    }
    ++progress.dropped;
  }
  progress.phase = "moved";
  JUKE_LOG_INFO(Log(),
                "Snapshot moved snapshotID={} volumeID={} fromEpoch={} "
                "toEpoch={} chunks={} copied={} dropped={} staleReplicas={} "
                "bytes={}",
                record.id, record.source_volume_id, progress.from_epoch,
                progress.to_epoch, progress.chunks, progress.copied,
                progress.dropped, progress.stale, progress.bytes);
  return progress;
}

}  // namespace juke
