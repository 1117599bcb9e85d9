#include "src/operator/membership.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace juke {
namespace {

const HostStatus* FindHost(const std::vector<HostStatus>& hosts,
                           const std::string& id) {
  for (const HostStatus& h : hosts) {
    if (h.record.host_id == id) return &h;
  }
  return nullptr;
}

// What the member record of `node` should say, leaving `reason` as it was
// when nothing changed.
MemberRecord Desired(const MembershipInput& in, const NodeInfo& node) {
  MemberRecord m;
  m.host_id = node.name;
  m.cluster = in.cluster.name;
  m.region = node.region.empty() ? in.cluster.default_region : node.region;
  m.zone = node.zone.empty() ? in.cluster.default_zone : node.zone;
  m.state = in.draining.count(node.name) > 0 ? MemberState::kDraining
                                             : MemberState::kActive;
  if (auto d = in.disks.find(node.name); d != in.disks.end()) {
    m.disks = d->second;
  }
  if (!node.ready) {
    auto since = in.not_ready_since.find(node.name);
    const absl::Duration not_ready = since == in.not_ready_since.end()
                                         ? absl::ZeroDuration()
                                         : in.now - since->second;
    m.down =
        since != in.not_ready_since.end() && not_ready >= in.not_ready_grace;
    if (m.down && m.state == MemberState::kActive &&
        in.down_out_after > absl::ZeroDuration() &&
        not_ready >= in.not_ready_grace + in.down_out_after) {
      m.state = MemberState::kDraining;
      m.reason = absl::StrCat(
          "Node NotReady for longer than ",
          absl::FormatDuration(in.not_ready_grace + in.down_out_after),
          "; its data is copied from other replicas");
      return m;
    }
  }
  if (m.down) {
    m.reason = "Node NotReady for longer than the grace period";
  } else if (m.state == MemberState::kDraining) {
    m.reason = "JukeNode says draining";
  }
  return m;
}

}  // namespace

MembershipPlan PlanMembership(const MembershipInput& in) {
  MembershipPlan plan;
  std::set<std::string> node_names;
  for (const NodeInfo& node : in.nodes) {
    node_names.insert(node.name);
    MemberRecord want = Desired(in, node);
    auto have = in.members.find(node.name);
    if (have == in.members.end()) {
      plan.put.push_back(want);
      plan.events.push_back(
          {node.name, "JoinedPool",
           absl::StrCat("host ", node.name, " joined the pool in cluster ",
                        want.cluster),
           false});
      continue;
    }
    const MemberRecord& old = have->second;
    if (old.cluster != want.cluster) {
      plan.events.push_back(
          {node.name, "HostNameTaken",
           absl::StrCat("host ", node.name, " is already a member of cluster ",
                        old.cluster,
                        "; rename the Node or remove it from that cluster"),
           true});
      continue;
    }
    if (old == want) continue;
    if (old.down != want.down) {
      plan.events.push_back(
          want.down
              ? PlannedEvent{node.name, "HostDown",
                             "Node NotReady past the grace period; its disks "
                             "are down and volumes are served from other "
                             "replicas",
                             true}
              : PlannedEvent{node.name, "HostUp", "Node Ready again", false});
    }
    if (old.disks != want.disks) {
      std::vector<std::string> paths;
      if (want.disks.has_value()) {
        for (const MemberDisk& d : *want.disks) paths.push_back(d.path);
      }
      plan.events.push_back(
          {node.name, "DisksChanged",
           want.disks.has_value()
               ? absl::StrCat(
                     "the node gives the disks its JukeNode lists: ",
                     paths.empty() ? "none" : absl::StrJoin(paths, ", "))
               : "the node gives every disk its storage daemon serves",
           false});
    }
    if (old.state != want.state && want.down &&
        want.state == MemberState::kDraining) {
      plan.events.push_back(
          {node.name, "DownOut",
           absl::StrCat(want.reason,
                        ": its disks are out of the pool until it is Ready"),
           true});
    } else if (old.state != want.state) {
      plan.events.push_back(
          want.state == MemberState::kDraining
              ? PlannedEvent{node.name, "Draining",
                             "disks out of the pool; their data moves to other "
                             "hosts",
                             false}
              : PlannedEvent{node.name, "Active", "disks back in the pool",
                             false});
    }
    plan.put.push_back(want);
  }

  for (const auto& [host, old] : in.members) {
    if (old.cluster != in.cluster.name || node_names.count(host) > 0) continue;
    if (old.state != MemberState::kLeaving) {
      MemberRecord leaving = old;
      leaving.state = MemberState::kLeaving;
      leaving.reason = "Node deleted";
      plan.put.push_back(leaving);
      plan.events.push_back(
          {"", "HostLeaving",
           absl::StrCat("Node ", host,
                        " was deleted; its disks are out and their data "
                        "moves to other hosts before it leaves the pool"),
           false});
      continue;
    }
    if (in.depended.count(host) > 0) continue;
    const HostStatus* status = FindHost(in.hosts, host);
    if (status != nullptr && status->up) continue;  // Its daemon still runs.
    plan.remove.push_back(host);
    plan.events.push_back({"", "HostRemoved",
                           absl::StrCat("host ", host,
                                        " left the pool: no volume depends on "
                                        "it any more"),
                           false});
  }
  return plan;
}

std::set<std::string> DependedHosts(const std::vector<ClusterMap>& pinned_maps,
                                    const std::vector<HostStatus>& hosts) {
  std::set<std::string> depended;
  for (const ClusterMap& map : pinned_maps) {
    for (const MapDisk& d : map.disks()) {
      if (d.in && d.weight > 0) depended.insert(d.host_id);
    }
  }
  for (const HostStatus& h : hosts) {
    if (!h.up) continue;
    for (const DiskRecord& d : h.record.disks) {
      if (d.chunk_count > 0) depended.insert(h.record.host_id);
    }
  }
  return depended;
}

PoolSummary Summarize(const ClusterMap& map,
                      const std::vector<HostStatus>& hosts) {
  PoolSummary s;
  s.map_epoch = map.epoch();
  std::set<std::string> all;
  std::set<std::string> up;
  for (const MapDisk& d : map.disks()) {
    s.clusters.insert(d.labels.cluster);
    all.insert(d.host_id);
    ++s.disks;
    if (d.up) {
      up.insert(d.host_id);
    } else {
      ++s.disks_down;
    }
    if (!d.in) ++s.disks_out;
  }
  s.hosts = static_cast<int>(all.size());
  s.hosts_up = static_cast<int>(up.size());
  DiskSpaceSum space;
  for (const HostStatus& h : hosts) {
    if (all.count(h.record.host_id) == 0) continue;
    for (const DiskRecord& d : h.record.disks) space.Add(d);
  }
  s.capacity_bytes = space.capacity_bytes();
  s.available_bytes = space.available_bytes();
  return s;
}

}  // namespace juke
