#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#include "src/common/etcd_client.h"
#include "src/model/host_record.h"
#include "src/node/loop_device.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/node_volume.h"
#include "src/volume/volume_catalog.h"

#include "csi/v1/csi.grpc.pb.h"

// The CSI node plugin: stages a volume as a block device on this node
// (NodeVolume: FUSE plus a loop device), makes a file system on it only
// when it is blank and mounts it; publishes by bind mounts, of the staged
// directory or of the device itself for raw block volumes. What is staged
// and published is kept in <state_dir>/node-state.json, so a restarted
// plugin knows it (docs/csi.md). As the writer of the volumes it stages
// read-write, it brings their stale replicas up to date and moves their
// chunks when the map or their replica count changes, in a thread of its
// own (node_upkeep.cc).
namespace juke::csi {

struct NodeServiceOptions {
  std::string node_id;
  HostLabels topology;
  // Holds node-state.json and the attachments' FUSE directories.
  std::string state_dir;
  // How often the staged writable volumes are recovered and moved, and
  // the byte rate of those copies (0: no limit).
  absl::Duration upkeep_interval = absl::Seconds(5);
  uint64_t upkeep_rate_bytes = uint64_t{64} << 20;
};

class NodeService final : public ::csi::v1::Node::Service {
 public:
  // Not owned; they outlive the service.
  NodeService(EtcdClient* etcd, ChunkClientPool* clients,
              NodeServiceOptions options);
  ~NodeService() override;

  // Registers the node for the controller and reads what an earlier run
  // of the plugin left staged and published (docs/csi.md, "Restarts").
  absl::Status Start();

  // Stops the upkeep thread, then releases every staged device that
  // nothing mounts any more; the others stay, logged. For a clean exit.
  // Idempotent.
  void Shutdown();

  grpc::Status NodeStageVolume(
      grpc::ServerContext* context,
      const ::csi::v1::NodeStageVolumeRequest* request,
      ::csi::v1::NodeStageVolumeResponse* response) override;
  grpc::Status NodeUnstageVolume(
      grpc::ServerContext* context,
      const ::csi::v1::NodeUnstageVolumeRequest* request,
      ::csi::v1::NodeUnstageVolumeResponse* response) override;
  grpc::Status NodePublishVolume(
      grpc::ServerContext* context,
      const ::csi::v1::NodePublishVolumeRequest* request,
      ::csi::v1::NodePublishVolumeResponse* response) override;
  grpc::Status NodeUnpublishVolume(
      grpc::ServerContext* context,
      const ::csi::v1::NodeUnpublishVolumeRequest* request,
      ::csi::v1::NodeUnpublishVolumeResponse* response) override;
  grpc::Status NodeGetVolumeStats(
      grpc::ServerContext* context,
      const ::csi::v1::NodeGetVolumeStatsRequest* request,
      ::csi::v1::NodeGetVolumeStatsResponse* response) override;
  grpc::Status NodeExpandVolume(
      grpc::ServerContext* context,
      const ::csi::v1::NodeExpandVolumeRequest* request,
      ::csi::v1::NodeExpandVolumeResponse* response) override;
  grpc::Status NodeGetCapabilities(
      grpc::ServerContext* context,
      const ::csi::v1::NodeGetCapabilitiesRequest* request,
      ::csi::v1::NodeGetCapabilitiesResponse* response) override;
  grpc::Status NodeGetInfo(grpc::ServerContext* context,
                           const ::csi::v1::NodeGetInfoRequest* request,
                           ::csi::v1::NodeGetInfoResponse* response) override;

 private:
  // A volume staged on this node.
  struct Staged {
    std::string volume_id;
    std::string staging_path;
    bool block = false;
    std::string fstype;  // mount volumes
    std::vector<std::string> mount_flags;
    bool read_only = false;
    std::string device;
    // Null after a restart. Shared with the upkeep thread, which may still
    // use one for a moment after it is unstaged.
    std::shared_ptr<NodeVolume> volume;
  };
  // A volume published at a target path.
  struct Published {
    std::string volume_id;
    std::string target_path;
    std::string staging_path;
    bool block = false;
    bool read_only = false;
    std::vector<std::string> mount_flags;
    // A read-only raw block publication of a writable staging gets its
    // own read-only loop device over the volume's file.
    std::unique_ptr<node::LoopDevice> read_only_loop;
  };

  // Grows the staged volume's device to `size` bytes, with the read-only
  // loop devices of its publications, then the file system of a writable
  // mount volume.
  absl::Status GrowStagedLocked(Staged& staged, uint64_t size)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes node-state.json (atomically: a temporary file, then rename).
  absl::Status SaveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every upkeep interval until Shutdown(): recovery and moves of the
  // staged writable volumes (node_upkeep.cc).
  void UpkeepLoop();
  // Where a volume's FUSE directory goes: a hash of its id, never the id.
  std::string AttachDir(absl::string_view volume_id) const;

  EtcdClient* const etcd_;
  ChunkClientPool* const clients_;
  VolumeCatalog catalog_;
  const NodeServiceOptions options_;

  absl::Notification stop_upkeep_;
  std::thread upkeep_;

  absl::Mutex mu_;
  std::map<std::string, Staged> staged_ ABSL_GUARDED_BY(mu_);  // by volume id
  std::map<std::string, Published> published_
      ABSL_GUARDED_BY(mu_);  // by target path
};

}  // namespace juke::csi
