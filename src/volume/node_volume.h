#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "src/common/etcd_client.h"
#include "src/common/rate_limiter.h"
#include "src/node/attachment.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/recovery.h"
#include "src/volume/volume_backend.h"
#include "src/volume/volume_catalog.h"

namespace juke {

struct NodeVolumeOptions {
  // This host's name in the pool; the attachment is recorded under it.
  std::string node;
  // Take the volume over from another host that holds it read-write; that
  // writer is fenced before this one writes.
  bool take_over = false;
  // Attach for reading only: no writer attachment, no generation, no
  // fencing; the device refuses writes.
  bool read_only = false;
  // Where the FUSE file and its directory live (created if missing).
  std::string state_dir;
  // How long to wait for daemons that cannot be reached to be fenced or
  // marked down.
  absl::Duration fence_wait = absl::Seconds(30);
  VolumeIoOptions io;
};

// A volume attached on this node as its one writer, as a block device:
// the attachment in the catalog (a new generation), every daemon fenced at
// it, the replicated client, and FUSE plus a loop device over that.
// `juke volume attach` holds one; the CSI node plugin will too.
//
//   JUKE_ASSIGN_OR_RETURN(auto vol, NodeVolume::Attach(etcd, clients, id,
//                                                      options));
//   ... use vol->device_path() ...
//   JUKE_RETURN_IF_ERROR(vol->Detach());
//
// Thread-safe: RecoverStale() may run beside the kernel's I/O.
class NodeVolume {
 public:
  // FailedPrecondition when another host holds the volume and take_over is
  // false, or it is being deleted; NotFound for an unknown volume. On
  // failure the catalog attachment made here is dropped again.
  static absl::StatusOr<std::unique_ptr<NodeVolume>> Attach(
      EtcdClient* etcd, ChunkClientPool* clients, absl::string_view id,
      const NodeVolumeOptions& options);

  NodeVolume(const NodeVolume&) = delete;
  NodeVolume& operator=(const NodeVolume&) = delete;
  ~NodeVolume();

  const std::string& device_path() const { return attachment_->device_path(); }
  const VolumeRecord& record() const { return backend_->client().record(); }
  uint64_t generation() const;

  // Learns the hosts' current addresses and states from the cluster map,
  // then makes one recovery pass over the volume's stale replicas.
  absl::StatusOr<RecoveryProgress> RecoverStale(RateLimiter* limiter);

  // One pass of the volume's move when the map changed (mover.h), with the
  // map RecoverStale() last learnt.
  absl::StatusOr<MoveProgress> Move(RateLimiter* limiter) {
    return backend_->client().Move(limiter);
  }

  // The device's size in bytes; it grows with Grow().
  uint64_t size() const { return backend_->size(); }

  // Grows the device online to `new_size` bytes, which the catalog must
  // already hold for the volume: the FUSE file reports the new size and
  // the loop device learns it. A file system on the device is the caller's
  // to grow. FailedPrecondition below the current size or above the
  // catalog's; the current size again is a no-op.
  absl::Status Grow(uint64_t new_size) { return attachment_->Resize(new_size); }

  // Releases the block device: flush, loop device, FUSE. FailedPrecondition,
  // with everything left working, while it is mounted. Idempotent.
  absl::Status ReleaseDevice() { return attachment_->Detach(); }

  // ReleaseDevice(), then settles the writer's dirty chunks
  // (VolumeClient::SettleDirty) and drops the attachment in the catalog.
  // Idempotent.
  absl::Status Detach();

  // ReleaseDevice() and the dirty chunks settled, keeping the attachment
  // in the catalog, for callers
  // that manage it themselves (the CSI controller publishes and
  // unpublishes). Idempotent; Detach() does nothing afterwards.
  absl::Status Release();

  // The file FUSE serves the volume as; more loop devices may sit on it.
  std::string file_path() const {
    return absl::StrCat(attachment_->dir(), "/volume");
  }

 private:
  // Settles the writer's dirty chunks once the device is gone.
  void SettleDirty();

  NodeVolume(EtcdClient* etcd, std::unique_ptr<VolumeCatalog> catalog,
             std::string node, bool read_only,
             std::shared_ptr<VolumeBackend> backend,
             std::unique_ptr<node::Attachment> attachment)
      : etcd_(etcd),
        catalog_(std::move(catalog)),
        node_(std::move(node)),
        read_only_(read_only),
        backend_(std::move(backend)),
        attachment_(std::move(attachment)) {}

  // The client writes stale marks through it: it outlives the backend.
  EtcdClient* const etcd_;
  const std::unique_ptr<VolumeCatalog> catalog_;
  const std::string node_;
  const bool read_only_;
  const std::shared_ptr<VolumeBackend> backend_;
  const std::unique_ptr<node::Attachment> attachment_;
  bool detached_ = false;
};

}  // namespace juke
