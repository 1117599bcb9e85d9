#include "src/csi/identity_service.h"

#include "src/common/logging.h"
#include "src/common/version.h"
#include "src/csi/requests.h"
#include "src/csi/rpc.h"
#include "src/model/host_registry.h"

namespace juke::csi {
namespace {

namespace v1 = ::csi::v1;

}  // namespace

grpc::Status IdentityService::GetPluginInfo(
    grpc::ServerContext* /*context*/,
    const v1::GetPluginInfoRequest* /*request*/,
    v1::GetPluginInfoResponse* response) {
  response->set_name(kDriverName);
  response->set_vendor_version(kJukeVersion);
  return grpc::Status::OK;
}

grpc::Status IdentityService::GetPluginCapabilities(
    grpc::ServerContext* /*context*/,
    const v1::GetPluginCapabilitiesRequest* /*request*/,
    v1::GetPluginCapabilitiesResponse* response) {
  using Service = v1::PluginCapability::Service;
  if (has_controller_) {
    response->add_capabilities()->mutable_service()->set_type(
        Service::CONTROLLER_SERVICE);
  }
  response->add_capabilities()->mutable_service()->set_type(
      Service::VOLUME_ACCESSIBILITY_CONSTRAINTS);
  // A volume grows while it is published and in use.
  response->add_capabilities()->mutable_volume_expansion()->set_type(
      v1::PluginCapability::VolumeExpansion::ONLINE);
  return grpc::Status::OK;
}

grpc::Status IdentityService::Probe(grpc::ServerContext* /*context*/,
                                    const v1::ProbeRequest* /*request*/,
                                    v1::ProbeResponse* response) {
  // Ready when etcd answers and at least one storage daemon is up.
  absl::StatusOr<std::vector<HostStatus>> hosts = ListHosts(*etcd_);
  bool ready = false;
  if (hosts.ok()) {
    for (const HostStatus& h : *hosts) ready = ready || h.up;
  }
  if (!ready) {
    JUKE_LOG_WARN(Log(), "Not ready err={}",
                  hosts.ok() ? absl::UnavailableError("no storage daemon is up")
                             : hosts.status());
  }
  response->mutable_ready()->set_value(ready);
  return grpc::Status::OK;
}

}  // namespace juke::csi
