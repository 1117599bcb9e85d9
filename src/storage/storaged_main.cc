// juke-storaged: the storage daemon. Owns this host's disks, stores chunks
// on them and serves them to the pool over gRPC.

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"

#include "src/common/flags_usage.h"
#include "src/common/logging.h"
#include "src/common/signals.h"
#include "src/storage/daemon_config.h"
#include "src/storage/storage_daemon.h"

ABSL_FLAG(std::string, host_id, "", "This host's name in the pool (required).");
ABSL_FLAG(std::string, pool_id, "default",
          "The pool this host belongs to; disks labelled for another pool "
          "are refused.");
ABSL_FLAG(std::string, region, "", "Failure-domain label: region.");
ABSL_FLAG(std::string, zone, "", "Failure-domain label: zone.");
ABSL_FLAG(std::string, cluster, "",
          "Failure-domain label: the Kubernetes cluster of this host.");
ABSL_FLAG(std::vector<std::string>, disks, {},
          "Comma-separated absolute paths of the disk directories this "
          "daemon owns (required). A blank directory is labelled as a new "
          "disk; a labelled one keeps its identity.");
ABSL_FLAG(std::string, listen, "127.0.0.1:7420",
          "HOST:PORT for the chunk service; port 0 picks a free port.");
ABSL_FLAG(std::string, advertise, "",
          "HOST:PORT other hosts dial; defaults to the listen address.");
ABSL_FLAG(std::vector<std::string>, etcd, {"127.0.0.1:2379"},
          "Comma-separated etcd endpoints holding the pool's metadata.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:7421",
          "HOST:PORT for Prometheus /metrics; empty disables.");
ABSL_FLAG(int, lease_ttl, 10,
          "Seconds after the daemon's death that the pool marks the host "
          "down.");
ABSL_FLAG(std::string, ready_file, "",
          "Write a JSON file with the bound addresses once serving.");
ABSL_FLAG(int, recovery_interval, 5,
          "Seconds between passes that bring this host's stale replicas up "
          "to date (for volumes no writer holds; a writer recovers its own). "
          "0 turns it off.");
ABSL_FLAG(uint64_t, recovery_rate_mib, 64,
          "Most MiB per second recovery copies onto this host, so clients "
          "keep most of the disks; 0 is no limit.");
ABSL_FLAG(std::string, log_levels, "info",
          "Log levels: a default, then COMPONENT=LEVEL overrides, e.g. "
          "info,storage=debug,chunk-service=debug.");

namespace {

juke::storage::DaemonConfig ConfigFromFlags() {
  juke::storage::DaemonConfig c;
  c.host_id = absl::GetFlag(FLAGS_host_id);
  c.pool_id = absl::GetFlag(FLAGS_pool_id);
  c.region = absl::GetFlag(FLAGS_region);
  c.zone = absl::GetFlag(FLAGS_zone);
  c.cluster = absl::GetFlag(FLAGS_cluster);
  c.disks = absl::GetFlag(FLAGS_disks);
  c.listen = absl::GetFlag(FLAGS_listen);
  c.advertise = absl::GetFlag(FLAGS_advertise);
  c.etcd_endpoints = absl::GetFlag(FLAGS_etcd);
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  c.lease_ttl_seconds = absl::GetFlag(FLAGS_lease_ttl);
  c.ready_file = absl::GetFlag(FLAGS_ready_file);
  c.recovery_interval_seconds = absl::GetFlag(FLAGS_recovery_interval);
  c.recovery_mib_per_second = absl::GetFlag(FLAGS_recovery_rate_mib);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  juke::BlockTerminationSignals();
  juke::SetFlagsUsage(
      "the Juke storage daemon: pools this host's disks into the Juke pool.\n"
      "\n"
      "  juke-storaged --host_id=node-1 --disks=/srv/juke/d0,/srv/juke/d1 \\\n"
      "      --etcd=127.0.0.1:2379 --listen=0.0.0.0:7420\n"
      "\n"
      "Flags may also come from a file: --flagfile=/etc/juke/storaged.flags,\n"
      "one --flag=value per line. SIGTERM stops the daemon gracefully.");
  if (absl::Status s = juke::ParseFlags(argc, argv); !s.ok()) {
    std::fprintf(stderr, "juke-storaged: %s (see --help)\n",
                 std::string(s.message()).c_str());
    return 2;
  }
  if (absl::Status s = juke::SetLogLevels(absl::GetFlag(FLAGS_log_levels));
      !s.ok()) {
    std::fprintf(stderr, "juke-storaged: --log_levels: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }

  juke::storage::DaemonConfig config = ConfigFromFlags();
  if (absl::Status s = juke::storage::ValidateConfig(config); !s.ok()) {
    std::fprintf(stderr, "juke-storaged: bad configuration: %s\n",
                 std::string(s.message()).c_str());
    return 2;
  }

  auto daemon = juke::storage::StorageDaemon::Start(config);
  if (!daemon.ok()) {
    std::fprintf(stderr, "juke-storaged: cannot start: %s\n",
                 daemon.status().ToString().c_str());
    return 1;
  }
  int sig = juke::WaitForTerminationSignal();
  JUKE_LOG_INFO(juke::GetLogger("storaged"),
                "Signal received, shutting down signal={}", sig);
  (*daemon)->Shutdown();
  return 0;
}
