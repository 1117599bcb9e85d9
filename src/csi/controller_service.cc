#include "src/csi/controller_service.h"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/csi/requests.h"
#include "src/csi/rpc.h"
#include "src/model/keys.h"
#include "src/model/map_store.h"
#include "src/model/placement.h"
#include "src/volume/volume_client.h"

namespace juke::csi {
namespace {

namespace v1 = ::csi::v1;

// Checks every capability of a request; InvalidArgument when there is
// none.
absl::Status CheckCapabilities(
    const google::protobuf::RepeatedPtrField<v1::VolumeCapability>& caps) {
  if (caps.empty()) {
    return absl::InvalidArgumentError("volume_capabilities is empty");
  }
  for (const v1::VolumeCapability& c : caps) {
    JUKE_RETURN_IF_ERROR(CheckCapability(c));
  }
  return absl::OkStatus();
}

// Mutable parameters take precedence over the others (CSI spec).
absl::Status ApplyMutableParameters(
    const google::protobuf::Map<std::string, std::string>& mutable_parameters,
    VolumeParameters* params) {
  JUKE_ASSIGN_OR_RETURN(MutableParameters m,
                        ParseMutableParameters(mutable_parameters));
  if (m.replicas.has_value()) params->replicas = *m.replicas;
  return absl::OkStatus();
}

void FillVolume(const VolumeRecord& r, v1::Volume* v) {
  v->set_volume_id(r.id);
  v->set_capacity_bytes(static_cast<int64_t>(r.size_bytes));
  (*v->mutable_volume_context())["replicas"] = absl::StrCat(TargetReplicas(r));
  (*v->mutable_volume_context())["failureDomain"] =
      std::string(FailureDomainName(r.failure_domain));
  if (r.source.has_value()) FillContentSource(r, v->mutable_content_source());
}

}  // namespace

absl::StatusOr<v1::VolumeCondition> VolumeConditionOf(VolumeCatalog& catalog,
                                                      absl::string_view id) {
  JUKE_ASSIGN_OR_RETURN(auto marks, catalog.StaleMarks(id));
  v1::VolumeCondition c;
  c.set_abnormal(!marks.empty());
  c.set_message(marks.empty()
                    ? "every written replica is current"
                    : absl::StrCat(marks.size(),
                                   " replicas missed writes and wait for "
                                   "recovery"));
  return c;
}

absl::StatusOr<VolumeRecord> FindVolume(VolumeCatalog& catalog,
                                        absl::string_view id) {
  if (!ValidateVolumeId(id).ok()) {
    return absl::NotFoundError(absl::StrCat("volume ", id, " does not exist"));
  }
  return catalog.Get(id);
}

std::string CsiNodeKey(absl::string_view node_id) {
  return absl::StrCat(kCsiNodesPrefix, EscapeKeySegment(node_id));
}

absl::Status RegisterCsiNode(EtcdClient& etcd, absl::string_view node_id,
                             const HostLabels& topology) {
  nlohmann::json j = {{"region", topology.region},
                      {"zone", topology.zone},
                      {"cluster", topology.cluster},
                      {"host", topology.host}};
  return etcd.Put(
      CsiNodeKey(node_id),
      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

grpc::Status ControllerService::CreateVolume(
    grpc::ServerContext* /*context*/, const v1::CreateVolumeRequest* request,
    v1::CreateVolumeResponse* response) {
  if (request->name().empty()) return Invalid("name is empty");
  if (absl::Status s = CheckCapabilities(request->volume_capabilities());
      !s.ok()) {
    return Fail(s);
  }
  std::optional<Source> source;
  if (request->has_volume_content_source()) {
    absl::StatusOr<Source> resolved =
        ResolveSource(request->volume_content_source());
    if (!resolved.ok()) return Fail(resolved.status());
    source = *resolved;
  }
  absl::StatusOr<VolumeParameters> params =
      ParseParameters(request->parameters());
  if (!params.ok()) return Fail(params.status());
  if (absl::Status s =
          ApplyMutableParameters(request->mutable_parameters(), &*params);
      !s.ok()) {
    return Fail(s);
  }
  absl::StatusOr<uint64_t> size = SizeForRange(
      request->has_capacity_range() ? &request->capacity_range() : nullptr,
      kDefaultChunkSize);
  if (!size.ok()) return Fail(size.status());
  if (source.has_value()) {
    size = SizeWithSource(*source, *request, *size);
    if (!size.ok()) return Fail(size.status());
  }

  VolumeRecord shape;
  shape.id = VolumeIdForName(request->name());
  shape.size_bytes = *size;
  shape.replicas = params->replicas;
  shape.failure_domain = params->failure_domain;
  if (source.has_value()) {
    shape.source = source->source;
    shape.populating = true;
  }
  absl::StatusOr<VolumeRecord> created = catalog_.Create(shape);
  if (absl::IsFailedPrecondition(created.status())) {
    // The pool has too few failure domains for the replicas asked for.
    return Fail(absl::ResourceExhaustedError(created.status().message()));
  }
  if (absl::IsAlreadyExists(created.status())) {
    return Fail(absl::AlreadyExistsError(
        absl::StrCat("a volume named \"", request->name(),
                     "\" exists with another size or parameters")));
  }
  if (!created.ok()) return Fail(created.status());
  if (absl::Status s = Populate(*created); !s.ok()) return Fail(s);
  FillVolume(*created, response->mutable_volume());
  return grpc::Status::OK;
}

grpc::Status ControllerService::DeleteVolume(
    grpc::ServerContext* /*context*/, const v1::DeleteVolumeRequest* request,
    v1::DeleteVolumeResponse* /*response*/) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  // An id this plugin never hands out names no volume: nothing to delete.
  if (!ValidateVolumeId(id).ok()) return grpc::Status::OK;
  // On a failure with a disk down the record stays "deleting"; the CO
  // calls again and finishes.
  absl::Status deleted = juke::DeleteVolume(&catalog_, etcd_, clients_, id);
  if (absl::IsNotFound(deleted)) return grpc::Status::OK;
  return Fail(deleted);
}

grpc::Status ControllerService::ControllerPublishVolume(
    grpc::ServerContext* /*context*/,
    const v1::ControllerPublishVolumeRequest* request,
    v1::ControllerPublishVolumeResponse* response) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  if (request->node_id().empty()) return Invalid("node_id is empty");
  if (!request->has_volume_capability()) {
    return Invalid("volume_capability is missing");
  }
  if (absl::Status s = CheckCapability(request->volume_capability()); !s.ok()) {
    return Fail(s);
  }
  absl::StatusOr<VolumeRecord> v = FindVolume(catalog_, id);
  if (!v.ok()) return Fail(v.status());
  absl::StatusOr<std::optional<EtcdKeyValue>> node =
      etcd_->Get(CsiNodeKey(request->node_id()));
  if (!node.ok()) return Fail(node.status());
  if (!node->has_value()) {
    return {grpc::StatusCode::NOT_FOUND,
            absl::StrCat("node ", request->node_id(),
                         " has no Juke node plugin registered")};
  }
  const bool read_only =
      request->readonly() || IsReadOnlyMode(request->volume_capability());
  if (v->attachment.has_value() && v->attachment->node == request->node_id() &&
      read_only) {
    return {grpc::StatusCode::ALREADY_EXISTS,
            absl::StrCat("volume ", id, " is published read-write to node ",
                         request->node_id())};
  }
  if (read_only) {
    (*response->mutable_publish_context())["readOnly"] = "true";
    return grpc::Status::OK;
  }

  absl::StatusOr<VolumeRecord> attached =
      catalog_.Attach(id, request->node_id(), /*read_only=*/false,
                      /*take_over=*/false);
  if (!attached.ok()) return Fail(attached.status());
  const uint64_t generation = attached->attachment->generation;
  // No older writer may write once this returns.
  absl::StatusOr<ClusterMap> map = RefreshMap(*etcd_);
  if (!map.ok()) return Fail(map.status());
  if (absl::Status s =
          FenceVolumeEverywhere(etcd_, clients_, *map, id, generation);
      !s.ok()) {
    return Fail(s);
  }
  (*response->mutable_publish_context())["generation"] =
      absl::StrCat(generation);
  return grpc::Status::OK;
}

grpc::Status ControllerService::ControllerUnpublishVolume(
    grpc::ServerContext* /*context*/,
    const v1::ControllerUnpublishVolumeRequest* request,
    v1::ControllerUnpublishVolumeResponse* /*response*/) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  if (!ValidateVolumeId(id).ok()) return grpc::Status::OK;
  absl::StatusOr<VolumeRecord> v = FindVolume(catalog_, id);
  // Unpublished from everywhere already, or from a node it never reached.
  if (absl::IsNotFound(v.status())) return grpc::Status::OK;
  if (!v.ok()) return Fail(v.status());
  if (!v->attachment.has_value()) return grpc::Status::OK;
  if (!request->node_id().empty() &&
      v->attachment->node != request->node_id()) {
    return grpc::Status::OK;
  }
  if (absl::Status s = catalog_.Detach(id, v->attachment->node); !s.ok()) {
    return Fail(s);
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::ValidateVolumeCapabilities(
    grpc::ServerContext* /*context*/,
    const v1::ValidateVolumeCapabilitiesRequest* request,
    v1::ValidateVolumeCapabilitiesResponse* response) {
  if (request->volume_id().empty()) return Invalid("volume_id is empty");
  if (request->volume_capabilities().empty()) {
    return Invalid("volume_capabilities is empty");
  }
  absl::StatusOr<VolumeRecord> v = FindVolume(catalog_, request->volume_id());
  if (!v.ok()) return Fail(v.status());
  if (absl::Status s = CheckCapabilities(request->volume_capabilities());
      !s.ok()) {
    response->set_message(std::string(s.message()));
    return grpc::Status::OK;
  }
  if (!ParseParameters(request->parameters()).ok()) {
    response->set_message("parameters are not those of a Juke volume");
    return grpc::Status::OK;
  }
  auto* confirmed = response->mutable_confirmed();
  *confirmed->mutable_volume_capabilities() = request->volume_capabilities();
  *confirmed->mutable_volume_context() = request->volume_context();
  *confirmed->mutable_parameters() = request->parameters();
  return grpc::Status::OK;
}

grpc::Status ControllerService::ListVolumes(
    grpc::ServerContext* /*context*/, const v1::ListVolumesRequest* request,
    v1::ListVolumesResponse* response) {
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
  absl::StatusOr<std::vector<VolumeRecord>> all = catalog_.List();
  if (!all.ok()) return Fail(all.status());
  std::sort(
      all->begin(), all->end(),
      [](const VolumeRecord& a, const VolumeRecord& b) { return a.id < b.id; });
  // Ids sort stably, so a page starts after the last id of the one before,
  // whatever was created or deleted in between.
  const size_t max = request->max_entries() == 0
                         ? all->size()
                         : static_cast<size_t>(request->max_entries());
  for (const VolumeRecord& r : *all) {
    if (!after.empty() && r.id <= after) continue;
    if (r.state != VolumeState::kReady) continue;
    if (static_cast<size_t>(response->entries_size()) == max) {
      response->set_next_token(
          EncodePageToken(response->entries().rbegin()->volume().volume_id()));
      break;
    }
    v1::ListVolumesResponse::Entry* e = response->add_entries();
    FillVolume(r, e->mutable_volume());
    if (r.attachment.has_value()) {
      e->mutable_status()->add_published_node_ids(r.attachment->node);
    }
    absl::StatusOr<v1::VolumeCondition> c = VolumeConditionOf(catalog_, r.id);
    if (c.ok()) *e->mutable_status()->mutable_volume_condition() = *c;
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::GetCapacity(
    grpc::ServerContext* /*context*/, const v1::GetCapacityRequest* request,
    v1::GetCapacityResponse* response) {
  for (const v1::VolumeCapability& c : request->volume_capabilities()) {
    if (!CheckCapability(c).ok()) {
      response->set_available_capacity(0);
      return grpc::Status::OK;
    }
  }
  absl::StatusOr<VolumeParameters> params =
      ParseParameters(request->parameters());
  if (!params.ok()) return Fail(params.status());
  absl::StatusOr<std::vector<HostStatus>> hosts = ListHosts(*etcd_);
  if (!hosts.ok()) return Fail(hosts.status());
  DiskSpaceSum space;
  for (const HostStatus& h : *hosts) {
    if (!h.up) continue;
    for (const DiskRecord& d : h.record.disks) {
      if (d.state != kDiskFailed) space.Add(d);
    }
  }
  uint64_t available = space.available_bytes();
  // Every byte of a volume is stored once per replica.
  available /= static_cast<uint64_t>(params->replicas);
  response->set_available_capacity(static_cast<int64_t>(
      std::min<uint64_t>(available, static_cast<uint64_t>(INT64_MAX))));
  response->mutable_maximum_volume_size()->set_value(
      static_cast<int64_t>(kMaxVolumeSize));
  response->mutable_minimum_volume_size()->set_value(
      static_cast<int64_t>(kDefaultChunkSize));
  return grpc::Status::OK;
}

grpc::Status ControllerService::ControllerGetCapabilities(
    grpc::ServerContext* /*context*/,
    const v1::ControllerGetCapabilitiesRequest* /*request*/,
    v1::ControllerGetCapabilitiesResponse* response) {
  using Rpc = v1::ControllerServiceCapability::RPC;
  for (Rpc::Type t :
       {Rpc::CREATE_DELETE_VOLUME, Rpc::PUBLISH_UNPUBLISH_VOLUME,
        Rpc::LIST_VOLUMES, Rpc::GET_CAPACITY, Rpc::PUBLISH_READONLY,
        Rpc::LIST_VOLUMES_PUBLISHED_NODES, Rpc::VOLUME_CONDITION,
        Rpc::GET_VOLUME, Rpc::SINGLE_NODE_MULTI_WRITER, Rpc::EXPAND_VOLUME,
        Rpc::MODIFY_VOLUME, Rpc::CREATE_DELETE_SNAPSHOT, Rpc::LIST_SNAPSHOTS,
        Rpc::CLONE_VOLUME}) {
    response->add_capabilities()->mutable_rpc()->set_type(t);
  }
  return grpc::Status::OK;
}

grpc::Status ControllerService::ControllerGetVolume(
    grpc::ServerContext* /*context*/,
    const v1::ControllerGetVolumeRequest* request,
    v1::ControllerGetVolumeResponse* response) {
  if (request->volume_id().empty()) return Invalid("volume_id is empty");
  absl::StatusOr<VolumeRecord> v = FindVolume(catalog_, request->volume_id());
  if (!v.ok()) return Fail(v.status());
  FillVolume(*v, response->mutable_volume());
  if (v->attachment.has_value()) {
    response->mutable_status()->add_published_node_ids(v->attachment->node);
  }
  absl::StatusOr<v1::VolumeCondition> c = VolumeConditionOf(catalog_, v->id);
  if (!c.ok()) return Fail(c.status());
  *response->mutable_status()->mutable_volume_condition() = *c;
  return grpc::Status::OK;
}

grpc::Status ControllerService::ControllerExpandVolume(
    grpc::ServerContext* /*context*/,
    const v1::ControllerExpandVolumeRequest* request,
    v1::ControllerExpandVolumeResponse* response) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  if (!request->has_capacity_range()) {
    return Invalid("capacity_range is missing");
  }
  if (request->has_volume_capability()) {
    if (absl::Status s = CheckCapability(request->volume_capability());
        !s.ok()) {
      return Fail(s);
    }
  }
  // What the range asks is checked before the volume is looked up: a range
  // no volume can have is wrong for every volume.
  if (absl::Status s =
          ExpandedSize(request->capacity_range(), 0, kDefaultChunkSize)
              .status();
      !s.ok()) {
    return Fail(s);
  }
  absl::StatusOr<VolumeRecord> v = FindVolume(catalog_, id);
  if (!v.ok()) return Fail(v.status());
  absl::StatusOr<uint64_t> size =
      ExpandedSize(request->capacity_range(), v->size_bytes, v->chunk_size);
  if (!size.ok()) return Fail(size.status());

  absl::StatusOr<VolumeRecord> grown = catalog_.Grow(id, *size);
  if (!grown.ok()) return Fail(grown.status());
  response->set_capacity_bytes(static_cast<int64_t>(grown->size_bytes));
  // The device on the node learns its size only from the node plugin, for
  // raw block volumes as well as under a file system.
  response->set_node_expansion_required(true);
  return grpc::Status::OK;
}

grpc::Status ControllerService::ControllerModifyVolume(
    grpc::ServerContext* /*context*/,
    const v1::ControllerModifyVolumeRequest* request,
    v1::ControllerModifyVolumeResponse* /*response*/) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  absl::StatusOr<MutableParameters> params =
      ParseMutableParameters(request->mutable_parameters());
  if (!params.ok()) return Fail(params.status());
  absl::StatusOr<VolumeRecord> v = FindVolume(catalog_, id);
  if (!v.ok()) return Fail(v.status());
  if (v->state != VolumeState::kReady) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            absl::StrCat("volume ", id, " is being deleted")};
  }
  if (!params->replicas.has_value()) return grpc::Status::OK;

  // The volume's mover carries the new count out: its chunks are copied to
  // the replicas added, or dropped from those removed, in the background.
  absl::StatusOr<VolumeRecord> set =
      catalog_.SetReplicas(id, *params->replicas);
  if (absl::IsFailedPrecondition(set.status())) {
    // The pool has too few failure domains for that many replicas, as in
    // CreateVolume; it may have more later.
    return Fail(absl::ResourceExhaustedError(set.status().message()));
  }
  if (!set.ok()) return Fail(set.status());
  JUKE_LOG_INFO(Log(), "Volume modified volumeID={} replicas={} wanted={}", id,
                set->replicas, TargetReplicas(*set));
  return grpc::Status::OK;
}

}  // namespace juke::csi
