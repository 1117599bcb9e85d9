#include "src/volume/recovery.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
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
  static const Logger log = GetLogger("recovery");
  return log;
}

// The most one request carries.
constexpr uint64_t kMaxPiece = 4ull << 20;

v1::ChunkId ChunkOf(const VolumeRecord& record, uint64_t chunk) {
  v1::ChunkId id;
  id.set_volume_id(record.id);
  id.set_index(chunk);
  return id;
}

// The version of the chunk on `disk` (0 when absent).
absl::StatusOr<uint64_t> VersionOn(v1::ChunkService::Stub* stub,
                                   const std::string& disk,
                                   const VolumeRecord& record, uint64_t chunk,
                                   absl::Duration timeout) {
  v1::ReadChunkRequest req;
  req.set_disk_id(disk);
  *req.mutable_chunk() = ChunkOf(record, chunk);
  req.set_offset(0);
  req.set_length(kBlockSize);
  v1::ReadChunkResponse resp;
  grpc::ClientContext ctx;
  SetDeadlineAfter(&ctx, timeout);
  absl::Status s = FromGrpcStatus(stub->ReadChunk(&ctx, req, &resp));
  if (absl::IsNotFound(s)) return 0;
  JUKE_RETURN_IF_ERROR(s);
  return resp.version();
}

// Why a copy from one source did not happen.
enum class SourceOutcome { kCopied, kAbsent, kFailed };

}  // namespace

RecoveryProgress& RecoveryProgress::operator+=(const RecoveryProgress& o) {
  marks += o.marks;
  recovered += o.recovered;
  waiting += o.waiting;
  bytes += o.bytes;
  return *this;
}

absl::StatusOr<uint64_t> CopyReplica(
    ChunkClientPool* clients, const ClusterMap& placement,
    const ClusterMap& live, const VolumeRecord& record, uint64_t chunk,
    const std::string& target, const std::set<std::string>& stale,
    uint64_t generation, RateLimiter* limiter, absl::Duration rpc_timeout) {
  JUKE_ASSIGN_OR_RETURN(std::vector<std::string> replicas,
                        PlaceChunk(placement, record.id, chunk, record.replicas,
                                   record.failure_domain));
  if (std::find(replicas.begin(), replicas.end(), target) == replicas.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "recover volume ", record.id, " chunk ", chunk, " on ", target,
        ": not a replica of the chunk under map epoch ", placement.epoch()));
  }
  std::vector<std::string> sources;
  for (const std::string& r : replicas) {
    if (r != target && stale.count(r) == 0) sources.push_back(r);
  }
  return CopyChunk(clients, live, record, chunk, sources, target, generation,
                   limiter, rpc_timeout);
}

absl::StatusOr<uint64_t> CopyChunk(ChunkClientPool* clients,
                                   const ClusterMap& live,
                                   const VolumeRecord& record, uint64_t chunk,
                                   const std::vector<std::string>& sources,
                                   const std::string& target,
                                   uint64_t generation, RateLimiter* limiter,
                                   absl::Duration rpc_timeout) {
  const std::string what =
      absl::StrCat("copy volume ", record.id, " chunk ", chunk, " to ", target);
  const MapDisk* to = live.FindDisk(target);
  if (to == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the cluster map has no such disk"));
  }
  v1::ChunkService::Stub* target_stub = clients->For(to->address);

  absl::Status last = absl::FailedPreconditionError(
      absl::StrCat(what, ": no current replica is up"));
  bool any_absent = false;
  for (const std::string& source : sources) {
    const MapDisk* from = live.FindDisk(source);
    if (source == target || from == nullptr || !from->up) continue;
    v1::ChunkService::Stub* source_stub = clients->For(from->address);
    JUKE_ASSIGN_OR_RETURN(
        uint64_t version,
        VersionOn(target_stub, target, record, chunk, rpc_timeout));

    SourceOutcome outcome = SourceOutcome::kCopied;
    uint64_t copied = 0;
    const uint64_t piece = std::min(record.chunk_size, kMaxPiece);
    for (uint64_t offset = 0; offset < record.chunk_size; offset += piece) {
      v1::ReadChunkRequest read;
      read.set_disk_id(source);
      *read.mutable_chunk() = ChunkOf(record, chunk);
      read.set_offset(offset);
      read.set_length(piece);
      v1::ReadChunkResponse data;
      grpc::ClientContext rctx;
      SetDeadlineAfter(&rctx, rpc_timeout);
      absl::Status s =
          FromGrpcStatus(source_stub->ReadChunk(&rctx, read, &data));
      if (s.ok()) {
        const auto* bytes =
            reinterpret_cast<const uint8_t*>(data.data().data());
        std::vector<uint32_t> sums =
            BlockChecksums({bytes, data.data().size()});
        if (data.data().size() != piece ||
            !std::equal(sums.begin(), sums.end(), data.checksums().begin(),
                        data.checksums().end())) {
          s = absl::DataLossError("checksum mismatch on the wire");
        }
      }
      if (absl::IsNotFound(s) && offset == 0) {
        outcome = SourceOutcome::kAbsent;
        break;
      }
      if (!s.ok()) {
        last = Annotate(s, absl::StrCat(what, ": read from ", source));
        outcome = SourceOutcome::kFailed;
        break;
      }

      limiter->Acquire(piece);
      v1::WriteChunkRequest write;
      write.set_disk_id(target);
      *write.mutable_chunk() = ChunkOf(record, chunk);
      write.set_offset(offset);
      write.set_allocated_data(data.release_data());
      *write.mutable_checksums() = data.checksums();
      write.set_generation(generation);
      write.set_expected_version(version);
      v1::WriteChunkResponse written;
      grpc::ClientContext wctx;
      SetDeadlineAfter(&wctx, rpc_timeout);
      JUKE_RETURN_IF_ERROR(Annotate(
          FromGrpcStatus(target_stub->WriteChunk(&wctx, write, &written)),
          what));
      version = written.version();
      copied += piece;
    }
    if (outcome == SourceOutcome::kCopied) return copied;
    if (outcome == SourceOutcome::kAbsent) any_absent = true;
  }
  if (any_absent) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": no current replica holds the chunk"));
  }
  return last;
}

absl::StatusOr<RecoveryProgress> RecoverDetachedVolume(
    VolumeCatalog* catalog, ChunkClientPool* clients, const ClusterMap& map,
    absl::string_view id,
    const std::function<bool(absl::string_view disk_id)>& accept,
    RateLimiter* limiter, absl::Duration rpc_timeout) {
  RecoveryProgress progress;
  absl::StatusOr<VersionedVolume> volume = catalog->GetVersioned(id);
  if (absl::IsNotFound(volume.status())) return progress;
  JUKE_RETURN_IF_ERROR(volume.status());
  const VolumeRecord& record = volume->record;

  JUKE_ASSIGN_OR_RETURN(std::vector<StaleMark> marks,
                        catalog->ListStaleMarks(id));
  if (marks.empty()) return progress;
  std::map<uint64_t, std::set<std::string>> stale;
  for (const StaleMark& m : marks) stale[m.chunk].insert(m.disk_id);
  absl::StatusOr<ClusterMap> placement = catalog->PlacementMap(record, map);
  JUKE_RETURN_IF_ERROR(placement.status());

  const bool held =
      record.attachment.has_value() && !record.attachment->read_only;
  for (const StaleMark& mark : marks) {
    if (accept(mark.disk_id)) ++progress.marks;
  }
  for (const StaleMark& mark : marks) {
    if (!accept(mark.disk_id)) continue;
    if (held || record.state != VolumeState::kReady) {
      ++progress.waiting;
      continue;
    }
    absl::StatusOr<uint64_t> copied =
        CopyReplica(clients, *placement, map, record, mark.chunk, mark.disk_id,
                    stale[mark.chunk], record.generation, limiter, rpc_timeout);
    if (!copied.ok()) {
      JUKE_LOG_INFO(Log(),
                    "Replica not recovered yet volumeID={} chunk={} "
                    "diskID={} err={}",
                    id, mark.chunk, mark.disk_id, copied.status());
      ++progress.waiting;
      continue;
    }
    progress.bytes += *copied;
    JUKE_ASSIGN_OR_RETURN(bool cleared, catalog->ClearStaleIfUnchanged(
                                            id, mark, volume->mod_revision));
    if (!cleared) {
      // A writer attached or marked the replica again; the rest of the
      // pass would only waste copies.
      progress.waiting = progress.marks - progress.recovered;
      JUKE_LOG_INFO(Log(),
                    "Volume changed during recovery, stopping this pass "
                    "volumeID={}",
                    id);
      return progress;
    }
    ++progress.recovered;
    stale[mark.chunk].erase(mark.disk_id);
  }
  return progress;
}

}  // namespace juke
