// The controller's snapshots, and volumes made from a snapshot or another
// volume (docs/csi.md, docs/snapshots.md).

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "src/common/status.h"
#include "src/csi/controller_service.h"
#include "src/csi/requests.h"
#include "src/csi/rpc.h"
#include "src/volume/snapshots.h"

namespace juke::csi {
namespace {

namespace v1 = ::csi::v1;

constexpr char kKubernetesPrefix[] = "csi.storage.k8s.io/";

void FillSnapshot(const SnapshotRecord& r, v1::Snapshot* s) {
  s->set_snapshot_id(r.id);
  s->set_source_volume_id(r.source_volume_id);
  s->set_size_bytes(static_cast<int64_t>(r.size_bytes));
  s->mutable_creation_time()->set_seconds(r.created_at);
  // Nothing is copied or uploaded after the cut: usable at once.
  s->set_ready_to_use(r.state == SnapshotState::kReady);
}

// The snapshot of a CSI snapshot id. An id this plugin could never have
// handed out names no snapshot: NotFound.
absl::StatusOr<SnapshotRecord> FindSnapshot(SnapshotCatalog& catalog,
                                            absl::string_view id) {
  if (!ValidateVolumeId(id).ok()) {
    return absl::NotFoundError(
        absl::StrCat("snapshot ", id, " does not exist"));
  }
  absl::StatusOr<SnapshotRecord> r = catalog.Get(id);
  if (r.ok() && r->state != SnapshotState::kReady) {
    return absl::NotFoundError(
        absl::StrCat("snapshot ", id, " is ", SnapshotStateName(r->state)));
  }
  return r;
}

}  // namespace

void FillContentSource(const VolumeRecord& record,
                       v1::VolumeContentSource* source) {
  if (!record.source.has_value()) return;
  if (record.source->kind == VolumeSource::Kind::kSnapshot) {
    source->mutable_snapshot()->set_snapshot_id(record.source->id);
  } else {
    source->mutable_volume()->set_volume_id(record.source->id);
  }
}

absl::StatusOr<ControllerService::Source> ControllerService::ResolveSource(
    const v1::VolumeContentSource& source) {
  Source out;
  if (source.has_snapshot()) {
    const std::string& id = source.snapshot().snapshot_id();
    if (id.empty()) {
      return absl::InvalidArgumentError("source snapshot_id is empty");
    }
    SnapshotCatalog snapshots(etcd_);
    JUKE_ASSIGN_OR_RETURN(SnapshotRecord snapshot, FindSnapshot(snapshots, id));
    out.source = {VolumeSource::Kind::kSnapshot, id};
    out.size_bytes = snapshot.size_bytes;
    return out;
  }
  if (source.has_volume()) {
    const std::string& id = source.volume().volume_id();
    if (id.empty()) {
      return absl::InvalidArgumentError("source volume_id is empty");
    }
    JUKE_ASSIGN_OR_RETURN(VolumeRecord volume, FindVolume(catalog_, id));
    if (volume.state != VolumeState::kReady) {
      return absl::NotFoundError(
          absl::StrCat("volume ", id, " is being deleted"));
    }
    out.source = {VolumeSource::Kind::kVolume, id};
    out.size_bytes = volume.size_bytes;
    return out;
  }
  return absl::InvalidArgumentError(
      "volume_content_source names neither a snapshot nor a volume");
}

absl::StatusOr<uint64_t> ControllerService::SizeWithSource(
    const Source& source, const v1::CreateVolumeRequest& request,
    uint64_t size) {
  if (!request.has_capacity_range()) return source.size_bytes;
  if (size >= source.size_bytes) return size;
  // The range asks for less than the source holds: the source's size
  // still satisfies required_bytes, if the limit allows it.
  const int64_t limit = request.capacity_range().limit_bytes();
  if (limit != 0 && static_cast<uint64_t>(limit) < source.size_bytes) {
    return absl::OutOfRangeError(
        absl::StrCat("the source holds ", source.size_bytes,
                     " bytes, more than capacity_range limit_bytes ", limit));
  }
  return source.size_bytes;
}

absl::Status ControllerService::Populate(const VolumeRecord& volume) {
  if (!volume.populating || !volume.source.has_value()) {
    return absl::OkStatus();
  }
  {
    absl::MutexLock lock(&filling_mu_);
    if (!filling_.insert(volume.id).second) {
      return absl::AbortedError(
          absl::StrCat("volume ", volume.id, " is being filled from ",
                       volume.source->id, " by an earlier call; retry"));
    }
  }
  absl::Status s = PopulateVolume(&catalog_, etcd_, clients_, volume);
  {
    absl::MutexLock lock(&filling_mu_);
    filling_.erase(volume.id);
  }
  if (s.ok()) return s;
  // A source that went away is the request's fault, a disk that is down
  // is not: the CO retries that.
  const std::string what =
      absl::StrCat("fill volume ", volume.id, " from ", volume.source->id);
  if (absl::IsFailedPrecondition(s)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
  }
  return Annotate(s, what);
}

grpc::Status ControllerService::CreateSnapshot(
    grpc::ServerContext* /*context*/, const v1::CreateSnapshotRequest* request,
    v1::CreateSnapshotResponse* response) {
  if (request->name().empty()) return Invalid("name is empty");
  if (request->source_volume_id().empty()) {
    return Invalid("source_volume_id is empty");
  }
  for (const auto& [key, value] : request->parameters()) {
    if (!absl::StartsWith(key, kKubernetesPrefix)) {
      return Invalid(absl::StrCat("unknown snapshot parameter \"", key, "\""));
    }
  }
  const std::string& source = request->source_volume_id();
  if (!ValidateVolumeId(source).ok()) {
    return {grpc::StatusCode::NOT_FOUND,
            absl::StrCat("volume ", source, " does not exist")};
  }
  const std::string id = SnapshotIdForName(request->name());
  absl::StatusOr<SnapshotRecord> snapshot =
      juke::CreateSnapshot(&catalog_, etcd_, clients_, id, source);
  if (absl::IsAlreadyExists(snapshot.status())) {
    return {grpc::StatusCode::ALREADY_EXISTS,
            absl::StrCat("a snapshot named \"", request->name(),
                         "\" exists of another volume")};
  }
  if (!snapshot.ok()) return Fail(snapshot.status());
  FillSnapshot(*snapshot, response->mutable_snapshot());
  return grpc::Status::OK;
}

grpc::Status ControllerService::DeleteSnapshot(
    grpc::ServerContext* /*context*/, const v1::DeleteSnapshotRequest* request,
    v1::DeleteSnapshotResponse* /*response*/) {
  const std::string& id = request->snapshot_id();
  if (id.empty()) return Invalid("snapshot_id is empty");
  // An id this plugin never hands out names no snapshot: nothing to do.
  if (!ValidateVolumeId(id).ok()) return grpc::Status::OK;
  return Fail(juke::DeleteSnapshot(etcd_, clients_, id));
}

grpc::Status ControllerService::ListSnapshots(
    grpc::ServerContext* /*context*/, const v1::ListSnapshotsRequest* request,
    v1::ListSnapshotsResponse* response) {
  if (request->max_entries() < 0) {
    return Invalid("max_entries must not be negative");
  }
  std::string after;
  if (!request->starting_token().empty()) {
    absl::StatusOr<std::string> last =
        DecodePageToken(request->starting_token());
    if (!last.ok()) return Fail(last.status());
    after = *last;
  }

  SnapshotCatalog snapshots(etcd_);
  std::vector<SnapshotRecord> all;
  if (!request->snapshot_id().empty()) {
    // One snapshot, or none: an unknown id lists nothing.
    absl::StatusOr<SnapshotRecord> one =
        FindSnapshot(snapshots, request->snapshot_id());
    if (one.ok()) {
      all.push_back(*std::move(one));
    } else if (!absl::IsNotFound(one.status())) {
      return Fail(one.status());
    }
  } else {
    absl::StatusOr<std::vector<SnapshotRecord>> listed = snapshots.List();
    if (!listed.ok()) return Fail(listed.status());
    all = *std::move(listed);
  }

  // Ids sort stably, so a page starts after the last id of the one before,
  // whatever was taken or deleted in between. Clones' internal snapshots
  // are Juke's own business.
  const size_t max = request->max_entries() == 0
                         ? all.size()
                         : static_cast<size_t>(request->max_entries());
  for (const SnapshotRecord& r : all) {
    if (!after.empty() && r.id <= after) continue;
    if (r.state != SnapshotState::kReady) continue;
    if (absl::StartsWith(r.id, CloneSnapshotId(""))) continue;
    if (!request->source_volume_id().empty() &&
        r.source_volume_id != request->source_volume_id()) {
      continue;
    }
    if (static_cast<size_t>(response->entries_size()) == max) {
      response->set_next_token(EncodePageToken(
          response->entries().rbegin()->snapshot().snapshot_id()));
      break;
    }
    FillSnapshot(r, response->add_entries()->mutable_snapshot());
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::GetSnapshot(
    grpc::ServerContext* /*context*/, const v1::GetSnapshotRequest* request,
    v1::GetSnapshotResponse* response) {
  if (request->snapshot_id().empty()) return Invalid("snapshot_id is empty");
  SnapshotCatalog snapshots(etcd_);
  absl::StatusOr<SnapshotRecord> r =
      FindSnapshot(snapshots, request->snapshot_id());
  if (!r.ok()) return Fail(r.status());
  FillSnapshot(*r, response->mutable_snapshot());
  return grpc::Status::OK;
}

}  // namespace juke::csi
