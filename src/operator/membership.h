#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"

#include "src/model/cluster_map.h"
#include "src/model/host_registry.h"
#include "src/model/member.h"

// What the operator decides about pool membership, as pure functions of
// what it read from its Kubernetes cluster and from etcd, so that every
// rule can be tested without either (docs/operator.md):
//
// - every Node of the cluster is a member host of the pool, named like the
//   Node, in the cluster's failure domain, with its Node's
//   topology.kubernetes.io/region and zone (or the cluster's defaults);
// - a Node NotReady for the grace period is marked down; still NotReady
//   `down_out_after` later, its disks go out too, so that its data is copied
//   again from the other replicas (it comes back in once Ready);
// - a Node whose JukeNode says draining is draining: its disks go out and
//   their data moves away;
// - a Node whose JukeNode lists disks gives those: the member record
//   carries the list, and the daemon's disks at other paths go out;
// - a member of this cluster whose Node is gone is leaving: its disks go
//   out, and once no volume depends on them and its daemon has stopped, the
//   host is removed from the pool;
// - members of other clusters are never touched; a Node named like a host
//   of another cluster is refused.

namespace juke {

struct NodeInfo {
  std::string name;
  std::string uid;
  bool ready = false;
  // When its Ready condition last changed, as the Node says; InfinitePast
  // when it does not say.
  absl::Time ready_changed = absl::InfinitePast();
  std::string region;  // topology.kubernetes.io/region, if labelled.
  std::string zone;    // topology.kubernetes.io/zone, if labelled.
};

struct ClusterInfo {
  std::string name;  // The failure domain of its hosts.
  std::string default_region;
  std::string default_zone;
};

// An event for an admin to see, on the Node (or, once the Node is gone,
// on the JukeCluster).
struct PlannedEvent {
  std::string node;  // Empty: on the JukeCluster.
  std::string reason;
  std::string message;
  bool warning = false;
  bool operator==(const PlannedEvent&) const = default;
};

struct MembershipPlan {
  std::vector<MemberRecord> put;    // Records to write: new or changed.
  std::vector<std::string> remove;  // Hosts to remove from the pool.
  std::vector<PlannedEvent> events;
};

struct MembershipInput {
  ClusterInfo cluster;
  std::vector<NodeInfo> nodes;
  // Node names whose JukeNode says draining.
  std::set<std::string> draining;
  // The disks each JukeNode that lists disks gives, by node name.
  std::map<std::string, std::vector<MemberDisk>> disks;
  // Since when each NotReady Node has been seen NotReady.
  std::map<std::string, absl::Time> not_ready_since;
  absl::Time now;
  absl::Duration not_ready_grace;
  // How long after being marked down a NotReady Node's disks go out; 0:
  // never (they go out only when the Node drains or is deleted).
  absl::Duration down_out_after = absl::ZeroDuration();
  // The pool as etcd holds it.
  Members members;
  std::vector<HostStatus> hosts;
  // Hosts some volume may still hold data on (DependedHosts()).
  std::set<std::string> depended;
};

MembershipPlan PlanMembership(const MembershipInput& in);

// The hosts that some volume may still keep data on: those with a disk
// that is in, with a weight above 0, in the map of an epoch some volume is
// pinned to (`pinned_maps`), and those whose live daemon still reports
// chunks on a disk.
std::set<std::string> DependedHosts(const std::vector<ClusterMap>& pinned_maps,
                                    const std::vector<HostStatus>& hosts);

// The whole pool at a glance, for the custom resources' status.
struct PoolSummary {
  uint64_t map_epoch = 0;
  std::set<std::string> clusters;
  int hosts = 0;
  int hosts_up = 0;
  int disks = 0;
  int disks_down = 0;
  int disks_out = 0;
  uint64_t capacity_bytes = 0;
  uint64_t available_bytes = 0;
};

PoolSummary Summarize(const ClusterMap& map,
                      const std::vector<HostStatus>& hosts);

}  // namespace juke
