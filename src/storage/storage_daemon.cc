#include "src/storage/storage_daemon.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"

#include "src/common/etcd_client.h"
#include "src/common/logging.h"
#include "src/common/metrics_server.h"
#include "src/common/rate_limiter.h"
#include "src/common/status.h"
#include "src/common/version.h"
#include "src/model/host_registry.h"
#include "src/model/keys.h"
#include "src/model/map_store.h"
#include "src/storage/chunk_service.h"
#include "src/storage/storage_metrics.h"
#include "src/storage/storage_node.h"
#include "src/volume/mover.h"
#include "src/volume/recovery.h"
#include "src/volume/snapshot_mover.h"
#include "src/volume/snapshots.h"
#include "src/volume/volume_catalog.h"

namespace juke::storage {
namespace {

Logger Log() {
  static const Logger log = GetLogger("storaged");
  return log;
}

// How often disk capacity and health are refreshed in etcd and metrics.
constexpr absl::Duration kRefreshInterval = absl::Seconds(5);

// The address peers dial: --advertise, or the listen host with the bound
// port, where a wildcard host becomes loopback.
std::string AdvertiseAddress(const DaemonConfig& config, int port) {
  if (!config.advertise.empty()) return config.advertise;
  std::string host = config.listen.substr(0, config.listen.rfind(':'));
  if (host == "0.0.0.0" || host == "[::]" || host.empty()) {
    JUKE_LOG_WARN(Log(),
                  "Advertising loopback; set --advertise for other hosts "
                  "listen={}",
                  config.listen);
    host = "127.0.0.1";
  }
  return absl::StrCat(host, ":", port);
}

absl::Status WriteReadyFile(const std::string& path, const std::string& grpc,
                            int metrics_port) {
  nlohmann::json j = {{"address", grpc},
                      {"metricsPort", metrics_port},
                      {"pid", static_cast<int>(getpid())}};
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    if (!out) return absl::InternalError(absl::StrCat("write ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("rename ", tmp));
  }
  return absl::OkStatus();
}

HostRecord MakeRecord(const DaemonConfig& config, const std::string& address,
                      const std::vector<DiskInfo>& disks, int64_t started_at) {
  HostRecord r;
  r.host_id = config.host_id;
  r.pool_id = config.pool_id;
  r.address = address;
  r.labels.region = config.region;
  r.labels.zone = config.zone;
  r.labels.cluster = config.cluster;
  r.labels.host = config.host_id;
  r.started_at = started_at;
  r.version = kJukeVersion;
  for (const DiskInfo& d : disks) {
    DiskRecord disk;
    disk.disk_id = d.disk_id;
    disk.path = d.path;
    disk.state = std::string(DiskStateName(d.state));
    disk.capacity_bytes = d.stats.capacity_bytes;
    disk.used_bytes = d.stats.used_bytes;
    disk.available_bytes = d.stats.available_bytes;
    disk.chunk_count = d.stats.chunk_count;
    disk.filesystem = d.stats.filesystem_id;
    r.disks.push_back(std::move(disk));
  }
  return r;
}

// Registers the host. A daemon restarted right after a crash finds its
// predecessor's liveness key still on an unexpired lease: it waits that
// lease out rather than fail. A second live daemon with the same host id
// keeps renewing its lease, and then this one gives up.
absl::Status RegisterHost(HostRegistry* registry, const HostRecord& record,
                          int ttl_seconds) {
  absl::Time deadline = absl::Now() + absl::Seconds(ttl_seconds + 2);
  bool logged = false;
  while (true) {
    absl::Status s = registry->Register(record, ttl_seconds);
    if (!absl::IsAlreadyExists(s) || absl::Now() >= deadline) return s;
    if (!logged) {
      JUKE_LOG_INFO(Log(),
                    "Waiting for the previous daemon's lease to end "
                    "hostID={} err={}",
                    record.host_id, s);
      logged = true;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
}

// Raises every volume's fence on this host to the generation etcd holds.
absl::Status SyncFences(EtcdClient& etcd, StorageNode* node) {
  JUKE_ASSIGN_OR_RETURN(std::vector<EtcdKeyValue> fences,
                        etcd.GetPrefix(kFencesPrefix));
  for (const EtcdKeyValue& kv : fences) {
    absl::StatusOr<std::string> volume =
        UnescapeKeySegment(absl::string_view(kv.key).substr(
            absl::string_view(kFencesPrefix).size()));
    uint64_t generation = 0;
    if (!volume.ok() || !absl::SimpleAtoi(kv.value, &generation)) {
      JUKE_LOG_WARN(Log(), "Unreadable fence key={}", kv.key);
      continue;
    }
    JUKE_RETURN_IF_ERROR(Annotate(node->Fence(*volume, generation).status(),
                                  "sync fences from etcd"));
  }
  JUKE_LOG_INFO(Log(), "Fences synced from etcd volumes={}", fences.size());
  return absl::OkStatus();
}

}  // namespace

struct StorageDaemon::State {
  DaemonConfig config;
  std::unique_ptr<FileSystem> fs;
  std::unique_ptr<StorageNode> node;
  std::unique_ptr<StorageMetrics> metrics;
  std::unique_ptr<MetricsServer> metrics_server;
  std::unique_ptr<ChunkServiceImpl> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<EtcdClient> etcd;
  std::unique_ptr<HostRegistry> registry;
  std::string address;
  int64_t started_at = 0;

  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // guarded by mu
  std::thread refresher;
  // The lease under which this daemon last read every fence from etcd.
  // Writes are taken only under it: after a lost lease the pool may have
  // counted this host down and moved volumes without fencing it.
  std::atomic<int64_t> synced_lease{0};

  // ChunkServiceImpl's gate: no writes unless the fences are current and
  // the lease is certainly still alive in etcd. It is renewed every TTL/3;
  // refusing from half a TTL after the last renewal leaves a margin before
  // etcd can expire it.
  absl::Status WriteGate() const {
    const int64_t lease = registry->lease_id();
    if (lease == 0 || lease != synced_lease.load()) {
      return absl::UnavailableError(
          "this host is rejoining the pool and has not yet learnt every "
          "volume's fence from etcd; try another replica");
    }
    const absl::Duration quiet = absl::Now() - registry->lease_renewed_at();
    if (quiet > absl::Seconds(config.lease_ttl_seconds) / 2) {
      return absl::UnavailableError(absl::StrCat(
          "this host has not reached etcd for ",
          absl::FormatDuration(absl::Trunc(quiet, absl::Milliseconds(1))),
          "; it takes no writes until it does, since the pool may count it "
          "down and have moved volumes"));
    }
    return absl::OkStatus();
  }

  // After registering again on a new lease: learn the fences first.
  void ResyncFencesIfNeeded() {
    const int64_t lease = registry->lease_id();
    if (lease == 0 || lease == synced_lease.load()) return;
    absl::Status s = SyncFences(*etcd, node.get());
    if (!s.ok()) {
      JUKE_LOG_WARN(Log(), "Fence sync after a new lease failed err={}", s);
      return;
    }
    synced_lease = lease;
    JUKE_LOG_INFO(Log(), "Taking writes again leaseID={}", lease);
  }
  std::thread recoverer;
  std::unique_ptr<RateLimiter> recovery_limiter;

  // Every kRefreshInterval: disk stats into metrics and etcd.
  void RefreshLoop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!cv.wait_for(lock, absl::ToChronoSeconds(kRefreshInterval),
                        [this] { return stopping; })) {
      lock.unlock();
      std::vector<DiskInfo> disks = node->Disks();
      metrics->UpdateDisks(disks);
      absl::Status s =
          registry->Update(MakeRecord(config, address, disks, started_at));
      if (!s.ok()) {
        JUKE_LOG_WARN(Log(), "Registration refresh failed err={}", s);
      }
      ResyncFencesIfNeeded();
      lock.lock();
    }
  }

  void RecoveryLoop();

  // Whether this daemon moves the detached volumes when the map changes:
  // the one on the up host with the smallest id does, so that the work is
  // done once (two movers would still be safe, only wasteful).
  bool IsMover(const ClusterMap& map) const {
    for (const MapDisk& d : map.disks()) {
      if (d.up && d.host_id < config.host_id) return false;
    }
    return true;
  }
};

// Every recovery interval: one pass over the volumes no writer holds,
// bringing the stale replicas on this host's disks up to date.
void StorageDaemon::State::RecoveryLoop() {
  VolumeCatalog catalog(etcd.get());
  ChunkClientPool clients;
  std::unique_lock<std::mutex> lock(mu);
  while (!cv.wait_for(lock,
                      std::chrono::seconds(config.recovery_interval_seconds),
                      [this] { return stopping; })) {
    lock.unlock();
    std::set<std::string> mine;
    for (const DiskInfo& d : node->Disks()) {
      if (d.state != DiskInfo::State::kFailed) mine.insert(d.disk_id);
    }
    // Stops the pass early when the daemon is stopping.
    auto accept = [&](absl::string_view disk) {
      std::lock_guard<std::mutex> guard(mu);
      return !stopping && mine.count(std::string(disk)) > 0;
    };
    RecoveryProgress total;
    absl::Status s;
    absl::StatusOr<ClusterMap> map = RefreshMap(*etcd);
    absl::StatusOr<std::vector<VolumeRecord>> volumes = catalog.List();
    if (!map.ok()) s = map.status();
    if (!volumes.ok()) s = volumes.status();
    if (s.ok()) {
      for (const VolumeRecord& v : *volumes) {
        absl::StatusOr<RecoveryProgress> p = RecoverDetachedVolume(
            &catalog, &clients, *map, v.id, accept, recovery_limiter.get());
        if (!p.ok()) {
          s = p.status();
          continue;
        }
        total += *p;
      }
    }
    if (s.ok() && IsMover(*map)) {
      for (const VolumeRecord& v : *volumes) {
        {
          std::lock_guard<std::mutex> guard(mu);
          if (stopping) break;
        }
        absl::StatusOr<MoveProgress> p =
            MoveVolume(&catalog, &clients, *map, v.id, nullptr,
                       recovery_limiter.get(), absl::Seconds(10));
        if (!p.ok()) {
          s = p.status();
          continue;
        }
        if (!p->phase.empty()) {
          JUKE_LOG_INFO(Log(),
                        "Move pass volumeID={} phase={} fromEpoch={} "
                        "toEpoch={} chunks={} copied={} dropped={} "
                        "waiting={} reason={}",
                        v.id, p->phase, p->from_epoch, p->to_epoch, p->chunks,
                        p->copied, p->dropped, p->waiting, p->reason);
        }
      }
      // Then the snapshots, which follow the map the same way.
      absl::StatusOr<std::vector<SnapshotRecord>> snapshots =
          SnapshotCatalog(etcd.get()).List();
      if (!snapshots.ok()) s = snapshots.status();
      for (const SnapshotRecord& snap :
           snapshots.ok() ? *snapshots : std::vector<SnapshotRecord>{}) {
        {
          std::lock_guard<std::mutex> guard(mu);
          if (stopping) break;
        }
        absl::StatusOr<SnapshotMoveProgress> p =
            MoveSnapshot(etcd.get(), &catalog, &clients, *map, snap.id,
                         recovery_limiter.get(), absl::Seconds(10));
        if (!p.ok()) s = p.status();
      }
    }
    if (!s.ok()) {
      JUKE_LOG_WARN(Log(), "Recovery pass incomplete err={}", s);
    }
    metrics->RecordRecovery(total.marks - total.recovered, total.recovered,
                            total.bytes);
    if (total.marks > 0) {
      JUKE_LOG_INFO(Log(),
                    "Recovery pass stale={} recovered={} waiting={} "
                    "bytes={}",
                    total.marks, total.recovered, total.waiting, total.bytes);
    }
    lock.lock();
  }
}

StorageDaemon::StorageDaemon(std::unique_ptr<State> state)
    : state_(std::move(state)) {}

StorageDaemon::~StorageDaemon() { Shutdown(); }

const std::string& StorageDaemon::address() const { return state_->address; }

absl::StatusOr<std::unique_ptr<StorageDaemon>> StorageDaemon::Start(
    const DaemonConfig& config) {
  auto s = std::make_unique<State>();
  s->config = config;
  s->started_at = absl::ToUnixSeconds(absl::Now());

  // Disks first: a wrong disk stops the start before anything is announced.
  s->fs = NewUringFileSystem();
  JUKE_ASSIGN_OR_RETURN(s->node, StorageNode::Open(config, s->fs.get()));

  s->metrics = std::make_unique<StorageMetrics>(
      std::make_shared<prometheus::Registry>());
  int metrics_port = 0;
  if (!config.metrics_listen.empty()) {
    JUKE_ASSIGN_OR_RETURN(
        s->metrics_server,
        MetricsServer::Start(config.metrics_listen, s->metrics->registry()));
    metrics_port = s->metrics_server->port();
  }

  // Learn every volume's fence before serving: while this daemon was away
  // a volume may have moved, and its old writer must find it fenced.
  JUKE_ASSIGN_OR_RETURN(
      s->etcd, EtcdClient::Create(absl::StrJoin(config.etcd_endpoints, ",")));
  JUKE_RETURN_IF_ERROR(SyncFences(*s->etcd, s->node.get()));
  s->registry = std::make_unique<HostRegistry>(s->etcd.get());

  // The chunk service, with the standard gRPC health service beside it.
  State* raw = s.get();
  s->service = std::make_unique<ChunkServiceImpl>(
      s->node.get(), s->metrics.get(), [raw] { return raw->WriteGate(); });
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config.listen, grpc::InsecureServerCredentials(),
                           &port);
  // A full 4 MiB transfer plus its checksums and framing.
  builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxTransferBytes) +
                                   (64 << 10));
  builder.SetMaxSendMessageSize(static_cast<int>(kMaxTransferBytes) +
                                (64 << 10));
  builder.RegisterService(s->service.get());
  s->server = builder.BuildAndStart();
  if (s->server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", config.listen,
                     "; is the port in use? choose another with --listen"));
  }
  s->address = AdvertiseAddress(config, port);

  // Announce the host: its record stays while it is down, its liveness key
  // lives on a lease that ends when this process does.
  std::vector<DiskInfo> disks = s->node->Disks();
  s->metrics->UpdateDisks(disks);
  JUKE_RETURN_IF_ERROR(Annotate(
      RegisterHost(s->registry.get(),
                   MakeRecord(config, s->address, disks, s->started_at),
                   config.lease_ttl_seconds),
      "register in etcd"));

  // A volume attached while this host was not yet registered skipped it
  // when fencing: read the fences again now that it counts as up.
  JUKE_RETURN_IF_ERROR(SyncFences(*s->etcd, s->node.get()));
  s->synced_lease = s->registry->lease_id();
  s->refresher = std::thread([raw] { raw->RefreshLoop(); });
  if (config.recovery_interval_seconds > 0) {
    s->recovery_limiter =
        std::make_unique<RateLimiter>(config.recovery_mib_per_second << 20);
    s->recoverer = std::thread([raw] { raw->RecoveryLoop(); });
  }
  if (!config.ready_file.empty()) {
    JUKE_RETURN_IF_ERROR(
        WriteReadyFile(config.ready_file, s->address, metrics_port));
  }
  JUKE_LOG_INFO(Log(),
                "Storage daemon serving hostID={} address={} metricsPort={} "
                "disks={}",
                config.host_id, s->address, metrics_port, disks.size());
  return std::unique_ptr<StorageDaemon>(new StorageDaemon(std::move(s)));
}

void StorageDaemon::Shutdown() {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stopping) return;
    s.stopping = true;
  }
  s.cv.notify_all();
  if (s.refresher.joinable()) s.refresher.join();
  if (s.recoverer.joinable()) s.recoverer.join();

  // Leave the pool first so that clients stop choosing this host, then let
  // calls in flight finish for a bounded time.
  absl::Status dereg = s.registry->Deregister();
  if (!dereg.ok()) {
    JUKE_LOG_WARN(Log(), "Deregistration failed err={}", dereg);
  }
  s.server->Shutdown(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
  s.server->Wait();
  s.node.reset();
  JUKE_LOG_INFO(Log(), "Storage daemon stopped hostID={}", s.config.host_id);
}

}  // namespace juke::storage
