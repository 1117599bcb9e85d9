#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

#include "src/storage/storage_node.h"

namespace juke::storage {

// The storage daemon's Prometheus metrics, all prefixed juke_storage_:
//   requests_total{method,code}            chunk service calls by result
//   request_duration_seconds{method}       their latency
//   written_bytes_total, read_bytes_total  payload bytes
//   checksum_failures_total                mismatches on the wire and disk
//   disk_{capacity,available,used}_bytes{disk}, disk_chunks{disk},
//   disk_up{disk}, disk_io_errors{disk}, disk_checksum_failures{disk}
//   recovery_pending_replicas              stale replicas on this host
//                                          after the last recovery pass
//   recovery_replicas_total, recovery_bytes_total
//                                          replicas brought current, bytes
// Thread-safe.
class StorageMetrics {
 public:
  explicit StorageMetrics(std::shared_ptr<prometheus::Registry> registry);

  const std::shared_ptr<prometheus::Registry>& registry() const {
    return registry_;
  }

  void RecordRequest(absl::string_view method, absl::string_view code,
                     absl::Duration latency);
  void AddWritten(uint64_t bytes) { written_.Increment(bytes); }
  void AddRead(uint64_t bytes) { read_.Increment(bytes); }
  void AddChecksumFailure() { checksum_failures_.Increment(); }
  // Refreshes the per-disk gauges from a snapshot of the node's disks.
  void UpdateDisks(const std::vector<DiskInfo>& disks);
  // After a recovery pass over this host's stale replicas.
  void RecordRecovery(uint64_t pending, uint64_t recovered, uint64_t bytes) {
    recovery_pending_.Set(static_cast<double>(pending));
    recovery_replicas_.Increment(static_cast<double>(recovered));
    recovery_bytes_.Increment(static_cast<double>(bytes));
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  prometheus::Counter& written_;
  prometheus::Counter& read_;
  prometheus::Counter& checksum_failures_;
  prometheus::Family<prometheus::Gauge>& disk_capacity_;
  prometheus::Family<prometheus::Gauge>& disk_available_;
  prometheus::Family<prometheus::Gauge>& disk_used_;
  prometheus::Family<prometheus::Gauge>& disk_chunks_;
  prometheus::Family<prometheus::Gauge>& disk_up_;
  prometheus::Family<prometheus::Gauge>& disk_io_errors_;
  prometheus::Family<prometheus::Gauge>& disk_checksum_failures_;
  prometheus::Gauge& recovery_pending_;
  prometheus::Counter& recovery_replicas_;
  prometheus::Counter& recovery_bytes_;
};

}  // namespace juke::storage
