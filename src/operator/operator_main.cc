// juke-operator: keeps one Kubernetes cluster's part of the Juke pool's
// membership in etcd in step with its Nodes and custom resources.

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "src/common/flags_usage.h"
#include "src/common/logging.h"
#include "src/common/signals.h"
#include "src/kube/kube_client.h"
#include "src/kube/kube_config.h"
#include "src/operator/operator.h"

ABSL_FLAG(std::string, kubeconfig, "",
          "Kubeconfig file; empty: $KUBECONFIG, then the pod's service "
          "account, then ~/.kube/config.");
ABSL_FLAG(std::string, context, "", "Kubeconfig context; empty: current.");
ABSL_FLAG(std::string, cluster_resource, "juke",
          "Name of the JukeCluster that says which pool this cluster joins.");
ABSL_FLAG(std::vector<std::string>, etcd, {},
          "etcd endpoints of the pool's metadata; empty: the JukeCluster's "
          "spec.etcdEndpoints.");
ABSL_FLAG(std::string, namespace, "",
          "Namespace of the leader-election Lease and of the events; empty: "
          "the pod's (or the kubeconfig context's) namespace.");
ABSL_FLAG(std::string, lease_name, "juke-operator",
          "Name of the leader-election Lease.");
ABSL_FLAG(std::string, identity, "",
          "This replica's name in the Lease; empty: hostname_pid.");
ABSL_FLAG(absl::Duration, lease_duration, absl::Seconds(15),
          "How long a leader's Lease lasts without renewal before another "
          "replica may take over.");
ABSL_FLAG(absl::Duration, renew_deadline, absl::Seconds(10),
          "A leader that could not renew for this long stops acting.");
ABSL_FLAG(absl::Duration, retry_period, absl::Seconds(2),
          "How often the Lease is renewed or tried.");
ABSL_FLAG(absl::Duration, not_ready_grace, absl::Minutes(2),
          "How long a Node may stay NotReady before its host is marked down "
          "and volumes stop using it.");
ABSL_FLAG(absl::Duration, down_out_after, absl::Minutes(30),
          "How long a host may stay down (its Node NotReady past "
          "--not_ready_grace) before its disks go out of the pool and its "
          "data is copied again from the other replicas; 0 never takes them "
          "out. They come back in when the Node is Ready.");
ABSL_FLAG(absl::Duration, resync, absl::Seconds(10),
          "How often to reconcile without a change in Kubernetes (the pool "
          "changes in etcd too).");
ABSL_FLAG(absl::Duration, watch_timeout, absl::Minutes(5),
          "How long each watch request lasts before it is renewed.");
ABSL_FLAG(std::string, log_levels, "info",
          "Log levels: a default, then COMPONENT=LEVEL overrides, e.g. "
          "info,operator=debug,kube=debug.");

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "juke-operator: %s (see --help)\n", message.c_str());
  return 2;
}

std::string DefaultIdentity() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return absl::StrCat(host, "_", getpid());
}

}  // namespace

int main(int argc, char** argv) {
  juke::BlockTerminationSignals();
  juke::SetFlagsUsage(
      "the Juke operator: makes one Kubernetes cluster's Nodes members of "
      "the Juke pool.\n"
      "\n"
      "  juke-operator --cluster_resource=juke --namespace=juke-system\n"
      "\n"
      "Every Node becomes a host of the pool in this cluster's failure "
      "domain;\na Node NotReady past --not_ready_grace is marked down, and "
      "past\n--down_out_after too its data is copied elsewhere; a JukeNode "
      "with\nspec.draining moves its node's data away; a deleted "
      "Node leaves the pool\nonce no volume depends on it. Replicas elect a "
      "leader with a Lease.\ndocs/operator.md has the details. SIGTERM stops "
      "it.");
  if (absl::Status s = juke::ParseFlags(argc, argv); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (absl::Status s = juke::SetLogLevels(absl::GetFlag(FLAGS_log_levels));
      !s.ok()) {
    return Usage(std::string("--log_levels: ") + std::string(s.message()));
  }
  absl::StatusOr<juke::KubeConfig> config = juke::FindKubeConfig(
      absl::GetFlag(FLAGS_kubeconfig), absl::GetFlag(FLAGS_context));
  if (!config.ok()) return Usage(config.status().ToString());
  auto client = juke::KubeClient::Create(*config);
  if (!client.ok()) return Usage(client.status().ToString());

  juke::OperatorOptions o;
  o.cluster_resource = absl::GetFlag(FLAGS_cluster_resource);
  o.etcd_endpoints = absl::StrJoin(absl::GetFlag(FLAGS_etcd), ",");
  o.lease_namespace = absl::GetFlag(FLAGS_namespace);
  if (o.lease_namespace.empty()) o.lease_namespace = config->default_namespace;
  o.lease_name = absl::GetFlag(FLAGS_lease_name);
  o.identity = absl::GetFlag(FLAGS_identity);
  if (o.identity.empty()) o.identity = DefaultIdentity();
  o.lease.lease_duration = absl::GetFlag(FLAGS_lease_duration);
  o.lease.renew_deadline = absl::GetFlag(FLAGS_renew_deadline);
  o.lease.retry_period = absl::GetFlag(FLAGS_retry_period);
  o.not_ready_grace = absl::GetFlag(FLAGS_not_ready_grace);
  o.down_out_after = absl::GetFlag(FLAGS_down_out_after);
  o.resync = absl::GetFlag(FLAGS_resync);
  o.watch_timeout = absl::GetFlag(FLAGS_watch_timeout);
  if (o.lease.renew_deadline >= o.lease.lease_duration ||
      o.lease.retry_period >= o.lease.renew_deadline ||
      o.lease.retry_period <= absl::ZeroDuration()) {
    return Usage(
        "need 0 < --retry_period < --renew_deadline < --lease_duration");
  }
  if (o.resync <= absl::ZeroDuration() || o.watch_timeout < absl::Seconds(1) ||
      o.not_ready_grace < absl::ZeroDuration() ||
      o.down_out_after < absl::ZeroDuration()) {
    return Usage(
        "--resync must be positive, --watch_timeout at least 1s, and "
        "--not_ready_grace and --down_out_after not negative");
  }

  juke::Logger log = juke::GetLogger("operator");
  JUKE_LOG_INFO(log,
                "Starting server={} clusterResource={} identity={} "
                "namespace={}",
                config->server, o.cluster_resource, o.identity,
                o.lease_namespace);
  juke::Operator op(client->get(), o);
  std::atomic<bool> stop{false};
  std::thread runner([&] { op.Run(&stop); });
  int sig = juke::WaitForTerminationSignal();
  JUKE_LOG_INFO(log, "Signal received, shutting down signal={}", sig);
  stop = true;
  runner.join();
  return 0;
}
