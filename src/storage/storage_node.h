#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/storage/chunk_store.h"
#include "src/storage/daemon_config.h"
#include "src/storage/file_system.h"

namespace juke::storage {

// What the node knows of one of its disks.
struct DiskInfo {
  std::string disk_id;  // from the disk's label; empty if it has none
  std::string path;
  enum class State { kHealthy, kDegraded, kFailed } state = State::kHealthy;
  std::string reason;  // why degraded or failed
  ChunkStoreStats stats;
};

absl::string_view DiskStateName(DiskInfo::State state);

// All the disks of one host, each a ChunkStore, behind one set of calls that
// name the disk. Fencing is per host: a volume's generation is raised on
// every disk at once, and a write is checked against the highest generation
// any disk of the host holds. Thread-safe.
class StorageNode {
 public:
  // Opens every disk in config.disks. A disk labelled for another host or
  // pool stops the start (FailedPrecondition: the configuration points at
  // the wrong disk). A disk that fails otherwise (I/O errors, a missing
  // label on a used directory) is kept as failed, with its reason, and the
  // node serves the others; when no disk opens, Open fails.
  static absl::StatusOr<std::unique_ptr<StorageNode>> Open(
      const DaemonConfig& config, FileSystem* fs);

  const std::string& host_id() const { return host_id_; }

  absl::StatusOr<uint64_t> Write(absl::string_view disk_id, const ChunkKey& key,
                                 uint64_t offset, std::span<const uint8_t> data,
                                 std::span<const uint32_t> checksums,
                                 uint64_t generation,
                                 std::optional<uint64_t> expected_version);
  absl::StatusOr<ReadResult> Read(absl::string_view disk_id,
                                  const ChunkKey& key, uint64_t offset,
                                  uint64_t length);
  absl::StatusOr<ReadResult> ReadChecksums(absl::string_view disk_id,
                                           const ChunkKey& key, uint64_t offset,
                                           uint64_t length);
  absl::Status Delete(absl::string_view disk_id, const ChunkKey& key,
                      uint64_t generation);
  absl::StatusOr<ListResult> List(absl::string_view disk_id,
                                  absl::string_view volume_id,
                                  uint32_t page_size,
                                  absl::string_view page_token);

  // Raises the volume's generation on every serving disk; returns the
  // highest generation the host now holds. Fails if any serving disk could
  // not record it, since a write to that disk could then slip through.
  absl::StatusOr<uint64_t> Fence(absl::string_view volume_id,
                                 uint64_t generation);

  // Takes snapshot `epoch` of the volume on every serving disk (see
  // ChunkStore::Snapshot); returns the chunks it holds on this host. Fails
  // if any serving disk could not take it; calling again finishes it.
  absl::StatusOr<uint64_t> Snapshot(absl::string_view volume_id, uint64_t epoch,
                                    uint64_t generation);
  // Drops snapshot `epoch` of the volume from every serving disk.
  absl::Status DeleteSnapshot(absl::string_view volume_id, uint64_t epoch);

  // A snapshot of every disk, failed ones included.
  std::vector<DiskInfo> Disks();

 private:
  struct Disk {
    std::string id;
    std::string path;
    std::unique_ptr<ChunkStore> store;  // null when failed at open
    std::string failure;
  };

  StorageNode(std::string host_id, std::vector<Disk> disks)
      : host_id_(std::move(host_id)), disks_(std::move(disks)) {}

  // The serving store for `disk_id`: NotFound for an unknown disk,
  // Unavailable for a failed one.
  absl::StatusOr<ChunkStore*> StoreFor(absl::string_view disk_id);
  // FailedPrecondition when `generation` is below the host's fence.
  absl::Status CheckFence(absl::string_view volume_id, uint64_t generation);

  const std::string host_id_;
  // Fixed after Open, so reads need no lock.
  const std::vector<Disk> disks_;
};

}  // namespace juke::storage
