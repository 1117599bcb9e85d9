#include "src/model/map_store.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/host_registry.h"
#include "src/model/keys.h"

namespace juke {
namespace {

const Logger& Log() {
  static const Logger log = GetLogger("model");
  return log;
}

// Reads the disk's override, lets `change` edit it and writes it back,
// unless someone else wrote it meanwhile, then it starts over.
absl::Status UpdateOverride(EtcdClient& etcd, absl::string_view disk_id,
                            const std::function<void(DiskOverride*)>& change) {
  const std::string context = absl::StrCat("update disk ", disk_id);
  absl::StatusOr<ClusterMap> map = MapStore(&etcd).Load();
  if (!map.ok()) return Annotate(map.status(), context);
  if (map->FindDisk(disk_id) == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(context, ": not in map epoch ", map->epoch()));
  }

  const std::string key = DiskAdminKey(disk_id);
  constexpr int kAttempts = 20;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    absl::StatusOr<std::optional<EtcdKeyValue>> kv = etcd.Get(key);
    if (!kv.ok()) return Annotate(kv.status(), context);
    DiskOverride o;
    int64_t revision = 0;
    if (kv->has_value()) {
      absl::StatusOr<DiskOverride> old = DecodeDiskOverride((*kv)->value);
      // A broken override is replaced: the admin is setting it anew.
      if (old.ok()) o = *old;
      revision = (*kv)->mod_revision;
    }
    change(&o);
    JUKE_ASSIGN_OR_RETURN(std::string value, EncodeDiskOverride(o));
    absl::StatusOr<bool> written = etcd.PutIfModRevision(key, value, revision);
    if (!written.ok()) return Annotate(written.status(), context);
    if (*written) {
      JUKE_LOG_INFO(Log(), "Disk override set diskID={} override={}", disk_id,
                    value);
      return absl::OkStatus();
    }
  }
  return absl::AbortedError(
      absl::StrCat(context, ": changed by others ", kAttempts, " times"));
}

}  // namespace

std::string MapEpochKey(uint64_t epoch) {
  return absl::StrFormat("%s%020d", kMapEpochsPrefix, epoch);
}

std::string MapPinPrefix(uint64_t epoch) {
  return absl::StrFormat("%s%020d/", kMapPinsPrefix, epoch);
}

std::string MapPinKey(uint64_t epoch, absl::string_view volume_id) {
  return absl::StrCat(MapPinPrefix(epoch), EscapeKeySegment(volume_id));
}

std::string DiskAdminKey(absl::string_view disk_id) {
  return absl::StrCat(kDiskAdminPrefix, EscapeKeySegment(disk_id));
}

MapStore::MapStore(EtcdClient* etcd, MapStoreOptions options)
    : etcd_(etcd), options_(options) {}

absl::StatusOr<MapStore::Current> MapStore::LoadCurrent() {
  absl::StatusOr<std::optional<EtcdKeyValue>> kv = etcd_->Get(kMapCurrentKey);
  if (!kv.ok()) return Annotate(kv.status(), "load cluster map");
  Current current;
  if (!kv->has_value()) return current;
  absl::StatusOr<ClusterMap> map = DecodeClusterMap((*kv)->value);
  if (!map.ok()) {
    return Annotate(map.status(), absl::StrCat("load ", kMapCurrentKey));
  }
  current.map = std::move(*map);
  current.mod_revision = (*kv)->mod_revision;
  return current;
}

absl::StatusOr<ClusterMap> MapStore::Load() {
  JUKE_ASSIGN_OR_RETURN(Current current, LoadCurrent());
  if (!current.map.has_value()) {
    return absl::NotFoundError("no cluster map has been published yet");
  }
  return std::move(*current.map);
}

absl::StatusOr<ClusterMap> MapStore::LoadEpoch(uint64_t epoch) {
  const std::string key = MapEpochKey(epoch);
  absl::StatusOr<std::optional<EtcdKeyValue>> kv = etcd_->Get(key);
  if (!kv.ok()) return Annotate(kv.status(), "load cluster map");
  if (!kv->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("cluster map epoch ", epoch, " is not in the history"));
  }
  absl::StatusOr<ClusterMap> map = DecodeClusterMap((*kv)->value);
  if (!map.ok()) return Annotate(map.status(), absl::StrCat("load ", key));
  return map;
}

absl::StatusOr<ClusterMap> MapStore::PublishBuilt(
    absl::string_view what,
    const std::function<absl::StatusOr<ClusterMap>(const Current&)>& build) {
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    JUKE_ASSIGN_OR_RETURN(Current current, LoadCurrent());
    absl::StatusOr<ClusterMap> content = build(current);
    if (!content.ok()) return Annotate(content.status(), what);
    if (current.map.has_value() && current.map->SameContent(*content)) {
      return std::move(*current.map);
    }

    // The next epoch, written only if nobody published since we read.
    const uint64_t epoch =
        current.map.has_value() ? current.map->epoch() + 1 : 1;
    ClusterMap next = content->WithEpoch(epoch);
    JUKE_ASSIGN_OR_RETURN(std::string value, EncodeClusterMap(next));
    EtcdTxn txn;
    txn.IfModRevision(kMapCurrentKey, EtcdCompareOp::kEqual,
                      current.mod_revision)
        .ThenPut(kMapCurrentKey, value)
        .ThenPut(MapEpochKey(epoch), value);
    // One epoch is added each time, so dropping the one that falls out
    // keeps the history at its length; unless a volume still places its
    // chunks with it.
    if (options_.history > 0 && epoch > options_.history) {
      const uint64_t old = epoch - options_.history;
      absl::StatusOr<std::vector<EtcdKeyValue>> pins =
          etcd_->GetPrefix(MapPinPrefix(old), /*limit=*/1);
      if (!pins.ok()) return Annotate(pins.status(), what);
      if (pins->empty()) txn.ThenDelete(MapEpochKey(old));
    }
    absl::StatusOr<EtcdTxnResult> result = etcd_->Txn(txn);
    if (!result.ok()) return Annotate(result.status(), what);
    if (result->succeeded) {
      JUKE_LOG_INFO(Log(), "Cluster map published epoch={} disks={}", epoch,
                    next.disks().size());
      return next;
    }
    JUKE_LOG_DEBUG(Log(), "Cluster map publish raced, reading again epoch={}",
                   epoch);
  }
  return absl::AbortedError(absl::StrCat(what, ": other publishers won ",
                                         options_.max_attempts,
                                         " times in a row"));
}

absl::StatusOr<ClusterMap> MapStore::Publish(const ClusterMap& content) {
  return PublishBuilt(
      "publish cluster map",
      [&](const Current&) -> absl::StatusOr<ClusterMap> { return content; });
}

absl::StatusOr<ClusterMap> MapStore::Refresh() {
  return PublishBuilt(
      "refresh cluster map",
      [&](const Current& current) -> absl::StatusOr<ClusterMap> {
        // Hosts and overrides may be a little older than the current map;
        // that is harmless, as the previous map's disks are all kept and
        // the next refresh sees the newer state.
        JUKE_ASSIGN_OR_RETURN(std::vector<HostStatus> hosts, ListHosts(*etcd_));
        JUKE_ASSIGN_OR_RETURN(DiskOverrides overrides,
                              LoadDiskOverrides(*etcd_));
        JUKE_ASSIGN_OR_RETURN(Members members, LoadMembers(*etcd_));
        return BuildMap(hosts, overrides,
                        current.map.has_value() ? &*current.map : nullptr,
                        members);
      });
}

absl::StatusOr<DiskOverrides> LoadDiskOverrides(EtcdClient& etcd) {
  absl::StatusOr<std::vector<EtcdKeyValue>> kvs =
      etcd.GetPrefix(kDiskAdminPrefix);
  if (!kvs.ok()) return Annotate(kvs.status(), "load disk overrides");
  DiskOverrides overrides;
  const size_t prefix = sizeof(kDiskAdminPrefix) - 1;
  for (const EtcdKeyValue& kv : *kvs) {
    absl::StatusOr<std::string> disk_id =
        UnescapeKeySegment(absl::string_view(kv.key).substr(prefix));
    if (!disk_id.ok()) return Annotate(disk_id.status(), kv.key);
    absl::StatusOr<DiskOverride> o = DecodeDiskOverride(kv.value);
    if (!o.ok()) return Annotate(o.status(), kv.key);
    overrides.emplace(std::move(*disk_id), *o);
  }
  return overrides;
}

absl::Status SetDiskIn(EtcdClient& etcd, absl::string_view disk_id, bool in) {
  return UpdateOverride(etcd, disk_id, [in](DiskOverride* o) {
    if (in) {
      o->in.reset();
      o->removed = false;
    } else {
      o->in = false;
    }
  });
}

absl::Status SetDiskWeight(EtcdClient& etcd, absl::string_view disk_id,
                           std::optional<double> weight) {
  // Written so that NaN fails too.
  if (weight.has_value() && !(*weight >= 0 && *weight <= kMaxDiskWeight)) {
    return absl::InvalidArgumentError(
        absl::StrCat("set weight of disk ", disk_id, ": ", *weight,
                     " is not in [0, ", kMaxDiskWeight, "]"));
  }
  return UpdateOverride(etcd, disk_id,
                        [weight](DiskOverride* o) { o->weight = weight; });
}

absl::Status RemoveDisk(EtcdClient& etcd, absl::string_view disk_id) {
  return UpdateOverride(etcd, disk_id,
                        [](DiskOverride* o) { o->removed = true; });
}

absl::StatusOr<ClusterMap> RefreshMap(EtcdClient& etcd) {
  return MapStore(&etcd).Refresh();
}

}  // namespace juke
