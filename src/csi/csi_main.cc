// juke-csi: the Juke CSI driver. Serves the CSI identity service and the
// controller, the node plugin, or both, on a unix socket.

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"

#include "src/common/etcd_client.h"
#include "src/common/flags_usage.h"
#include "src/common/logging.h"
#include "src/common/signals.h"
#include "src/csi/call_log.h"
#include "src/csi/controller_service.h"
#include "src/csi/identity_service.h"
#include "src/csi/node_service.h"
#include "src/volume/chunk_clients.h"

ABSL_FLAG(std::string, endpoint, "unix:///run/juke/csi.sock",
          "Where to serve CSI: unix:///path/to/socket.");
ABSL_FLAG(std::string, mode, "all",
          "What to serve besides identity: controller, node, or all.");
ABSL_FLAG(std::string, node_id, "",
          "This node's id (node and all modes): the Kubernetes node name, "
          "under which volumes are published to it.");
ABSL_FLAG(std::vector<std::string>, etcd, {"127.0.0.1:2379"},
          "Comma-separated etcd endpoints holding the pool's metadata.");
ABSL_FLAG(std::string, state_dir, "/var/lib/juke-csi",
          "Node plugin: where it keeps what it staged and published, and "
          "the FUSE directories of attached volumes.");
ABSL_FLAG(std::string, region, "", "Node topology: region.");
ABSL_FLAG(std::string, zone, "", "Node topology: zone.");
ABSL_FLAG(std::string, cluster, "", "Node topology: Kubernetes cluster.");
ABSL_FLAG(std::string, log_levels, "info",
          "Log levels: a default, then COMPONENT=LEVEL overrides, e.g. "
          "info,csi=debug (debug logs every request, secrets stripped).");

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "juke-csi: %s (see --help)\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  juke::BlockTerminationSignals();
  juke::SetFlagsUsage(
      "the Juke CSI driver: volumes from the Juke pool for Kubernetes.\n"
      "\n"
      "  juke-csi --mode=controller --endpoint=unix:///csi/csi.sock \\\n"
      "      --etcd=10.0.0.1:2379\n"
      "  juke-csi --mode=node --node_id=$(NODE_NAME) \\\n"
      "      --endpoint=unix:///csi/csi.sock --etcd=10.0.0.1:2379\n"
      "\n"
      "docs/csi.md describes what it offers. SIGTERM stops it.");
  if (absl::Status s = juke::ParseFlags(argc, argv); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (absl::Status s = juke::SetLogLevels(absl::GetFlag(FLAGS_log_levels));
      !s.ok()) {
    return Usage(std::string("--log_levels: ") + std::string(s.message()));
  }
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "controller" && mode != "node" && mode != "all") {
    return Usage("--mode must be controller, node or all, not '" + mode + "'");
  }
  const bool controller = mode != "node";
  const bool node = mode != "controller";
  const std::string node_id = absl::GetFlag(FLAGS_node_id);
  if (node && node_id.empty()) return Usage("--node_id is required");
  const std::string endpoint = absl::GetFlag(FLAGS_endpoint);
  if (!absl::StartsWith(endpoint, "unix:///")) {
    return Usage("--endpoint must be unix:///absolute/path, not '" + endpoint +
                 "'");
  }
  const std::string socket = endpoint.substr(std::string("unix://").size());

  auto etcd =
      juke::EtcdClient::Create(absl::StrJoin(absl::GetFlag(FLAGS_etcd), ","));
  if (!etcd.ok()) return Usage("--etcd: " + etcd.status().ToString());
  juke::ChunkClientPool clients;

  juke::csi::IdentityService identity(etcd->get(), controller);
  std::unique_ptr<juke::csi::ControllerService> controller_service;
  std::unique_ptr<juke::csi::NodeService> node_service;
  if (controller) {
    controller_service =
        std::make_unique<juke::csi::ControllerService>(etcd->get(), &clients);
  }
  if (node) {
    juke::csi::NodeServiceOptions o;
    o.node_id = node_id;
    o.topology = {absl::GetFlag(FLAGS_region), absl::GetFlag(FLAGS_zone),
                  absl::GetFlag(FLAGS_cluster), node_id};
    o.state_dir = absl::GetFlag(FLAGS_state_dir);
    node_service = std::make_unique<juke::csi::NodeService>(
        etcd->get(), &clients, std::move(o));
    if (absl::Status s = node_service->Start(); !s.ok()) {
      std::fprintf(stderr, "juke-csi: cannot start the node plugin: %s\n",
                   s.ToString().c_str());
      return 1;
    }
  }

  // A socket left by an earlier run would stop the bind.
  unlink(socket.c_str());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(endpoint, grpc::InsecureServerCredentials());
  builder.RegisterService(&identity);
  if (controller_service != nullptr) {
    builder.RegisterService(controller_service.get());
  }
  if (node_service != nullptr) builder.RegisterService(node_service.get());
  builder.experimental().SetInterceptorCreators(
      juke::csi::CallLogInterceptors());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::fprintf(stderr, "juke-csi: cannot serve on %s\n", endpoint.c_str());
    return 1;
  }
  juke::Logger log = juke::GetLogger("csi");
  JUKE_LOG_INFO(log, "Serving CSI endpoint={} mode={} nodeID={}", endpoint,
                mode, node_id);
  int sig = juke::WaitForTerminationSignal();
  JUKE_LOG_INFO(log, "Signal received, shutting down signal={}", sig);
  server->Shutdown();
  if (node_service != nullptr) node_service->Shutdown();
  unlink(socket.c_str());
  return 0;
}
