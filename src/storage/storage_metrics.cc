#include "src/storage/storage_metrics.h"

#include <string>

namespace juke::storage {
namespace {

prometheus::Family<prometheus::Gauge>& DiskGauge(prometheus::Registry& r,
                                                 const std::string& name,
                                                 const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

// Latency buckets from 100 us to 10 s: local disk writes sit at the low
// end, replicated writes over a slow network at the high one.
prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};
}

}  // namespace

StorageMetrics::StorageMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)),
      requests_(prometheus::BuildCounter()
                    .Name("juke_storage_requests_total")
                    .Help("Chunk service calls by method and result code")
                    .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("juke_storage_request_duration_seconds")
                     .Help("Chunk service call latency")
                     .Register(*registry_)),
      written_(prometheus::BuildCounter()
                   .Name("juke_storage_written_bytes_total")
                   .Help("Chunk bytes written")
                   .Register(*registry_)
                   .Add({})),
      read_(prometheus::BuildCounter()
                .Name("juke_storage_read_bytes_total")
                .Help("Chunk bytes read")
                .Register(*registry_)
                .Add({})),
      checksum_failures_(
          prometheus::BuildCounter()
              .Name("juke_storage_checksum_failures_total")
              .Help("Blocks whose checksum did not match, on the wire or disk")
              .Register(*registry_)
              .Add({})),
      disk_capacity_(DiskGauge(*registry_, "juke_storage_disk_capacity_bytes",
                               "Size of the file system holding the disk")),
      disk_available_(DiskGauge(*registry_, "juke_storage_disk_available_bytes",
                                "Free bytes on the disk")),
      disk_used_(DiskGauge(*registry_, "juke_storage_disk_used_bytes",
                           "Bytes of chunk data on the disk")),
      disk_chunks_(DiskGauge(*registry_, "juke_storage_disk_chunks",
                             "Chunks stored on the disk")),
      disk_up_(DiskGauge(*registry_, "juke_storage_disk_up",
                         "1 when the disk serves, 0 when it has failed")),
      disk_io_errors_(DiskGauge(*registry_, "juke_storage_disk_io_errors",
                                "I/O errors on the disk since start")),
      disk_checksum_failures_(
          DiskGauge(*registry_, "juke_storage_disk_checksum_failures",
                    "Checksum mismatches read from the disk since start")),
      recovery_pending_(prometheus::BuildGauge()
                            .Name("juke_storage_recovery_pending_replicas")
                            .Help("Stale replicas on this host's disks after "
                                  "the last recovery pass")
                            .Register(*registry_)
                            .Add({})),
      recovery_replicas_(prometheus::BuildCounter()
                             .Name("juke_storage_recovery_replicas_total")
                             .Help("Stale replicas brought up to date")
                             .Register(*registry_)
                             .Add({})),
      recovery_bytes_(prometheus::BuildCounter()
                          .Name("juke_storage_recovery_bytes_total")
                          .Help("Bytes copied onto this host by recovery")
                          .Register(*registry_)
                          .Add({})) {}

void StorageMetrics::RecordRequest(absl::string_view method,
                                   absl::string_view code,
                                   absl::Duration latency) {
  std::string m(method);
  requests_.Add({{"method", m}, {"code", std::string(code)}}).Increment();
  durations_.Add({{"method", m}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void StorageMetrics::UpdateDisks(const std::vector<DiskInfo>& disks) {
  for (const DiskInfo& d : disks) {
    prometheus::Labels labels = {{"disk", d.disk_id}, {"path", d.path}};
    const ChunkStoreStats& s = d.stats;
    disk_capacity_.Add(labels).Set(static_cast<double>(s.capacity_bytes));
    disk_available_.Add(labels).Set(static_cast<double>(s.available_bytes));
    disk_used_.Add(labels).Set(static_cast<double>(s.used_bytes));
    disk_chunks_.Add(labels).Set(static_cast<double>(s.chunk_count));
    disk_io_errors_.Add(labels).Set(static_cast<double>(s.io_errors));
    disk_checksum_failures_.Add(labels).Set(
        static_cast<double>(s.checksum_failures));
    disk_up_.Add(labels).Set(d.state == DiskInfo::State::kFailed ? 0 : 1);
  }
}

}  // namespace juke::storage
