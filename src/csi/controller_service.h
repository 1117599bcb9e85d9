#pragma once

#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

#include "src/common/etcd_client.h"
#include "src/model/host_record.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/volume_catalog.h"

#include "csi/v1/csi.grpc.pb.h"

// The CSI controller: volumes in the pool's catalog, published to nodes
// with fencing (docs/csi.md). Every RPC checks its request before it acts
// and answers with the code the CSI spec names.
namespace juke::csi {

// Where node plugins register, so that the controller can tell a node that
// does not exist: /juke/v1/csi/nodes/<escaped node id> -> topology JSON.
inline constexpr char kCsiNodesPrefix[] = "/juke/v1/csi/nodes/";
std::string CsiNodeKey(absl::string_view node_id);
// Registers a node plugin's node (idempotent).
absl::Status RegisterCsiNode(EtcdClient& etcd, absl::string_view node_id,
                             const HostLabels& topology);

// The volume of a CSI volume id. An id this plugin could never have handed
// out names no volume: NotFound, as the spec wants, not InvalidArgument.
absl::StatusOr<VolumeRecord> FindVolume(VolumeCatalog& catalog,
                                        absl::string_view id);

// The request's content source of a volume, as CSI shows it.
void FillContentSource(const VolumeRecord& record,
                       ::csi::v1::VolumeContentSource* source);

// The volume's health for CSI: abnormal while some replica missed writes
// and waits for recovery.
absl::StatusOr<::csi::v1::VolumeCondition> VolumeConditionOf(
    VolumeCatalog& catalog, absl::string_view id);

class ControllerService final : public ::csi::v1::Controller::Service {
 public:
  // Not owned; they outlive the service.
  ControllerService(EtcdClient* etcd, ChunkClientPool* clients)
      : etcd_(etcd), catalog_(etcd), clients_(clients) {}

  grpc::Status CreateVolume(grpc::ServerContext* context,
                            const ::csi::v1::CreateVolumeRequest* request,
                            ::csi::v1::CreateVolumeResponse* response) override;
  grpc::Status DeleteVolume(grpc::ServerContext* context,
                            const ::csi::v1::DeleteVolumeRequest* request,
                            ::csi::v1::DeleteVolumeResponse* response) override;
  grpc::Status ControllerPublishVolume(
      grpc::ServerContext* context,
      const ::csi::v1::ControllerPublishVolumeRequest* request,
      ::csi::v1::ControllerPublishVolumeResponse* response) override;
  grpc::Status ControllerUnpublishVolume(
      grpc::ServerContext* context,
      const ::csi::v1::ControllerUnpublishVolumeRequest* request,
      ::csi::v1::ControllerUnpublishVolumeResponse* response) override;
  grpc::Status ValidateVolumeCapabilities(
      grpc::ServerContext* context,
      const ::csi::v1::ValidateVolumeCapabilitiesRequest* request,
      ::csi::v1::ValidateVolumeCapabilitiesResponse* response) override;
  grpc::Status ListVolumes(grpc::ServerContext* context,
                           const ::csi::v1::ListVolumesRequest* request,
                           ::csi::v1::ListVolumesResponse* response) override;
  grpc::Status GetCapacity(grpc::ServerContext* context,
                           const ::csi::v1::GetCapacityRequest* request,
                           ::csi::v1::GetCapacityResponse* response) override;
  grpc::Status ControllerGetCapabilities(
      grpc::ServerContext* context,
      const ::csi::v1::ControllerGetCapabilitiesRequest* request,
      ::csi::v1::ControllerGetCapabilitiesResponse* response) override;
  grpc::Status ControllerGetVolume(
      grpc::ServerContext* context,
      const ::csi::v1::ControllerGetVolumeRequest* request,
      ::csi::v1::ControllerGetVolumeResponse* response) override;
  grpc::Status ControllerExpandVolume(
      grpc::ServerContext* context,
      const ::csi::v1::ControllerExpandVolumeRequest* request,
      ::csi::v1::ControllerExpandVolumeResponse* response) override;
  grpc::Status ControllerModifyVolume(
      grpc::ServerContext* context,
      const ::csi::v1::ControllerModifyVolumeRequest* request,
      ::csi::v1::ControllerModifyVolumeResponse* response) override;

  // Snapshots, in controller_snapshots.cc.
  grpc::Status CreateSnapshot(
      grpc::ServerContext* context,
      const ::csi::v1::CreateSnapshotRequest* request,
      ::csi::v1::CreateSnapshotResponse* response) override;
  grpc::Status DeleteSnapshot(
      grpc::ServerContext* context,
      const ::csi::v1::DeleteSnapshotRequest* request,
      ::csi::v1::DeleteSnapshotResponse* response) override;
  grpc::Status ListSnapshots(
      grpc::ServerContext* context,
      const ::csi::v1::ListSnapshotsRequest* request,
      ::csi::v1::ListSnapshotsResponse* response) override;
  grpc::Status GetSnapshot(grpc::ServerContext* context,
                           const ::csi::v1::GetSnapshotRequest* request,
                           ::csi::v1::GetSnapshotResponse* response) override;

 private:
  // A volume's content source, as CreateVolume resolved it.
  struct Source {
    VolumeSource source;
    uint64_t size_bytes = 0;
  };
  // NotFound when the snapshot or volume does not exist (or could never
  // have been handed out); InvalidArgument for an empty source.
  absl::StatusOr<Source> ResolveSource(
      const ::csi::v1::VolumeContentSource& source);
  // The size of a volume made from `source`: the source's size without a
  // capacity range, else `size` grown to the source's size when the limit
  // allows (OutOfRange when it does not).
  static absl::StatusOr<uint64_t> SizeWithSource(
      const Source& source, const ::csi::v1::CreateVolumeRequest& request,
      uint64_t size);
  // Copies the source into a volume created from one, once. Aborted while
  // another call of this controller is filling the same volume: a CO that
  // gave up waiting retries, and must not start a second copy.
  absl::Status Populate(const VolumeRecord& volume);

  EtcdClient* const etcd_;
  VolumeCatalog catalog_;
  ChunkClientPool* const clients_;
  absl::Mutex filling_mu_;
  std::set<std::string> filling_ ABSL_GUARDED_BY(filling_mu_);
};

}  // namespace juke::csi
