#include "src/volume/node_volume.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"

#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/map_store.h"
#include "src/volume/volume_client.h"

namespace juke {
namespace {

Logger Log() {
  static const Logger log = GetLogger("volume");
  return log;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeVolume>> NodeVolume::Attach(
    EtcdClient* etcd, ChunkClientPool* clients, absl::string_view id,
    const NodeVolumeOptions& options) {
  if (options.state_dir.empty()) {
    return absl::InvalidArgumentError("state directory is empty");
  }
  auto catalog = std::make_unique<VolumeCatalog>(etcd);
  JUKE_ASSIGN_OR_RETURN(
      VolumeRecord record,
      catalog->Attach(id, options.node, options.read_only, options.take_over));
  // A reader holds no generation; whoever writes is someone else.
  if (options.read_only) record.attachment.reset();
  // From here on a failure gives the attachment back. The generation stays
  // taken: generations only go up.
  auto attached = [&]() -> absl::StatusOr<std::unique_ptr<NodeVolume>> {
    JUKE_ASSIGN_OR_RETURN(ClusterMap map, RefreshMap(*etcd));
    if (!options.read_only) {
      JUKE_RETURN_IF_ERROR(FenceVolumeEverywhere(etcd, clients, map, id,
                                                 record.attachment->generation,
                                                 options.fence_wait));
    }
    JUKE_ASSIGN_OR_RETURN(
        std::unique_ptr<VolumeClient> client,
        VolumeClient::Open(catalog.get(), clients, record, map, options.io));
    auto backend = std::make_shared<VolumeBackend>(std::move(client));
    if (mkdir(options.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoToStatus(errno, absl::StrCat("mkdir ", options.state_dir));
    }
    node::AttachOptions attach_options;
    attach_options.read_only = options.read_only;
    JUKE_ASSIGN_OR_RETURN(
        std::unique_ptr<node::Attachment> attachment,
        node::Attachment::Attach(backend, options.state_dir, attach_options));
    return std::unique_ptr<NodeVolume>(new NodeVolume(
        etcd, std::move(catalog), options.node, options.read_only,
        std::move(backend), std::move(attachment)));
  }();
  if (!attached.ok() && !options.read_only) {
    absl::Status undo = catalog->Detach(id, options.node);
    if (!undo.ok()) {
      JUKE_LOG_WARN(Log(), "Could not drop the attachment volumeID={} err={}",
                    id, undo);
    }
  }
  if (!attached.ok()) {
    return Annotate(attached.status(), absl::StrCat("attach volume ", id));
  }
  JUKE_LOG_INFO(Log(),
                "Volume attached as a block device volumeID={} node={} "
                "device={} generation={}",
                id, options.node, (*attached)->device_path(),
                (*attached)->generation());
  return attached;
}

NodeVolume::~NodeVolume() {
  absl::Status s = Detach();
  if (!s.ok()) {
    JUKE_LOG_WARN(Log(), "Detach at exit failed volumeID={} err={}",
                  record().id, s);
  }
}

uint64_t NodeVolume::generation() const {
  return record().attachment.has_value() ? record().attachment->generation : 0;
}

absl::StatusOr<RecoveryProgress> NodeVolume::RecoverStale(
    RateLimiter* limiter) {
  JUKE_ASSIGN_OR_RETURN(ClusterMap map, RefreshMap(*etcd_));
  backend_->client().UpdateLiveMap(std::move(map));
  return backend_->client().RecoverStale(limiter);
}

// With the device gone no write is in flight: the writer's dirty marks
// can go (or its chunks be settled). Failing that, the next writer does it.
void NodeVolume::SettleDirty() {
  if (read_only_) return;
  absl::Status s = backend_->client().SettleDirty(absl::ZeroDuration());
  if (!s.ok()) {
    JUKE_LOG_WARN(Log(),
                  "Dirty chunks left to the next writer volumeID={} "
                  "err={}",
                  record().id, s);
  }
}

absl::Status NodeVolume::Release() {
  if (detached_) return absl::OkStatus();
  JUKE_RETURN_IF_ERROR(attachment_->Detach());
  SettleDirty();
  detached_ = true;
  JUKE_LOG_INFO(Log(), "Volume device released volumeID={} node={}",
                record().id, node_);
  return absl::OkStatus();
}

absl::Status NodeVolume::Detach() {
  if (detached_) return absl::OkStatus();
  JUKE_RETURN_IF_ERROR(attachment_->Detach());
  if (read_only_) {
    detached_ = true;
    return absl::OkStatus();
  }
  SettleDirty();
  JUKE_RETURN_IF_ERROR(
      Annotate(catalog_->Detach(record().id, node_), "drop the attachment"));
  detached_ = true;
  JUKE_LOG_INFO(Log(), "Volume detached volumeID={} node={}", record().id,
                node_);
  return absl::OkStatus();
}

}  // namespace juke
