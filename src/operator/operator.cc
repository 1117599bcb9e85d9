#include "src/operator/operator.h"

#include <algorithm>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/keys.h"
#include "src/model/map_store.h"

namespace juke {
namespace {

using Json = nlohmann::json;

constexpr char kJukeApi[] = "/apis/juke.io/v1alpha1";
// Events about cluster-scoped objects (Nodes, JukeClusters) live in the
// default namespace: the API requires the event's namespace to match its
// object's, and "default" stands for none.
constexpr char kEventNamespace[] = "default";

const Logger& Log() {
  static const Logger* log = new Logger(GetLogger("operator"));
  return *log;
}

std::string Label(const Json& object, const char* key) {
  const Json* labels = nullptr;
  if (auto m = object.find("metadata"); m != object.end()) {
    if (auto l = m->find("labels"); l != m->end() && l->is_object()) {
      labels = &*l;
    }
  }
  if (labels == nullptr) return "";
  auto v = labels->find(key);
  return v != labels->end() && v->is_string() ? v->get<std::string>() : "";
}

// The disks a JukeNode's spec lists; none when it lists none (the node
// gives every disk its daemon serves). The CRD's schema has checked the
// paths and weights already.
std::optional<std::vector<MemberDisk>> ListedDisks(const Json& spec) {
  auto it = spec.find("disks");
  if (it == spec.end() || !it->is_array()) return std::nullopt;
  std::vector<MemberDisk> disks;
  for (const Json& d : *it) {
    if (!d.is_object()) continue;
    MemberDisk disk;
    disk.path = d.value("path", "");
    if (disk.path.empty()) continue;
    if (auto w = d.find("weight"); w != d.end() && w->is_number()) {
      disk.weight = w->get<double>();
    }
    disks.push_back(std::move(disk));
  }
  return disks;
}

NodeInfo ToNodeInfo(const Json& node) {
  NodeInfo n;
  n.name = MetadataString(node, "name");
  n.uid = MetadataString(node, "uid");
  n.region = Label(node, "topology.kubernetes.io/region");
  n.zone = Label(node, "topology.kubernetes.io/zone");
  const Json status = node.value("status", Json::object());
  for (const Json& c : status.value("conditions", Json::array())) {
    if (c.value("type", "") == "Ready") {
      n.ready = c.value("status", "") == "True";
      absl::StatusOr<absl::Time> changed =
          ParseKubeTime(c.value("lastTransitionTime", ""));
      if (changed.ok()) n.ready_changed = *changed;
    }
  }
  return n;
}

// A condition as the CRDs define it. lastTransitionTime is kept from
// `old` when the status did not change.
Json Condition(const Json& old_conditions, const char* type, bool status,
               const std::string& reason, const std::string& message,
               int64_t generation, absl::Time now) {
  std::string s = status ? "True" : "False";
  std::string since = KubeTime(now);
  if (old_conditions.is_array()) {
    for (const Json& c : old_conditions) {
      if (c.value("type", "") == type && c.value("status", "") == s) {
        since = c.value("lastTransitionTime", since);
      }
    }
  }
  return {{"type", type},
          {"status", s},
          {"reason", reason},
          {"message", message},
          {"lastTransitionTime", since},
          {"observedGeneration", generation}};
}

int64_t Generation(const Json& object) {
  auto m = object.find("metadata");
  if (m == object.end()) return 0;
  return m->value("generation", int64_t{0});
}

}  // namespace

Operator::Operator(KubeClient* client, OperatorOptions options)
    : client_(client),
      options_(std::move(options)),
      lease_(client, options_.lease_namespace, options_.lease_name,
             options_.identity, options_.lease),
      nodes_(client, "/api/v1/nodes", [this] { Changed(); },
             {.watch_timeout = options_.watch_timeout}),
      juke_nodes_(client, absl::StrCat(kJukeApi, "/jukenodes"),
                  [this] { Changed(); },
                  {.watch_timeout = options_.watch_timeout}),
      juke_clusters_(client, absl::StrCat(kJukeApi, "/jukeclusters"),
                     [this] { Changed(); },
                     {.watch_timeout = options_.watch_timeout}) {}

void Operator::Changed() {
  absl::MutexLock lock(&mu_);
  changed_ = true;
}

void Operator::Run(const std::atomic<bool>* stop) {
  std::vector<std::thread> watchers;
  for (Reflector* r : {&nodes_, &juke_nodes_, &juke_clusters_}) {
    watchers.emplace_back([r, stop] { r->Run(stop); });
  }
  absl::Time next_resync = absl::InfinitePast();
  absl::Time next_election = absl::InfinitePast();
  bool was_leader = false;
  while (!stop->load()) {
    absl::Time now = absl::Now();
    if (now >= next_election) {
      absl::StatusOr<bool> leader = lease_.TryAcquireOrRenew();
      if (!leader.ok()) {
        JUKE_LOG_WARN(Log(), "Leader election failed err={}", leader.status());
      }
      next_election = now + lease_.retry_period();
    }
    bool leader = lease_.is_leader();
    if (leader != was_leader) {
      if (leader) {
        JUKE_LOG_INFO(Log(), "Leading identity={}", options_.identity);
      } else {
        JUKE_LOG_INFO(Log(), "Not leading any more identity={}",
                      options_.identity);
      }
      was_leader = leader;
      Changed();
    }
    bool changed;
    {
      absl::MutexLock lock(&mu_);
      changed = changed_;
    }
    bool synced =
        nodes_.synced() && juke_nodes_.synced() && juke_clusters_.synced();
    if (leader && synced && (changed || now >= next_resync)) {
      {
        absl::MutexLock lock(&mu_);
        changed_ = false;
      }
      absl::Status s = Reconcile();
      if (!s.ok()) {
        JUKE_LOG_WARN(Log(), "Reconcile failed err={}", s);
        Changed();  // Try again, after a pause.
        next_resync = absl::Now() + absl::Seconds(1);
      } else {
        next_resync = absl::Now() + options_.resync;
      }
    }
    // Wake on a change, at the next election round, or at the next resync.
    absl::MutexLock lock(&mu_);
    absl::Time wake = std::min(next_election, next_resync);
    mu_.AwaitWithDeadline(absl::Condition(&changed_),
                          std::max(wake, absl::Now() + absl::Milliseconds(50)));
  }
  for (std::thread& t : watchers) t.join();
  absl::Status released = lease_.Release();
  if (!released.ok()) {
    JUKE_LOG_WARN(Log(), "Releasing the lease failed err={}", released);
  }
}

absl::Status Operator::ConnectEtcd(const std::string& endpoints) {
  if (etcd_ != nullptr && endpoints == etcd_endpoints_) return absl::OkStatus();
  JUKE_ASSIGN_OR_RETURN(etcd_, EtcdClient::Create(endpoints));
  etcd_endpoints_ = endpoints;
  JUKE_LOG_INFO(Log(), "Using etcd endpoints={}", endpoints);
  return absl::OkStatus();
}

void Operator::TrackReadiness(const std::vector<NodeInfo>& nodes,
                              absl::Time now) {
  std::map<std::string, absl::Time> since;
  for (const NodeInfo& n : nodes) {
    if (n.ready) continue;
    // Since the Node says it turned NotReady, so that a restarted or newly
    // elected operator does not start counting again; never later than
    // this operator first saw it NotReady, nor in this clock's future.
    auto it = not_ready_since_.find(n.name);
    absl::Time seen = it == not_ready_since_.end() ? now : it->second;
    since[n.name] = std::min(seen, n.ready_changed);
  }
  not_ready_since_ = std::move(since);
}

absl::Status Operator::Reconcile() {
  std::map<std::string, Json> clusters = juke_clusters_.Objects();
  auto found = clusters.find(options_.cluster_resource);
  if (found == clusters.end()) {
    JUKE_LOG_INFO(Log(), "Waiting for the JukeCluster name={}",
                  options_.cluster_resource);
    return absl::OkStatus();
  }
  const Json& cluster = found->second;
  const Json spec = cluster.value("spec", Json::object());
  std::string endpoints = options_.etcd_endpoints;
  if (endpoints.empty()) {
    std::vector<std::string> list;
    for (const Json& e : spec.value("etcdEndpoints", Json::array())) {
      if (e.is_string()) list.push_back(e.get<std::string>());
    }
    endpoints = absl::StrJoin(list, ",");
  }
  if (endpoints.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("JukeCluster ", options_.cluster_resource,
                     " has no spec.etcdEndpoints"));
  }
  JUKE_RETURN_IF_ERROR(ConnectEtcd(endpoints));

  MembershipInput in;
  in.cluster.name = spec.value("clusterName", "");
  if (in.cluster.name.empty()) in.cluster.name = options_.cluster_resource;
  in.cluster.default_region = spec.value("defaultRegion", "");
  in.cluster.default_zone = spec.value("defaultZone", "");
  std::map<std::string, NodeInfo> node_by_name;
  for (const auto& [name, node] : nodes_.Objects()) {
    NodeInfo info = ToNodeInfo(node);
    in.nodes.push_back(info);
    node_by_name[info.name] = info;
  }
  for (const auto& [name, jn] : juke_nodes_.Objects()) {
    const Json s = jn.value("spec", Json::object());
    if (s.value("draining", false)) {
      in.draining.insert(s.value("nodeName", ""));
    }
    if (std::optional<std::vector<MemberDisk>> disks = ListedDisks(s)) {
      in.disks[s.value("nodeName", "")] = *std::move(disks);
    }
  }
  in.now = absl::Now();
  TrackReadiness(in.nodes, in.now);
  in.not_ready_since = not_ready_since_;
  in.not_ready_grace = options_.not_ready_grace;
  in.down_out_after = options_.down_out_after;

  JUKE_ASSIGN_OR_RETURN(in.members, LoadMembers(*etcd_));
  JUKE_ASSIGN_OR_RETURN(in.hosts, ListHosts(*etcd_));
  MapStore store(etcd_.get());
  // Every epoch some volume still places its chunks with.
  JUKE_ASSIGN_OR_RETURN(std::vector<EtcdKeyValue> pins,
                        etcd_->GetPrefix(kMapPinsPrefix));
  std::set<uint64_t> epochs;
  for (const EtcdKeyValue& kv : pins) {
    absl::string_view rest =
        absl::string_view(kv.key).substr(sizeof(kMapPinsPrefix) - 1);
    uint64_t epoch = 0;
    if (absl::SimpleAtoi(rest.substr(0, rest.find('/')), &epoch)) {
      epochs.insert(epoch);
    }
  }
  std::vector<ClusterMap> pinned;
  for (uint64_t epoch : epochs) {
    absl::StatusOr<ClusterMap> m = store.LoadEpoch(epoch);
    if (!m.ok()) return Annotate(m.status(), "load a pinned map epoch");
    pinned.push_back(*std::move(m));
  }
  in.depended = DependedHosts(pinned, in.hosts);

  MembershipPlan plan = PlanMembership(in);
  for (const MemberRecord& m : plan.put) {
    JUKE_RETURN_IF_ERROR(PutMember(*etcd_, m));
    JUKE_LOG_INFO(Log(),
                  "Member updated hostID={} cluster={} state={} "
                  "down={} region={} zone={}",
                  m.host_id, m.cluster, MemberStateName(m.state), m.down,
                  m.region, m.zone);
    in.members[m.host_id] = m;
  }
  for (const std::string& host : plan.remove) {
    JUKE_RETURN_IF_ERROR(RemoveHost(host));
    in.members.erase(host);
  }
  JUKE_ASSIGN_OR_RETURN(ClusterMap map, store.Refresh());
  for (const PlannedEvent& e : plan.events) PostEvent(e, cluster, node_by_name);

  JUKE_ASSIGN_OR_RETURN(in.hosts, ListHosts(*etcd_));
  PoolSummary summary = Summarize(map, in.hosts);
  JUKE_RETURN_IF_ERROR(UpdateClusterStatus(cluster, summary, in));
  return UpdateNodeStatuses(in, map);
}

absl::Status Operator::RemoveHost(const std::string& host) {
  JUKE_ASSIGN_OR_RETURN(ClusterMap map, MapStore(etcd_.get()).Load());
  std::vector<std::string> disks;
  for (const MapDisk& d : map.disks()) {
    if (d.host_id == host) disks.push_back(d.disk_id);
  }
  for (const std::string& disk : disks) {
    absl::Status s = RemoveDisk(*etcd_, disk);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  JUKE_ASSIGN_OR_RETURN(bool deleted, etcd_->Delete(HostKey(host)));
  (void)deleted;
  JUKE_ASSIGN_OR_RETURN(ClusterMap after, RefreshMap(*etcd_));
  // The overrides of disks that left the map are moot now.
  for (const std::string& disk : disks) {
    if (after.FindDisk(disk) != nullptr) continue;
    JUKE_ASSIGN_OR_RETURN(bool gone, etcd_->Delete(DiskAdminKey(disk)));
    (void)gone;
  }
  JUKE_RETURN_IF_ERROR(DeleteMember(*etcd_, host));
  JUKE_LOG_INFO(Log(), "Host removed from the pool hostID={} disks={}", host,
                absl::StrJoin(disks, ","));
  return absl::OkStatus();
}

absl::Status Operator::UpdateClusterStatus(const Json& cluster,
                                           const PoolSummary& s,
                                           const MembershipInput& in) {
  const Json old = cluster.value("status", Json::object());
  const Json old_conditions = old.value("conditions", Json::array());
  int64_t generation = Generation(cluster);
  absl::Time now = absl::Now();
  std::vector<std::string> moving;
  for (const auto& [host, m] : in.members) {
    if (m.cluster == in.cluster.name && m.state != MemberState::kActive &&
        in.depended.count(host) > 0) {
      moving.push_back(host);
    }
  }
  bool serving = s.disks > s.disks_down;
  Json status = {
      {"observedGeneration", generation},
      {"mapEpoch", s.map_epoch},
      {"clusters", s.clusters.size()},
      {"hosts", s.hosts},
      {"hostsUp", s.hosts_up},
      {"capacityBytes", s.capacity_bytes},
      {"availableBytes", s.available_bytes},
      {"conditions",
       Json::array(
           {Condition(old_conditions, "Ready", serving,
                      serving ? "PoolServing" : "NoDiskUp",
                      absl::StrCat(s.hosts_up, " of ", s.hosts, " hosts up in ",
                                   s.clusters.size(), " clusters, map epoch ",
                                   s.map_epoch),
                      generation, now),
            Condition(
                old_conditions, "Degraded", s.disks_down > 0,
                s.disks_down > 0 ? "DisksDown" : "AllDisksUp",
                absl::StrCat(s.disks_down, " of ", s.disks, " disks down"),
                generation, now),
            Condition(old_conditions, "Progressing", !moving.empty(),
                      moving.empty() ? "Settled" : "DataMoving",
                      moving.empty()
                          ? std::string("no data to move")
                          : absl::StrCat("data moving off ",
                                         absl::StrJoin(moving, ", ")),
                      generation, now)})}};
  return WriteStatus(
      absl::StrCat(kJukeApi, "/jukeclusters/", MetadataString(cluster, "name")),
      cluster, status);
}

absl::Status Operator::UpdateNodeStatuses(const MembershipInput& in,
                                          const ClusterMap& map) {
  std::map<std::string, const NodeInfo*> nodes;
  for (const NodeInfo& n : in.nodes) nodes[n.name] = &n;
  absl::Time now = absl::Now();
  for (const auto& [key, jn] : juke_nodes_.Objects()) {
    const Json spec = jn.value("spec", Json::object());
    std::string node = spec.value("nodeName", "");
    bool draining = spec.value("draining", false);
    int disks = 0, disks_in = 0, disks_down = 0;
    for (const MapDisk& d : map.disks()) {
      if (d.host_id != node) continue;
      ++disks;
      if (d.in) ++disks_in;
      if (!d.up) ++disks_down;
    }
    // Listed disks that the node's daemon does not serve.
    std::vector<std::string> missing;
    if (std::optional<std::vector<MemberDisk>> listed = ListedDisks(spec)) {
      std::set<std::string> served;
      for (const HostStatus& h : in.hosts) {
        if (h.record.host_id != node) continue;
        for (const DiskRecord& d : h.record.disks) served.insert(d.path);
      }
      for (const MemberDisk& d : *listed) {
        if (served.count(d.path) == 0) missing.push_back(d.path);
      }
    }
    const bool degraded = disks_down > 0 || !missing.empty();
    auto n = nodes.find(node);
    bool ready =
        n != nodes.end() && n->second->ready && disks > 0 && disks_down == 0;
    std::string ready_reason = n == nodes.end()    ? "NodeMissing"
                               : !n->second->ready ? "NodeNotReady"
                               : disks == 0        ? "NoDisks"
                               : disks_down > 0    ? "DisksDown"
                                                   : "Serving";
    bool moving = in.depended.count(node) > 0;
    const Json old = jn.value("status", Json::object());
    const Json oc = old.value("conditions", Json::array());
    int64_t generation = Generation(jn);
    Json status = {
        {"observedGeneration", generation},
        {"disksIn", disks_in},
        {"conditions",
         Json::array(
             {Condition(oc, "Ready", ready, ready_reason,
                        absl::StrCat(disks, " disks in the map, ", disks_in,
                                     " in, ", disks_down, " down"),
                        generation, now),
              Condition(oc, "Progressing", draining && moving,
                        !draining ? "NotDraining"
                        : moving  ? "DataMoving"
                                  : "Drained",
                        !draining ? "not draining"
                        : moving  ? "data is moving to other hosts"
                                  : "no volume keeps data here",
                        generation, now),
              Condition(
                  oc, "Degraded", degraded,
                  disks_down > 0    ? "DisksDown"
                  : missing.empty() ? "AllDisksUp"
                                    : "DisksMissing",
                  missing.empty() || disks_down > 0
                      ? absl::StrCat(disks_down, " of ", disks, " disks down")
                      : absl::StrCat("the storage daemon serves no "
                                     "disk at ",
                                     absl::StrJoin(missing, ", ")),
                  generation, now)})}};
    JUKE_RETURN_IF_ERROR(WriteStatus(
        absl::StrCat(kJukeApi, "/jukenodes/", MetadataString(jn, "name")), jn,
        status));
  }
  return absl::OkStatus();
}

absl::Status Operator::WriteStatus(const std::string& path, const Json& object,
                                   const Json& status) {
  Json current = object;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (current.value("status", Json::object()) == status) {
      return absl::OkStatus();
    }
    Json updated = current;
    updated["status"] = status;
    absl::StatusOr<Json> put =
        client_->Replace(absl::StrCat(path, "/status"), updated);
    if (put.ok() || absl::IsNotFound(put.status())) return absl::OkStatus();
    if (!absl::IsAborted(put.status())) return put.status();
    // Someone else changed the object: read it again, keep their change.
    JUKE_ASSIGN_OR_RETURN(current, client_->Get(path));
  }
  return absl::AbortedError(
      absl::StrCat("update ", path, "/status: conflicts kept coming"));
}

void Operator::PostEvent(const PlannedEvent& e, const Json& cluster,
                         const std::map<std::string, NodeInfo>& nodes) {
  Json involved;
  auto n = e.node.empty() ? nodes.end() : nodes.find(e.node);
  if (n != nodes.end()) {
    involved = {{"apiVersion", "v1"},
                {"kind", "Node"},
                {"name", n->second.name},
                {"uid", n->second.uid}};
  } else {
    involved = {{"apiVersion", "juke.io/v1alpha1"},
                {"kind", "JukeCluster"},
                {"name", MetadataString(cluster, "name")},
                {"uid", MetadataString(cluster, "uid")}};
  }
  std::string now = KubeTime(absl::Now());
  Json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata",
                 {{"generateName",
                   absl::StrCat(involved["name"].get<std::string>(), ".")},
                  {"namespace", kEventNamespace}}},
                {"involvedObject", involved},
                {"reason", e.reason},
                {"message", e.message},
                {"type", e.warning ? "Warning" : "Normal"},
                {"source", {{"component", "juke-operator"}}},
                {"reportingComponent", "juke-operator"},
                {"reportingInstance", options_.identity},
                {"firstTimestamp", now},
                {"lastTimestamp", now},
                {"count", 1}};
  JUKE_LOG_INFO(Log(), "Event reason={} object={} message={}", e.reason,
                involved["name"].get<std::string>(), e.message);
  absl::StatusOr<Json> posted = client_->Create(
      absl::StrCat("/api/v1/namespaces/", kEventNamespace, "/events"), event);
  if (!posted.ok()) {
    JUKE_LOG_WARN(Log(), "Posting an event failed reason={} err={}", e.reason,
                  posted.status());
  }
}

}  // namespace juke
