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
};

}  // namespace juke::storage
