#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace juke::storage {

// Everything a storage daemon is told at start, from flags or a flag file.
struct DaemonConfig {
  std::string host_id;
  std::string pool_id = "default";
  // Failure-domain labels of this host.
  std::string region;
  std::string zone;
  std::string cluster;
  // Directories, one per disk this daemon owns.
  std::vector<std::string> disks;
  // Where the chunk service listens; port 0 picks a free port.
  std::string listen = "127.0.0.1:7420";
  // The address peers should dial; empty means the bound listen address.
  std::string advertise;
  // etcd endpoints, HOST:PORT each.
  std::vector<std::string> etcd_endpoints;
  // Prometheus /metrics; empty disables.
  std::string metrics_listen = "127.0.0.1:7421";
  int lease_ttl_seconds = 10;
  // When set, a small JSON file written once serving, with the bound
  // addresses; scripts and tests wait for it.
  std::string ready_file;
  uint64_t max_chunk_size = 64ull << 20;
  // How often the daemon looks for stale replicas on its disks of volumes
  // no writer holds, and brings them up to date; 0 turns that off.
  int recovery_interval_seconds = 5;
  // The most recovery copies onto this host per second, in MiB; 0 is no
  // limit.
  uint64_t recovery_mib_per_second = 64;
};

// Checks a configuration before anything acts on it. The error says what is
// wrong and how to fix it, naming the flag. Checks the disk directories
// exist; does not open them.
absl::Status ValidateConfig(const DaemonConfig& config);

// True for names Juke accepts as host, pool and label values: 1 to 63
// characters of [A-Za-z0-9._-], starting with a letter or digit.
bool IsValidName(const std::string& name);

}  // namespace juke::storage
