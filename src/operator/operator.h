#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

#include "src/common/etcd_client.h"
#include "src/kube/kube_client.h"
#include "src/kube/leader_election.h"
#include "src/kube/reflector.h"
#include "src/operator/membership.h"

// The Juke operator of one Kubernetes cluster (docs/operator.md). It
// watches the cluster's Nodes, JukeNodes and its JukeCluster, and keeps
// this cluster's part of the pool's membership in etcd to match
// (membership.h), publishes the map, and writes the whole pool's state
// into the status of the custom resources, with events for what an admin
// should see. Of several replicas in one cluster, the one holding the
// Lease acts; the others watch and wait.
//
//   Operator op(client.get(), options);
//   op.Run(&stop);  // Until stop is set.

namespace juke {

struct OperatorOptions {
  // The JukeCluster that says which pool this cluster belongs to.
  std::string cluster_resource = "juke";
  // etcd endpoints; empty: the JukeCluster's spec.etcdEndpoints.
  std::string etcd_endpoints;
  // Where the Lease and the events go.
  std::string lease_namespace = "default";
  std::string lease_name = "juke-operator";
  std::string identity;
  LeaseLock::Options lease;
  absl::Duration not_ready_grace = absl::Minutes(2);
  // How long a Node may stay down before its disks go out (0: never).
  absl::Duration down_out_after = absl::Minutes(30);
  // How often to reconcile without a change in Kubernetes: the pool in
  // etcd changes too (hosts, data moving away).
  absl::Duration resync = absl::Seconds(10);
  absl::Duration watch_timeout = absl::Minutes(5);
};

class Operator {
 public:
  Operator(KubeClient* client, OperatorOptions options);

  // Watches and reconciles until `*stop` is set, then gives the Lease up.
  void Run(const std::atomic<bool>* stop);

 private:
  using Json = nlohmann::json;

  // One pass, as the leader: membership, map, status, events.
  absl::Status Reconcile();
  // Connects to the endpoints, reusing the client while they stay.
  absl::Status ConnectEtcd(const std::string& endpoints);
  void TrackReadiness(const std::vector<NodeInfo>& nodes, absl::Time now);
  absl::Status RemoveHost(const std::string& host);
  absl::Status UpdateClusterStatus(const Json& cluster,
                                   const PoolSummary& summary,
                                   const MembershipInput& in);
  absl::Status UpdateNodeStatuses(const MembershipInput& in,
                                  const ClusterMap& map);
  // Writes `status` into the object at `path` unless it already has it,
  // conditional on the object's resourceVersion; re-reads and retries on
  // a conflict.
  absl::Status WriteStatus(const std::string& path, const Json& object,
                           const Json& status);
  void PostEvent(const PlannedEvent& event, const Json& cluster,
                 const std::map<std::string, NodeInfo>& nodes);
  void Changed();

  KubeClient* const client_;
  const OperatorOptions options_;
  LeaseLock lease_;
  Reflector nodes_;
  Reflector juke_nodes_;
  Reflector juke_clusters_;

  std::string etcd_endpoints_;
  std::unique_ptr<EtcdClient> etcd_;
  std::map<std::string, absl::Time> not_ready_since_;

  absl::Mutex mu_;
  bool changed_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace juke
