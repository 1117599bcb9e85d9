#include "src/storage/chunk_service.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"

namespace juke::storage {
namespace {

Logger Log() {
  static const Logger log = GetLogger("chunk-service");
  return log;
}

// Times one call and, when it ends, logs and counts it under its code.
class CallScope {
 public:
  CallScope(StorageMetrics* metrics, absl::string_view method)
      : metrics_(metrics), method_(method), start_(absl::Now()) {}

  grpc::Status Finish(const absl::Status& status) {
    absl::Duration took = absl::Now() - start_;
    std::string code = absl::StatusCodeToString(status.code());
    metrics_->RecordRequest(method_, code, took);
    if (status.code() == absl::StatusCode::kDataLoss) {
      metrics_->AddChecksumFailure();
    }
    JUKE_LOG_DEBUG(Log(), "Call done method={} code={} duration={} err={}",
                   method_, code, absl::FormatDuration(took), status.message());
    return ToGrpcStatus(status);
  }

 private:
  StorageMetrics* const metrics_;
  const absl::string_view method_;
  const absl::Time start_;
};

absl::Status CheckChunkRef(const std::string& disk_id, bool has_chunk) {
  if (disk_id.empty()) return absl::InvalidArgumentError("disk_id is empty");
  if (!has_chunk) return absl::InvalidArgumentError("chunk is missing");
  return absl::OkStatus();
}

ChunkKey KeyOf(const v1::ChunkId& id) {
  return ChunkKey{id.volume_id(), id.index(), id.epoch()};
}

v1::ChunkId IdOf(const ChunkKey& key) {
  v1::ChunkId id;
  id.set_volume_id(key.volume_id);
  id.set_index(key.index);
  id.set_epoch(key.epoch);
  return id;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

v1::DiskState ToProto(DiskInfo::State state) {
  switch (state) {
    case DiskInfo::State::kHealthy:
      return v1::DISK_STATE_HEALTHY;
    case DiskInfo::State::kDegraded:
      return v1::DISK_STATE_DEGRADED;
    case DiskInfo::State::kFailed:
      return v1::DISK_STATE_FAILED;
  }
  return v1::DISK_STATE_UNSPECIFIED;
}

}  // namespace

grpc::Status ChunkServiceImpl::WriteChunk(grpc::ServerContext*,
                                          const v1::WriteChunkRequest* req,
                                          v1::WriteChunkResponse* resp) {
  CallScope call(metrics_, "WriteChunk");
  absl::Status status = CheckChunkRef(req->disk_id(), req->has_chunk());
  if (status.ok() && gate_ != nullptr) status = gate_();
  if (status.ok() && req->data().size() > kMaxTransferBytes) {
    status = absl::InvalidArgumentError(
        absl::StrCat("data is ", req->data().size(), " bytes; at most ",
                     kMaxTransferBytes, " per request"));
  }
  if (!status.ok()) return call.Finish(status);

  absl::StatusOr<uint64_t> version = node_->Write(
      req->disk_id(), KeyOf(req->chunk()), req->offset(), Bytes(req->data()),
      {req->checksums().data(), static_cast<size_t>(req->checksums().size())},
      req->generation(),
      req->has_expected_version()
          ? std::optional<uint64_t>(req->expected_version())
          : std::nullopt);
  if (!version.ok()) return call.Finish(version.status());
  metrics_->AddWritten(req->data().size());
  resp->set_version(*version);
  return call.Finish(absl::OkStatus());
}

grpc::Status ChunkServiceImpl::ReadChunk(grpc::ServerContext*,
                                         const v1::ReadChunkRequest* req,
                                         v1::ReadChunkResponse* resp) {
  CallScope call(metrics_, "ReadChunk");
  absl::Status status = CheckChunkRef(req->disk_id(), req->has_chunk());
  if (status.ok() && req->length() > kMaxTransferBytes &&
      !req->checksums_only()) {
    status = absl::InvalidArgumentError(
        absl::StrCat("length is ", req->length(), " bytes; at most ",
                     kMaxTransferBytes, " per request"));
  }
  if (!status.ok()) return call.Finish(status);

  absl::StatusOr<ReadResult> read =
      req->checksums_only()
          ? node_->ReadChecksums(req->disk_id(), KeyOf(req->chunk()),
                                 req->offset(), req->length())
          : node_->Read(req->disk_id(), KeyOf(req->chunk()), req->offset(),
                        req->length());
  if (!read.ok()) return call.Finish(read.status());
  resp->set_data(read->data.data(), read->data.size());
  resp->mutable_checksums()->Add(read->checksums.begin(),
                                 read->checksums.end());
  resp->set_version(read->version);
  resp->set_generation(read->generation);
  metrics_->AddRead(read->data.size());
  return call.Finish(absl::OkStatus());
}

grpc::Status ChunkServiceImpl::DeleteChunk(grpc::ServerContext*,
                                           const v1::DeleteChunkRequest* req,
                                           v1::DeleteChunkResponse*) {
  CallScope call(metrics_, "DeleteChunk");
  absl::Status status = CheckChunkRef(req->disk_id(), req->has_chunk());
  if (status.ok() && gate_ != nullptr) status = gate_();
  if (!status.ok()) return call.Finish(status);
  return call.Finish(
      node_->Delete(req->disk_id(), KeyOf(req->chunk()), req->generation()));
}

grpc::Status ChunkServiceImpl::ListChunks(grpc::ServerContext*,
                                          const v1::ListChunksRequest* req,
                                          v1::ListChunksResponse* resp) {
  CallScope call(metrics_, "ListChunks");
  if (req->disk_id().empty()) {
    return call.Finish(absl::InvalidArgumentError("disk_id is empty"));
  }
  absl::StatusOr<ListResult> list = node_->List(
      req->disk_id(), req->volume_id(), req->page_size(), req->page_token());
  if (!list.ok()) return call.Finish(list.status());
  for (const ChunkMeta& meta : list->chunks) {
    v1::ChunkInfo* info = resp->add_chunks();
    *info->mutable_chunk() = IdOf(meta.key);
    info->set_size(meta.size);
    info->set_version(meta.version);
    info->set_generation(meta.generation);
  }
  resp->set_next_page_token(list->next_page_token);
  return call.Finish(absl::OkStatus());
}

grpc::Status ChunkServiceImpl::GetDisks(grpc::ServerContext*,
                                        const v1::GetDisksRequest*,
                                        v1::GetDisksResponse* resp) {
  CallScope call(metrics_, "GetDisks");
  resp->set_host_id(node_->host_id());
  for (const DiskInfo& d : node_->Disks()) {
    v1::DiskStatus* s = resp->add_disks();
    s->set_disk_id(d.disk_id);
    s->set_path(d.path);
    s->set_state(ToProto(d.state));
    s->set_reason(d.reason);
    s->set_capacity_bytes(d.stats.capacity_bytes);
    s->set_used_bytes(d.stats.used_bytes);
    s->set_available_bytes(d.stats.available_bytes);
    s->set_chunk_count(d.stats.chunk_count);
    s->set_checksum_failures(d.stats.checksum_failures);
    s->set_io_errors(d.stats.io_errors);
  }
  return call.Finish(absl::OkStatus());
}

grpc::Status ChunkServiceImpl::FenceVolume(grpc::ServerContext*,
                                           const v1::FenceVolumeRequest* req,
                                           v1::FenceVolumeResponse* resp) {
  CallScope call(metrics_, "FenceVolume");
  if (req->volume_id().empty()) {
    return call.Finish(absl::InvalidArgumentError("volume_id is empty"));
  }
  if (req->generation() == 0) {
    return call.Finish(
        absl::InvalidArgumentError("generation must be at least 1"));
  }
  absl::StatusOr<uint64_t> now =
      node_->Fence(req->volume_id(), req->generation());
  if (!now.ok()) return call.Finish(now.status());
  resp->set_generation(*now);
  return call.Finish(absl::OkStatus());
}

grpc::Status ChunkServiceImpl::SnapshotVolume(
    grpc::ServerContext*, const v1::SnapshotVolumeRequest* req,
    v1::SnapshotVolumeResponse* resp) {
  CallScope call(metrics_, "SnapshotVolume");
  absl::Status status;
  if (req->volume_id().empty()) {
    status = absl::InvalidArgumentError("volume_id is empty");
  } else if (req->epoch() == 0) {
    status = absl::InvalidArgumentError("epoch must be at least 1");
  } else if (gate_ != nullptr) {
    // A snapshot is a point in the volume's writes: a host that may have
    // missed a fence takes none.
    status = gate_();
  }
  if (!status.ok()) return call.Finish(status);
  absl::StatusOr<uint64_t> chunks =
      node_->Snapshot(req->volume_id(), req->epoch(), req->generation());
  if (!chunks.ok()) return call.Finish(chunks.status());
  resp->set_chunks(*chunks);
  return call.Finish(absl::OkStatus());
}

grpc::Status ChunkServiceImpl::DeleteSnapshot(
    grpc::ServerContext*, const v1::DeleteSnapshotRequest* req,
    v1::DeleteSnapshotResponse*) {
  CallScope call(metrics_, "DeleteSnapshot");
  if (req->volume_id().empty()) {
    return call.Finish(absl::InvalidArgumentError("volume_id is empty"));
  }
  if (req->epoch() == 0) {
    return call.Finish(absl::InvalidArgumentError("epoch must be at least 1"));
  }
  return call.Finish(node_->DeleteSnapshot(req->volume_id(), req->epoch()));
}

}  // namespace juke::storage
