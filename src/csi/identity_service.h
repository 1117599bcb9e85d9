#pragma once

#include "src/common/etcd_client.h"

#include "csi/v1/csi.grpc.pb.h"

// The CSI identity service: the plugin's name and version, what it offers,
// and whether it is ready (it is not while etcd or the pool cannot be
// reached).
namespace juke::csi {

class IdentityService final : public ::csi::v1::Identity::Service {
 public:
  // `has_controller`: whether this process serves the controller too.
  IdentityService(EtcdClient* etcd, bool has_controller)
      : etcd_(etcd), has_controller_(has_controller) {}

  grpc::Status GetPluginInfo(
      grpc::ServerContext* context,
      const ::csi::v1::GetPluginInfoRequest* request,
      ::csi::v1::GetPluginInfoResponse* response) override;
  grpc::Status GetPluginCapabilities(
      grpc::ServerContext* context,
      const ::csi::v1::GetPluginCapabilitiesRequest* request,
      ::csi::v1::GetPluginCapabilitiesResponse* response) override;
  grpc::Status Probe(grpc::ServerContext* context,
                     const ::csi::v1::ProbeRequest* request,
                     ::csi::v1::ProbeResponse* response) override;

 private:
  EtcdClient* const etcd_;
  const bool has_controller_;
};

}  // namespace juke::csi
