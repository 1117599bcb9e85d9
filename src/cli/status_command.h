#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"

#include "src/model/cluster_map.h"
#include "src/model/host_registry.h"

// `juke status`: the pool as etcd knows it. Every host, up or down, with
// its address and labels, each disk with its state, capacity, use and
// chunk count, and totals; as an aligned table for people or as JSON
// (--output=json) for scripts.
namespace juke::cli {

struct StatusOptions {
  std::string etcd_endpoints;
  bool json = false;
  absl::Duration timeout = absl::Seconds(5);
};

// Reads the pool and prints it to `out`. Returns the exit code: 0; 1 after
// a message on `err` when etcd cannot be read; 2 for malformed endpoints.
int RunStatus(const StatusOptions& options, std::ostream& out,
              std::ostream& err);

// The human-readable report for `hosts`, grouped by pool and sorted by
// host id.
// A disk an admin took out (`juke disk out`) shows as "<state>,out".
std::string FormatStatusText(std::vector<HostStatus> hosts,
                             const DiskOverrides& overrides = {});

// The machine-readable report: {"hosts": [...], "totals": {...}}, each
// host being its stored record plus "up" (and "error" when unreadable).
std::string FormatStatusJson(std::vector<HostStatus> hosts);

// 1536 -> "1.5 KiB"; below 1 KiB in bytes ("512 B").
std::string HumanBytes(uint64_t bytes);

}  // namespace juke::cli
