#include "src/volume/restore.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "src/common/checksum.h"
#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/placement.h"

namespace juke {
namespace {

namespace v1 = storage::v1;

Logger Log() {
  static const Logger log = GetLogger("snapshot");
  return log;
}

// The most one request carries; smaller pieces let zero runs be skipped.
constexpr uint64_t kPiece = 1ull << 20;

bool AllZero(const std::string& data) {
  return std::all_of(data.begin(), data.end(), [](char c) { return c == 0; });
}

// Reads piece `offset` of the snapshot's chunk from `disk`, checked.
absl::StatusOr<v1::ReadChunkResponse> ReadPiece(ChunkClientPool* clients,
                                                const SnapshotRecord& snapshot,
                                                const MapDisk& disk,
                                                uint64_t chunk, uint64_t offset,
                                                uint64_t length,
                                                absl::Duration rpc_timeout) {
  v1::ReadChunkRequest req;
  req.set_disk_id(disk.disk_id);
  req.mutable_chunk()->set_volume_id(snapshot.source_volume_id);
  req.mutable_chunk()->set_index(chunk);
  req.mutable_chunk()->set_epoch(snapshot.epoch);
  req.set_offset(offset);
  req.set_length(length);
  v1::ReadChunkResponse resp;
  grpc::ClientContext ctx;
  SetDeadlineAfter(&ctx, rpc_timeout);
  JUKE_RETURN_IF_ERROR(
      FromGrpcStatus(clients->For(disk.address)->ReadChunk(&ctx, req, &resp)));
  const auto* bytes = reinterpret_cast<const uint8_t*>(resp.data().data());
  std::vector<uint32_t> sums = BlockChecksums({bytes, resp.data().size()});
  if (resp.data().size() != length ||
      !std::equal(sums.begin(), sums.end(), resp.checksums().begin(),
                  resp.checksums().end())) {
    return absl::DataLossError("checksum mismatch on the wire");
  }
  return resp;
}

// Writes each piece into the live chunk of the target volume on every
// replica of its placement, with the target's generation.
class VolumeSink : public SnapshotPieceSink {
 public:
  VolumeSink(ChunkClientPool* clients, const VolumeRecord& target,
             uint64_t chunk, std::vector<const MapDisk*> targets,
             absl::Duration rpc_timeout)
      : clients_(clients),
        target_(target),
        chunk_(chunk),
        targets_(std::move(targets)),
        rpc_timeout_(rpc_timeout) {}

  // The target's chunks are new: nothing to start over.
  absl::Status Begin() override { return absl::OkStatus(); }

  absl::Status Piece(uint64_t offset,
                     const v1::ReadChunkResponse& data) override {
    for (const MapDisk* t : targets_) {
      v1::WriteChunkRequest req;
      req.set_disk_id(t->disk_id);
      req.mutable_chunk()->set_volume_id(target_.id);
      req.mutable_chunk()->set_index(chunk_);
      req.set_offset(offset);
      req.set_data(data.data());
      *req.mutable_checksums() = data.checksums();
      req.set_generation(target_.generation);
      v1::WriteChunkResponse resp;
      grpc::ClientContext ctx;
      SetDeadlineAfter(&ctx, rpc_timeout_);
      JUKE_RETURN_IF_ERROR(
          Annotate(FromGrpcStatus(
                       clients_->For(t->address)->WriteChunk(&ctx, req, &resp)),
                   absl::StrCat("write to ", t->disk_id)));
    }
    return absl::OkStatus();
  }

 private:
  ChunkClientPool* const clients_;
  const VolumeRecord& target_;
  const uint64_t chunk_;
  const std::vector<const MapDisk*> targets_;
  const absl::Duration rpc_timeout_;
};

}  // namespace

absl::Status CopySnapshotChunk(ChunkClientPool* clients,
                               const SnapshotRecord& snapshot, uint64_t chunk,
                               const std::vector<const MapDisk*>& sources,
                               absl::Duration rpc_timeout,
                               SnapshotPieceSink* sink) {
  absl::Status last = absl::UnavailableError(
      absl::StrCat("chunk ", chunk, " of snapshot ", snapshot.id,
                   " has no replica that is up and holds its data"));
  const uint64_t piece = std::min(snapshot.chunk_size, kPiece);
  for (const MapDisk* source : sources) {
    JUKE_RETURN_IF_ERROR(sink->Begin());
    absl::Status s;
    for (uint64_t offset = 0; s.ok() && offset < snapshot.chunk_size;
         offset += piece) {
      absl::StatusOr<v1::ReadChunkResponse> data = ReadPiece(
          clients, snapshot, *source, chunk, offset, piece, rpc_timeout);
      s = data.status();
      if (!s.ok() || AllZero(data->data())) continue;
      // A failed write is the target's fault: another source will not help.
      JUKE_RETURN_IF_ERROR(sink->Piece(offset, *data));
    }
    if (s.ok()) return s;
    last = Annotate(
        s, absl::StrCat("copy chunk ", chunk, " from ", source->disk_id));
  }
  return last;
}

absl::StatusOr<std::set<uint64_t>> ListSnapshotChunks(
    ChunkClientPool* clients, const ClusterMap& from,
    const SnapshotRecord& snapshot, absl::Duration rpc_timeout) {
  std::set<uint64_t> chunks;
  std::set<std::string> listed;
  for (const MapDisk& d : from.disks()) {
    if (!d.up || snapshot.absent_disks.count(d.disk_id) > 0) continue;
    absl::StatusOr<std::vector<uint64_t>> on_disk = ListChunkIndexes(
        clients->For(d.address), d.disk_id, snapshot.source_volume_id,
        rpc_timeout, snapshot.epoch);
    if (!on_disk.ok()) continue;
    chunks.insert(on_disk->begin(), on_disk->end());
    listed.insert(d.disk_id);
  }
  // A chunk not listed is absent only if one of its holders was listed.
  const uint64_t count = snapshot.size_bytes / snapshot.chunk_size;
  if (listed.size() != from.disks().size()) {
    for (uint64_t c = 0; c < count; ++c) {
      if (chunks.count(c) > 0) continue;
      JUKE_ASSIGN_OR_RETURN(
          std::vector<std::string> replicas,
          PlaceChunk(from, snapshot.source_volume_id, c, snapshot.replicas,
                     snapshot.failure_domain));
      bool vouched = std::any_of(
          replicas.begin(), replicas.end(), [&](const std::string& d) {
            return listed.count(d) > 0 && snapshot.Holds(c, d);
          });
      if (!vouched) {
        return absl::UnavailableError(
            absl::StrCat("chunk ", c, " of snapshot ", snapshot.id,
                         " may exist only on disks that are down"));
      }
    }
  }
  // Entries past the snapshot's size are none of its data.
  chunks.erase(chunks.lower_bound(count), chunks.end());
  return chunks;
}

absl::Status CopySnapshotInto(VolumeCatalog* catalog, ChunkClientPool* clients,
                              const ClusterMap& live,
                              const SnapshotRecord& snapshot,
                              const VolumeRecord& target,
                              absl::Duration rpc_timeout) {
  if (snapshot.chunk_size != target.chunk_size) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot ", snapshot.id, " has chunks of ", snapshot.chunk_size,
        " bytes, volume ", target.id, " of ", target.chunk_size));
  }
  if (snapshot.size_bytes > target.size_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "snapshot ", snapshot.id, " holds ", snapshot.size_bytes,
        " bytes; volume ", target.id, " has only ", target.size_bytes));
  }
  JUKE_ASSIGN_OR_RETURN(ClusterMap from,
                        catalog->EpochMap(snapshot.source_volume_id,
                                          snapshot.placement_epoch, live));
  JUKE_ASSIGN_OR_RETURN(ClusterMap to, catalog->PlacementMap(target, live));

  JUKE_ASSIGN_OR_RETURN(
      std::set<uint64_t> chunks,
      ListSnapshotChunks(clients, from, snapshot, rpc_timeout));
  for (uint64_t c : chunks) {
    JUKE_ASSIGN_OR_RETURN(
        std::vector<std::string> holders,
        PlaceChunk(from, snapshot.source_volume_id, c, snapshot.replicas,
                   snapshot.failure_domain));
    std::vector<const MapDisk*> sources;
    for (const std::string& d : holders) {
      const MapDisk* disk = live.FindDisk(d);
      if (disk != nullptr && disk->up && snapshot.Holds(c, d)) {
        sources.push_back(disk);
      }
    }
    JUKE_ASSIGN_OR_RETURN(
        std::vector<std::string> replicas,
        PlaceChunk(to, target.id, c, target.replicas, target.failure_domain));
    std::vector<const MapDisk*> targets;
    for (const std::string& d : replicas) {
      const MapDisk* disk = live.FindDisk(d);
      if (disk == nullptr || !disk->up) {
        return absl::UnavailableError(
            absl::StrCat("disk ", d, " of volume ", target.id, " is down"));
      }
      targets.push_back(disk);
    }
    VolumeSink sink(clients, target, c, std::move(targets), rpc_timeout);
    JUKE_RETURN_IF_ERROR(
        CopySnapshotChunk(clients, snapshot, c, sources, rpc_timeout, &sink));
  }
  JUKE_LOG_INFO(Log(), "Snapshot copied snapshotID={} volumeID={} chunks={}",
                snapshot.id, target.id, chunks.size());
  return absl::OkStatus();
}

}  // namespace juke
