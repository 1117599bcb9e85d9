#include "src/csi/node_service.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/csi/controller_service.h"
#include "src/csi/requests.h"
#include "src/csi/rpc.h"
#include "src/node/attachment.h"
#include "src/node/filesystem.h"

namespace juke::csi {
namespace {

namespace v1 = ::csi::v1;
using Json = nlohmann::json;

std::vector<std::string> Flags(const v1::VolumeCapability& c) {
  return {c.mount().mount_flags().begin(), c.mount().mount_flags().end()};
}

// Removes the file or empty directory a publication created at `path`.
absl::Status RemoveTarget(const std::string& path) {
  if (rmdir(path.c_str()) == 0 || errno == ENOENT) return absl::OkStatus();
  if (errno == ENOTDIR && (unlink(path.c_str()) == 0 || errno == ENOENT)) {
    return absl::OkStatus();
  }
  if (errno == ENOTEMPTY || errno == EEXIST) {
    // Not ours to empty: something else lives there.
    JUKE_LOG_WARN(Log(), "Target path not empty, left in place path={}", path);
    return absl::OkStatus();
  }
  return ErrnoToStatus(errno, absl::StrCat("remove ", path));
}

}  // namespace

NodeService::NodeService(EtcdClient* etcd, ChunkClientPool* clients,
                         NodeServiceOptions options)
    : etcd_(etcd),
      clients_(clients),
      catalog_(etcd),
      options_(std::move(options)) {}

NodeService::~NodeService() { Shutdown(); }

std::string NodeService::AttachDir(absl::string_view volume_id) const {
  return absl::StrFormat("%s/attach/%016x", options_.state_dir,
                         XXH3_64bits(volume_id.data(), volume_id.size()));
}

absl::Status NodeService::Start() {
  if (mkdir(options_.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, absl::StrCat("mkdir ", options_.state_dir));
  }
  std::string attach = absl::StrCat(options_.state_dir, "/attach");
  if (mkdir(attach.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoToStatus(errno, absl::StrCat("mkdir ", attach));
  }
  JUKE_RETURN_IF_ERROR(
      RegisterCsiNode(*etcd_, options_.node_id, options_.topology));
  absl::MutexLock lock(&mu_);
  JUKE_RETURN_IF_ERROR(LoadLocked());
  // What a dead run served is gone with it; take its leftovers down.
  for (auto& [id, s] : staged_) {
    JUKE_RETURN_IF_ERROR(node::CleanupStale(AttachDir(id)));
  }
  upkeep_ = std::thread([this] { UpkeepLoop(); });
  return absl::OkStatus();
}

void NodeService::Shutdown() {
  if (upkeep_.joinable()) {
    stop_upkeep_.Notify();
    upkeep_.join();
  }
  absl::MutexLock lock(&mu_);
  for (auto& [target, p] : published_) {
    if (p.read_only_loop != nullptr) {
      absl::Status s = p.read_only_loop->Detach(absl::Seconds(1));
      if (!s.ok()) {
        JUKE_LOG_WARN(Log(), "Read-only device kept target={} err={}", target,
                      s);
      }
    }
  }
  for (auto& [id, s] : staged_) {
    if (s.volume == nullptr) continue;
    absl::Status released = s.volume->Release();
    if (!released.ok()) {
      JUKE_LOG_WARN(Log(),
                    "Staged volume still in use at exit, its users get EIO "
                    "from now on volumeID={} err={}",
                    id, released);
    }
  }
}

absl::Status NodeService::SaveLocked() {
  Json staged = Json::array();
  for (const auto& [id, s] : staged_) {
    staged.push_back({{"volumeId", id},
                      {"stagingPath", s.staging_path},
                      {"block", s.block},
                      {"fsType", s.fstype},
                      {"mountFlags", s.mount_flags},
                      {"readOnly", s.read_only},
                      {"device", s.device}});
  }
  Json published = Json::array();
  for (const auto& [target, p] : published_) {
    published.push_back({{"volumeId", p.volume_id},
                         {"targetPath", target},
                         {"stagingPath", p.staging_path},
                         {"block", p.block},
                         {"readOnly", p.read_only},
                         {"mountFlags", p.mount_flags}});
  }
  Json state = {{"staged", staged}, {"published", published}};
  std::string path = absl::StrCat(options_.state_dir, "/node-state.json");
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << state.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("write ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("rename ", tmp));
  }
  return absl::OkStatus();
}

absl::Status NodeService::LoadLocked() {
  std::string path = absl::StrCat(options_.state_dir, "/node-state.json");
  std::ifstream in(path);
  if (!in) return absl::OkStatus();  // a first start
  std::stringstream text;
  text << in.rdbuf();
  try {
    Json state = Json::parse(text.str());
    for (const Json& j : state.at("staged")) {
      Staged s;
      s.volume_id = j.at("volumeId").get<std::string>();
      s.staging_path = j.at("stagingPath").get<std::string>();
      s.block = j.at("block").get<bool>();
      s.fstype = j.at("fsType").get<std::string>();
      s.mount_flags = j.at("mountFlags").get<std::vector<std::string>>();
      s.read_only = j.at("readOnly").get<bool>();
      s.device = j.at("device").get<std::string>();
      std::string id = s.volume_id;
      staged_.emplace(std::move(id), std::move(s));
    }
    for (const Json& j : state.at("published")) {
      Published p;
      p.volume_id = j.at("volumeId").get<std::string>();
      p.target_path = j.at("targetPath").get<std::string>();
      p.staging_path = j.at("stagingPath").get<std::string>();
      p.block = j.at("block").get<bool>();
      p.read_only = j.at("readOnly").get<bool>();
      p.mount_flags = j.at("mountFlags").get<std::vector<std::string>>();
      std::string target = p.target_path;
      published_.emplace(std::move(target), std::move(p));
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat(path, " is unreadable: ", e.what(),
                     "; move it away to start without the node's state"));
  }
  JUKE_LOG_INFO(Log(), "Node state loaded staged={} published={}",
                staged_.size(), published_.size());
  return absl::OkStatus();
}

grpc::Status NodeService::NodeStageVolume(
    grpc::ServerContext* /*context*/, const v1::NodeStageVolumeRequest* request,
    v1::NodeStageVolumeResponse* /*response*/) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  if (request->staging_target_path().empty()) {
    return Invalid("staging_target_path is empty");
  }
  if (!request->has_volume_capability()) {
    return Invalid("volume_capability is missing");
  }
  const v1::VolumeCapability& cap = request->volume_capability();
  if (absl::Status s = CheckCapability(cap); !s.ok()) return Fail(s);
  const bool block = cap.has_block();
  const std::string fstype = block ? "" : FsType(cap);
  const std::vector<std::string> flags =
      block ? std::vector<std::string>{} : Flags(cap);
  auto ro = request->publish_context().find("readOnly");
  const bool read_only =
      IsReadOnlyMode(cap) ||
      (ro != request->publish_context().end() && ro->second == "true");

  absl::MutexLock lock(&mu_);
  auto it = staged_.find(id);
  if (it != staged_.end() && it->second.volume != nullptr) {
    const Staged& s = it->second;
    if (s.staging_path == request->staging_target_path() && s.block == block &&
        s.fstype == fstype && s.mount_flags == flags &&
        s.read_only == read_only) {
      return grpc::Status::OK;
    }
    return {grpc::StatusCode::ALREADY_EXISTS,
            absl::StrCat("volume ", id, " is staged at ", s.staging_path,
                         " with other arguments")};
  }
  absl::StatusOr<VolumeRecord> record = FindVolume(catalog_, id);
  if (!record.ok()) return Fail(record.status());

  NodeVolumeOptions o;
  o.node = options_.node_id;
  o.read_only = read_only;
  o.state_dir = AttachDir(id);
  absl::StatusOr<std::unique_ptr<NodeVolume>> volume =
      NodeVolume::Attach(etcd_, clients_, id, o);
  if (!volume.ok()) return Fail(volume.status());

  Staged s;
  s.volume_id = id;
  s.staging_path = request->staging_target_path();
  s.block = block;
  s.fstype = fstype;
  s.mount_flags = flags;
  s.read_only = read_only;
  s.device = (*volume)->device_path();
  if (!block) {
    absl::Status mounted;
    if (!read_only) mounted = node::FormatIfBlank(s.device, fstype);
    if (mounted.ok()) {
      mounted = node::Mount(s.device, s.staging_path, fstype, flags, read_only);
    }
    if (!mounted.ok()) {
      absl::Status released = (*volume)->Release();
      if (!released.ok()) {
        JUKE_LOG_WARN(Log(), "Release after a failed stage volumeID={} err={}",
                      id, released);
      }
      return Fail(Annotate(mounted, absl::StrCat("stage volume ", id)));
    }
  }
  s.volume = *std::move(volume);
  staged_[id] = std::move(s);
  if (absl::Status saved = SaveLocked(); !saved.ok()) return Fail(saved);
  JUKE_LOG_INFO(Log(), "Volume staged volumeID={} path={} block={}", id,
                request->staging_target_path(), block);
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeUnstageVolume(
    grpc::ServerContext* /*context*/,
    const v1::NodeUnstageVolumeRequest* request,
    v1::NodeUnstageVolumeResponse* /*response*/) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  if (request->staging_target_path().empty()) {
    return Invalid("staging_target_path is empty");
  }
  absl::MutexLock lock(&mu_);
  auto it = staged_.find(id);
  if (it == staged_.end()) return grpc::Status::OK;  // done before
  Staged& s = it->second;
  if (!s.block) {
    if (absl::Status u = node::Unmount(s.staging_path); !u.ok()) return Fail(u);
  }
  if (s.volume != nullptr) {
    if (absl::Status r = s.volume->Release(); !r.ok()) return Fail(r);
  }
  staged_.erase(it);
  // Its attachment directory is empty now; a busy one stays for the next.
  rmdir(AttachDir(id).c_str());
  if (absl::Status saved = SaveLocked(); !saved.ok()) return Fail(saved);
  JUKE_LOG_INFO(Log(), "Volume unstaged volumeID={}", id);
  return grpc::Status::OK;
}

grpc::Status NodeService::NodePublishVolume(
    grpc::ServerContext* /*context*/,
    const v1::NodePublishVolumeRequest* request,
    v1::NodePublishVolumeResponse* /*response*/) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  if (request->staging_target_path().empty()) {
    return Invalid("staging_target_path is empty");
  }
  if (request->target_path().empty()) return Invalid("target_path is empty");
  if (!request->has_volume_capability()) {
    return Invalid("volume_capability is missing");
  }
  const v1::VolumeCapability& cap = request->volume_capability();
  if (absl::Status s = CheckCapability(cap); !s.ok()) return Fail(s);
  const bool block = cap.has_block();
  const std::vector<std::string> flags =
      block ? std::vector<std::string>{} : Flags(cap);
  const bool read_only = request->readonly() || IsReadOnlyMode(cap);

  absl::MutexLock lock(&mu_);
  auto staged = staged_.find(id);
  if (staged == staged_.end() || staged->second.volume == nullptr ||
      staged->second.staging_path != request->staging_target_path()) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            absl::StrCat("volume ", id, " is not staged at ",
                         request->staging_target_path())};
  }
  Staged& s = staged->second;
  if (s.block != block) {
    return Invalid(absl::StrCat("volume ", id, " is staged as a ",
                                s.block ? "block" : "mount",
                                " volume; the capability asks otherwise"));
  }
  auto existing = published_.find(request->target_path());
  if (existing != published_.end()) {
    const Published& p = existing->second;
    if (p.volume_id == id && p.read_only == read_only && p.block == block &&
        p.mount_flags == flags) {
      return grpc::Status::OK;
    }
    return {grpc::StatusCode::ALREADY_EXISTS,
            absl::StrCat(request->target_path(),
                         " is published with other arguments")};
  }

  Published p;
  p.volume_id = id;
  p.target_path = request->target_path();
  p.staging_path = s.staging_path;
  p.block = block;
  p.read_only = read_only;
  p.mount_flags = flags;
  absl::Status bound;
  if (!block) {
    // A read-only bind mount keeps writers out of the files.
    bound = node::BindMount(s.staging_path, p.target_path, read_only);
  } else if (read_only && !s.read_only) {
    // A read-only bind of a writable device node still passes writes, so a
    // read-only raw block volume gets a read-only loop device of its own.
    node::LoopOptions lo;
    lo.read_only = true;
    absl::StatusOr<std::unique_ptr<node::LoopDevice>> loop =
        node::LoopDevice::Attach(s.volume->file_path(), lo);
    bound = loop.status();
    if (loop.ok()) {
      p.read_only_loop = *std::move(loop);
      bound = node::BindMount(p.read_only_loop->path(), p.target_path, true);
      if (!bound.ok()) {
        absl::Status d = p.read_only_loop->Detach();
        if (!d.ok()) JUKE_LOG_WARN(Log(), "Loop device kept err={}", d);
      }
    }
  } else {
    bound = node::BindMount(s.device, p.target_path, read_only);
  }
  if (!bound.ok()) {
    return Fail(Annotate(bound, absl::StrCat("publish volume ", id)));
  }
  published_[p.target_path] = std::move(p);
  if (absl::Status saved = SaveLocked(); !saved.ok()) return Fail(saved);
  JUKE_LOG_INFO(Log(), "Volume published volumeID={} target={} readOnly={}", id,
                request->target_path(), read_only);
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeUnpublishVolume(
    grpc::ServerContext* /*context*/,
    const v1::NodeUnpublishVolumeRequest* request,
    v1::NodeUnpublishVolumeResponse* /*response*/) {
  if (request->volume_id().empty()) return Invalid("volume_id is empty");
  if (request->target_path().empty()) return Invalid("target_path is empty");
  const std::string& target = request->target_path();
  absl::MutexLock lock(&mu_);
  auto it = published_.find(target);
  if (it != published_.end() && it->second.volume_id != request->volume_id()) {
    return {grpc::StatusCode::NOT_FOUND,
            absl::StrCat(target, " holds another volume")};
  }
  // Unmounting a path that is not a mount, or is gone, is fine: a retry.
  if (absl::Status u = node::Unmount(target); !u.ok()) return Fail(u);
  if (it != published_.end() && it->second.read_only_loop != nullptr) {
    if (absl::Status d = it->second.read_only_loop->Detach(); !d.ok()) {
      return Fail(d);
    }
  }
  if (absl::Status r = RemoveTarget(target); !r.ok()) return Fail(r);
  if (it != published_.end()) {
    published_.erase(it);
    if (absl::Status saved = SaveLocked(); !saved.ok()) return Fail(saved);
  }
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeGetVolumeStats(
    grpc::ServerContext* /*context*/,
    const v1::NodeGetVolumeStatsRequest* request,
    v1::NodeGetVolumeStatsResponse* response) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  if (request->volume_path().empty()) return Invalid("volume_path is empty");
  absl::StatusOr<VolumeRecord> record = FindVolume(catalog_, id);
  if (!record.ok()) return Fail(record.status());
  bool block = false;
  {
    absl::MutexLock lock(&mu_);
    auto p = published_.find(request->volume_path());
    auto s = staged_.find(id);
    bool known = (p != published_.end() && p->second.volume_id == id) ||
                 (s != staged_.end() &&
                  s->second.staging_path == request->volume_path());
    if (!known) {
      return {grpc::StatusCode::NOT_FOUND,
              absl::StrCat("volume ", id, " is not published or staged at ",
                           request->volume_path())};
    }
    block = p != published_.end() ? p->second.block : s->second.block;
  }
  if (block) {
    v1::VolumeUsage* u = response->add_usage();
    u->set_unit(v1::VolumeUsage::BYTES);
    u->set_total(static_cast<int64_t>(record->size_bytes));
  } else {
    struct statvfs st {};
    if (statvfs(request->volume_path().c_str(), &st) != 0) {
      return Fail(absl::NotFoundError(absl::StrCat(
          "statvfs ", request->volume_path(), ": ", std::strerror(errno))));
    }
    v1::VolumeUsage* bytes = response->add_usage();
    bytes->set_unit(v1::VolumeUsage::BYTES);
    bytes->set_total(static_cast<int64_t>(st.f_blocks * st.f_frsize));
    bytes->set_available(static_cast<int64_t>(st.f_bavail * st.f_frsize));
    bytes->set_used(
        static_cast<int64_t>((st.f_blocks - st.f_bfree) * st.f_frsize));
    v1::VolumeUsage* inodes = response->add_usage();
    inodes->set_unit(v1::VolumeUsage::INODES);
    inodes->set_total(static_cast<int64_t>(st.f_files));
    inodes->set_available(static_cast<int64_t>(st.f_favail));
    inodes->set_used(static_cast<int64_t>(st.f_files - st.f_ffree));
  }
  absl::StatusOr<v1::VolumeCondition> condition =
      VolumeConditionOf(catalog_, id);
  if (!condition.ok()) return Fail(condition.status());
  *response->mutable_volume_condition() = *std::move(condition);
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeGetCapabilities(
    grpc::ServerContext* /*context*/,
    const v1::NodeGetCapabilitiesRequest* /*request*/,
    v1::NodeGetCapabilitiesResponse* response) {
  using Rpc = v1::NodeServiceCapability::RPC;
  for (Rpc::Type t :
       {Rpc::STAGE_UNSTAGE_VOLUME, Rpc::GET_VOLUME_STATS, Rpc::VOLUME_CONDITION,
        Rpc::SINGLE_NODE_MULTI_WRITER, Rpc::EXPAND_VOLUME}) {
    response->add_capabilities()->mutable_rpc()->set_type(t);
  }
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeGetInfo(grpc::ServerContext* /*context*/,
                                      const v1::NodeGetInfoRequest* /*request*/,
                                      v1::NodeGetInfoResponse* response) {
  response->set_node_id(options_.node_id);
  auto* segments = response->mutable_accessible_topology()->mutable_segments();
  const HostLabels& t = options_.topology;
  if (!t.region.empty()) (*segments)["topology.juke.io/region"] = t.region;
  if (!t.zone.empty()) (*segments)["topology.juke.io/zone"] = t.zone;
  if (!t.cluster.empty()) (*segments)["topology.juke.io/cluster"] = t.cluster;
  (*segments)["topology.juke.io/host"] =
      t.host.empty() ? options_.node_id : t.host;
  return grpc::Status::OK;
}

grpc::Status NodeService::NodeExpandVolume(
    grpc::ServerContext* /*context*/,
    const v1::NodeExpandVolumeRequest* request,
    v1::NodeExpandVolumeResponse* response) {
  const std::string& id = request->volume_id();
  if (id.empty()) return Invalid("volume_id is empty");
  const std::string& path = request->volume_path();
  if (path.empty()) return Invalid("volume_path is empty");
  if (request->has_volume_capability()) {
    if (absl::Status s = CheckCapability(request->volume_capability());
        !s.ok()) {
      return Fail(s);
    }
  }
  if (request->has_capacity_range()) {
    if (absl::Status s =
            ExpandedSize(request->capacity_range(), 0, kDefaultChunkSize)
                .status();
        !s.ok()) {
      return Fail(s);
    }
  }
  absl::StatusOr<VolumeRecord> record = FindVolume(catalog_, id);
  if (!record.ok()) return Fail(record.status());
  // The node serves the size the controller gave the volume, no other.
  const uint64_t size = record->size_bytes;
  if (request->has_capacity_range()) {
    const v1::CapacityRange& range = request->capacity_range();
    if (static_cast<uint64_t>(range.required_bytes()) > size) {
      return Fail(absl::OutOfRangeError(absl::StrCat(
          "volume ", id, " is ", size, " bytes, below ", range.required_bytes(),
          "; expand it through the controller first")));
    }
    if (range.limit_bytes() != 0 &&
        size > static_cast<uint64_t>(range.limit_bytes())) {
      return Fail(absl::OutOfRangeError(absl::StrCat(
          "volume ", id, " is ", size, " bytes, above limit_bytes ",
          range.limit_bytes(), "; volumes never shrink")));
    }
  }

  absl::MutexLock lock(&mu_);
  auto staged = staged_.find(id);
  auto published = published_.find(path);
  const bool known =
      staged != staged_.end() &&
      (staged->second.staging_path == path ||
       (published != published_.end() && published->second.volume_id == id));
  if (!known) {
    return {
        grpc::StatusCode::NOT_FOUND,
        absl::StrCat("volume ", id, " is not staged or published at ", path)};
  }
  Staged& s = staged->second;
  if (s.volume == nullptr) {
    return {grpc::StatusCode::FAILED_PRECONDITION,
            absl::StrCat("volume ", id,
                         " was staged by an earlier run of the plugin and is "
                         "not served; stage it again")};
  }
  if (absl::Status grown = GrowStagedLocked(s, size); !grown.ok()) {
    return Fail(Annotate(grown, absl::StrCat("expand volume ", id)));
  }
  response->set_capacity_bytes(static_cast<int64_t>(s.volume->size()));
  return grpc::Status::OK;
}

absl::Status NodeService::GrowStagedLocked(Staged& staged, uint64_t size) {
  const uint64_t before = staged.volume->size();
  JUKE_RETURN_IF_ERROR(staged.volume->Grow(size));
  // A read-only publication has a loop device of its own on the same file.
  for (auto& [target, p] : published_) {
    if (p.volume_id != staged.volume_id || p.read_only_loop == nullptr) {
      continue;
    }
    JUKE_RETURN_IF_ERROR(p.read_only_loop->RefreshCapacity());
  }
  // Never a file system on a raw block volume: its bytes are the user's.
  // A read-only mount cannot grow; it shows the new size once staged
  // writable.
  if (!staged.block && !staged.read_only) {
    JUKE_RETURN_IF_ERROR(node::GrowFilesystem(
        staged.device, staged.staging_path, staged.fstype));
  }
  JUKE_LOG_INFO(Log(), "Volume expanded volumeID={} oldSize={} newSize={}",
                staged.volume_id, before, staged.volume->size());
  return absl::OkStatus();
}

}  // namespace juke::csi
