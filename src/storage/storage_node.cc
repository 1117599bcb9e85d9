#include "src/storage/storage_node.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/storage/disk_label.h"

namespace juke::storage {
namespace {

Logger Log() {
  static const Logger log = GetLogger("storage");
  return log;
}

// A new disk's id: the host's name and 8 random hex digits, unique enough
// to tell disks apart and readable in status output.
std::string NewDiskId(const std::string& host_id) {
  absl::BitGen gen;
  return absl::StrFormat("%s.%08x", host_id, absl::Uniform<uint32_t>(gen));
}

// The identity a disk directory's label records, or nullopt for a
// directory without a label.
absl::StatusOr<std::optional<DiskIdentity>> ReadDiskLabel(
    FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::string> text =
      fs->ReadFile(absl::StrCat(dir, "/", kDiskLabelFileName));
  if (absl::IsNotFound(text.status())) return std::nullopt;
  if (!text.ok()) return text.status();
  JUKE_ASSIGN_OR_RETURN(DiskLabel label, DecodeDiskLabel(*text));
  return label.identity;
}

}  // namespace

absl::string_view DiskStateName(DiskInfo::State state) {
  switch (state) {
    case DiskInfo::State::kHealthy:
      return "healthy";
    case DiskInfo::State::kDegraded:
      return "degraded";
    case DiskInfo::State::kFailed:
      return "failed";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<StorageNode>> StorageNode::Open(
    const DaemonConfig& config, FileSystem* fs) {
  std::vector<Disk> disks;
  int serving = 0;
  for (const std::string& path : config.disks) {
    Disk disk;
    disk.path = path;

    // A labelled disk keeps its id; a blank one gets a new id when the
    // store labels it.
    absl::StatusOr<std::optional<DiskIdentity>> label = ReadDiskLabel(fs, path);
    if (!label.ok()) {
      disk.failure = std::string(label.status().message());
      JUKE_LOG_ERROR(Log(), "Disk failed path={} err={}", path, label.status());
      disks.push_back(std::move(disk));
      continue;
    }
    disk.id =
        label->has_value() ? (*label)->disk_id : NewDiskId(config.host_id);

    ChunkStoreOptions options;
    options.path = path;
    options.identity = {config.pool_id, config.host_id, disk.id};
    options.create_if_missing = true;
    options.max_chunk_size = config.max_chunk_size;
    options.fs = fs;
    absl::StatusOr<std::unique_ptr<ChunkStore>> store =
        ChunkStore::Open(options);
    if (!store.ok()) {
      // A label naming another host or pool means the configuration points
      // at the wrong disk: serving around it would hide the mistake.
      if (label->has_value() && absl::IsFailedPrecondition(store.status())) {
        return Annotate(store.status(), absl::StrCat("disk ", path));
      }
      disk.failure = std::string(store.status().message());
      JUKE_LOG_ERROR(Log(), "Disk failed path={} diskID={} err={}", path,
                     disk.id, store.status());
      disks.push_back(std::move(disk));
      continue;
    }
    disk.store = std::move(*store);
    JUKE_LOG_INFO(Log(), "Disk opened path={} diskID={} new={}", path, disk.id,
                  !label->has_value());
    ++serving;
    disks.push_back(std::move(disk));
  }

  if (serving == 0) {
    std::string reasons;
    for (const Disk& d : disks) {
      absl::StrAppend(&reasons, "\n  ", d.path, ": ", d.failure);
    }
    return absl::FailedPreconditionError(
        absl::StrCat("no disk could be opened:", reasons));
  }
  return std::unique_ptr<StorageNode>(
      new StorageNode(config.host_id, std::move(disks)));
}

absl::StatusOr<ChunkStore*> StorageNode::StoreFor(absl::string_view disk_id) {
  for (const Disk& d : disks_) {
    if (d.id != disk_id) continue;
    if (d.store == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("disk ", disk_id, " has failed: ", d.failure));
    }
    return d.store.get();
  }
  return absl::NotFoundError(
      absl::StrCat("disk ", disk_id, " is not on host ", host_id_));
}

absl::Status StorageNode::CheckFence(absl::string_view volume_id,
                                     uint64_t generation) {
  uint64_t fence = 0;
  for (const Disk& d : disks_) {
    if (d.store != nullptr) {
      fence = std::max(fence, d.store->FenceOf(volume_id));
    }
  }
  if (generation < fence) {
    return absl::FailedPreconditionError(absl::StrCat(
        "fenced: generation ", generation, " of volume ", volume_id,
        " is below ", fence, "; the volume was attached elsewhere"));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StorageNode::Write(
    absl::string_view disk_id, const ChunkKey& key, uint64_t offset,
    std::span<const uint8_t> data, std::span<const uint32_t> checksums,
    uint64_t generation, std::optional<uint64_t> expected_version) {
  JUKE_ASSIGN_OR_RETURN(ChunkStore * store, StoreFor(disk_id));
  // A snapshot's chunk answers to its record, not to the fence (ChunkStore).
  if (key.epoch == 0) {
    JUKE_RETURN_IF_ERROR(CheckFence(key.volume_id, generation));
  }
  return store->Write(key, offset, data, checksums, generation,
                      expected_version);
}

absl::StatusOr<ReadResult> StorageNode::Read(absl::string_view disk_id,
                                             const ChunkKey& key,
                                             uint64_t offset, uint64_t length) {
  JUKE_ASSIGN_OR_RETURN(ChunkStore * store, StoreFor(disk_id));
  return store->Read(key, offset, length);
}

absl::StatusOr<ReadResult> StorageNode::ReadChecksums(absl::string_view disk_id,
                                                      const ChunkKey& key,
                                                      uint64_t offset,
                                                      uint64_t length) {
  JUKE_ASSIGN_OR_RETURN(ChunkStore * store, StoreFor(disk_id));
  return store->ReadChecksums(key, offset, length);
}

absl::Status StorageNode::Delete(absl::string_view disk_id, const ChunkKey& key,
                                 uint64_t generation) {
  JUKE_ASSIGN_OR_RETURN(ChunkStore * store, StoreFor(disk_id));
  if (key.epoch == 0) {
    JUKE_RETURN_IF_ERROR(CheckFence(key.volume_id, generation));
  }
  return store->Delete(key, generation);
}

absl::StatusOr<ListResult> StorageNode::List(absl::string_view disk_id,
                                             absl::string_view volume_id,
                                             uint32_t page_size,
                                             absl::string_view page_token) {
  JUKE_ASSIGN_OR_RETURN(ChunkStore * store, StoreFor(disk_id));
  return store->List(volume_id, page_size, page_token);
}

absl::StatusOr<uint64_t> StorageNode::Fence(absl::string_view volume_id,
                                            uint64_t generation) {
  uint64_t highest = generation;
  for (const Disk& d : disks_) {
    if (d.store == nullptr) continue;
    absl::StatusOr<uint64_t> now = d.store->Fence(volume_id, generation);
    if (!now.ok()) {
      return Annotate(now.status(), absl::StrCat("fence volume ", volume_id,
                                                 " on disk ", d.id));
    }
    highest = std::max(highest, *now);
  }
  JUKE_LOG_INFO(Log(), "Volume fenced volumeID={} generation={} highest={}",
                volume_id, generation, highest);
  return highest;
}

absl::StatusOr<uint64_t> StorageNode::Snapshot(absl::string_view volume_id,
                                               uint64_t epoch,
                                               uint64_t generation) {
  JUKE_RETURN_IF_ERROR(CheckFence(volume_id, generation));
  uint64_t chunks = 0;
  for (const Disk& d : disks_) {
    if (d.store == nullptr) continue;
    absl::StatusOr<uint64_t> held =
        d.store->Snapshot(volume_id, epoch, generation);
    if (!held.ok()) {
      return Annotate(held.status(), absl::StrCat("on disk ", d.id));
    }
    chunks += *held;
  }
  return chunks;
}

absl::Status StorageNode::DeleteSnapshot(absl::string_view volume_id,
                                         uint64_t epoch) {
  for (const Disk& d : disks_) {
    if (d.store == nullptr) continue;
    JUKE_RETURN_IF_ERROR(Annotate(d.store->DeleteSnapshot(volume_id, epoch),
                                  absl::StrCat("on disk ", d.id)));
  }
  return absl::OkStatus();
}

std::vector<DiskInfo> StorageNode::Disks() {
  std::vector<DiskInfo> out;
  for (const Disk& d : disks_) {
    DiskInfo info;
    info.disk_id = d.id;
    info.path = d.path;
    if (d.store == nullptr) {
      info.state = DiskInfo::State::kFailed;
      info.reason = d.failure;
      out.push_back(std::move(info));
      continue;
    }
    absl::StatusOr<ChunkStoreStats> stats = d.store->Stats();
    if (!stats.ok()) {
      info.state = DiskInfo::State::kDegraded;
      info.reason = std::string(stats.status().message());
    } else {
      info.stats = *stats;
      if (stats->io_errors > 0 || stats->checksum_failures > 0) {
        info.state = DiskInfo::State::kDegraded;
        info.reason = absl::StrCat(stats->io_errors, " I/O errors, ",
                                   stats->checksum_failures,
                                   " checksum failures since start");
      }
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace juke::storage
