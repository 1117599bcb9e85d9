// Snapshots inside one disk's store: entries that share chunk files,
// copy-on-write of a shared chunk, and dropping a snapshot's entries
// (docs/chunk-store.md, "Snapshots").

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "src/common/checksum.h"
#include "src/common/status.h"
#include "src/storage/disk_chunk_store.h"

namespace juke::storage {
namespace {

// Blocks copied per read and write when a shared chunk moves to a new file.
constexpr size_t kCopyRunBlocks = 256;
// A volume that keeps gaining chunks while its snapshot is being taken has
// writers the caller did not fence; give up after this many tries.
constexpr int kSnapshotAttempts = 5;

absl::Status CheckEpoch(uint64_t epoch) {
  if (epoch == 0) {
    return absl::InvalidArgumentError(
        "snapshot epoch 0 is the live volume; use 1 or more");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DiskChunkStore::CopyBlocks(const ChunkKey& key, File* from,
                                        File* to, const BlockMap& old_blocks,
                                        uint64_t size, uint64_t skip_from,
                                        uint64_t skip_to) {
  const size_t blocks =
      std::min<size_t>(old_blocks.blocks(), size / kBlockSize);
  auto wanted = [&](size_t b) {
    uint64_t at = b * kBlockSize;
    return old_blocks.written[b] && (at < skip_from || at >= skip_to);
  };
  std::vector<uint8_t> buf;
  for (size_t b = 0; b < blocks;) {
    if (!wanted(b)) {
      ++b;
      continue;
    }
    size_t end = b;
    while (end < blocks && end - b < kCopyRunBlocks && wanted(end)) ++end;
    buf.resize((end - b) * kBlockSize);
    absl::Status s = from->ReadAt(b * kBlockSize, buf);
    if (!s.ok()) {
      ++io_errors_;
      return s;
    }
    for (size_t i = b; i < end; ++i) {
      std::span<const uint8_t> block(buf.data() + (i - b) * kBlockSize,
                                     kBlockSize);
      uint32_t actual = Crc32c(block);
      if (actual != old_blocks.checksums[i]) {
        ++checksum_failures_;
        return absl::DataLossError(absl::StrFormat(
            "checksum mismatch chunk %s block %d while copying it for a "
            "snapshot: stored %08x, read %08x",
            ChunkName(key), i, old_blocks.checksums[i], actual));
      }
    }
    s = to->WriteAt(b * kBlockSize, buf);
    if (!s.ok()) {
      ++io_errors_;
      return s;
    }
    b = end;
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> DiskChunkStore::CopyOnWrite(
    const ChunkKey& key, const ChunkRecord& old, const BlockMap& old_blocks,
    ChunkRecord record, const BlockMap& blocks, uint64_t offset,
    std::span<const uint8_t> data, uint64_t generation) {
  JUKE_ASSIGN_OR_RETURN(record.file_number, AllocateFileNumber());

  // The new file gets everything before the commit; until then no entry
  // names it, and a crash leaves an orphan that the next open removes.
  auto prepare = [&]() -> absl::Status {
    JUKE_ASSIGN_OR_RETURN(std::shared_ptr<File> from,
                          OpenChunkFile(old.file_number));
    JUKE_ASSIGN_OR_RETURN(std::shared_ptr<File> to,
                          OpenChunkFile(record.file_number));
    JUKE_RETURN_IF_ERROR(CopyBlocks(key, from.get(), to.get(), old_blocks,
                                    old.size, offset, offset + data.size()));
    absl::Status s = to->WriteAt(offset, data);
    if (s.ok()) s = to->Sync();
    if (!s.ok()) ++io_errors_;
    return s;
  };
  auto discard = [&] {
    files_.Erase(record.file_number);
    fs_->RemoveFile(FilePath(record.file_number)).IgnoreError();
  };
  if (absl::Status s = prepare(); !s.ok()) {
    discard();
    return Annotate(s, "copy the chunk a snapshot shares to a new file");
  }

  // The commit point: the chunk names its new file, and the old file loses
  // one reference.
  std::vector<uint64_t> freed;
  {
    absl::MutexLock refs_lock(&refs_mu_);
    bool raises;
    absl::StatusOr<LockTable::Handle> fence_lock =
        LockChunkFence(key, generation, &raises);
    if (!fence_lock.ok()) {
      discard();
      return fence_lock.status();
    }
    IndexBatch batch;
    batch.PutChunk(key, record, blocks);
    absl::StatusOr<std::vector<uint64_t>> dropped =
        DropFileRefs({old.file_number}, &batch);
    if (!dropped.ok()) {
      discard();
      return dropped.status();
    }
    freed = *std::move(dropped);
    if (raises) batch.PutFence(key.volume_id, generation);
    if (absl::Status s = index_->Commit(&batch, true); !s.ok()) {
      discard();
      return s;
    }
    absl::MutexLock lock(&mu_);
    if (raises) fences_[key.volume_id] = generation;
    used_bytes_ += record.size - old.size;
  }
  RemoveFreedFiles(freed);
  return record.version;
}

absl::StatusOr<uint64_t> DiskChunkStore::Snapshot(absl::string_view volume_id,
                                                  uint64_t epoch,
                                                  uint64_t generation) {
  const std::string context = absl::StrCat("snapshot ", epoch, " of volume ",
                                           absl::CHexEscape(volume_id));
  JUKE_RETURN_IF_ERROR(Annotate(ValidateVolumeId(volume_id), context));
  JUKE_RETURN_IF_ERROR(Annotate(CheckEpoch(epoch), context));
  constexpr size_t kAll = std::numeric_limits<size_t>::max();

  auto live_chunks = [&]() -> absl::StatusOr<std::vector<ChunkKey>> {
    JUKE_ASSIGN_OR_RETURN(auto entries,
                          index_->ScanChunks(volume_id, std::nullopt, kAll));
    std::vector<ChunkKey> keys;
    for (auto& [key, record] : entries) {
      if (key.epoch == 0) keys.push_back(std::move(key));
    }
    return keys;
  };

  for (int attempt = 0; attempt < kSnapshotAttempts; ++attempt) {
    absl::StatusOr<std::vector<ChunkKey>> chunks = live_chunks();
    JUKE_RETURN_IF_ERROR(Annotate(chunks.status(), context));

    // Every live chunk's lock, in key order, keeps writes out while the
    // entries are read; earlier failed writes are finished first, so the
    // files hold what the index says.
    std::vector<LockTable::Handle> locks;
    locks.reserve(chunks->size());
    for (const ChunkKey& key : *chunks) {
      std::string name = EncodeChunkKey(key);
      locks.push_back(chunk_locks_.Lock(name));
      JUKE_RETURN_IF_ERROR(Annotate(FinishPending(name), context));
    }

    absl::MutexLock refs_lock(&refs_mu_);
    bool raises;
    absl::StatusOr<LockTable::Handle> fence_lock =
        LockFence(volume_id, generation, &raises);
    JUKE_RETURN_IF_ERROR(Annotate(fence_lock.status(), context));
    // A chunk created since the listing was written by a writer at or
    // above `generation`; list and lock again.
    absl::StatusOr<std::vector<ChunkKey>> again = live_chunks();
    JUKE_RETURN_IF_ERROR(Annotate(again.status(), context));
    if (*again != *chunks) continue;

    IndexBatch batch;
    std::map<uint64_t, uint64_t> added_refs;
    uint64_t held = 0;
    uint64_t added = 0;
    uint64_t added_bytes = 0;
    for (const ChunkKey& live : *chunks) {
      ChunkKey snap{live.volume_id, live.index, epoch};
      JUKE_ASSIGN_OR_RETURN(std::optional<ChunkRecord> existing,
                            index_->GetChunk(snap));
      ++held;
      if (existing.has_value()) continue;
      JUKE_ASSIGN_OR_RETURN(std::optional<ChunkRecord> record,
                            index_->GetChunk(live));
      if (!record.has_value()) {
        return absl::InternalError(absl::StrCat(
            context, ": chunk ", ChunkName(live), " vanished while locked"));
      }
      JUKE_ASSIGN_OR_RETURN(BlockMap blocks, index_->GetBlocks(live));
      batch.PutChunk(snap, *record, blocks);
      ++added_refs[record->file_number];
      ++added;
      added_bytes += record->size;
    }
    for (const auto& [file_number, count] : added_refs) {
      JUKE_ASSIGN_OR_RETURN(uint64_t refs, index_->GetFileRefs(file_number));
      batch.PutFileRefs(file_number, refs + count);
    }
    if (raises) batch.PutFence(volume_id, generation);
    JUKE_RETURN_IF_ERROR(Annotate(index_->Commit(&batch, true), context));

    absl::MutexLock lock(&mu_);
    if (raises) fences_.insert_or_assign(std::string(volume_id), generation);
    chunk_count_ += added;
    used_bytes_ += added_bytes;
    JUKE_LOG_INFO(log_,
                  "Snapshot taken volumeID={} epoch={} chunks={} added={}",
                  absl::CHexEscape(volume_id), epoch, held, added);
    return held;
  }
  return absl::AbortedError(absl::StrCat(
      context, ": the volume kept gaining chunks; fence its writers first"));
}

absl::Status DiskChunkStore::DeleteSnapshot(absl::string_view volume_id,
                                            uint64_t epoch) {
  const std::string context = absl::StrCat(
      "delete snapshot ", epoch, " of volume ", absl::CHexEscape(volume_id));
  JUKE_RETURN_IF_ERROR(Annotate(ValidateVolumeId(volume_id), context));
  JUKE_RETURN_IF_ERROR(Annotate(CheckEpoch(epoch), context));

  absl::StatusOr<std::vector<std::pair<ChunkKey, ChunkRecord>>> entries =
      index_->ScanChunks(volume_id, std::nullopt,
                         std::numeric_limits<size_t>::max());
  JUKE_RETURN_IF_ERROR(Annotate(entries.status(), context));
  std::vector<LockTable::Handle> locks;
  std::vector<ChunkKey> keys;
  for (const auto& [key, record] : *entries) {
    if (key.epoch != epoch) continue;
    locks.push_back(chunk_locks_.Lock(EncodeChunkKey(key)));
    keys.push_back(key);
  }
  if (keys.empty()) return absl::OkStatus();

  std::vector<uint64_t> freed;
  {
    absl::MutexLock refs_lock(&refs_mu_);
    IndexBatch batch;
    std::vector<uint64_t> files;
    uint64_t bytes = 0;
    for (const ChunkKey& key : keys) {
      // Read again under the lock: a concurrent delete may have won.
      JUKE_ASSIGN_OR_RETURN(std::optional<ChunkRecord> record,
                            index_->GetChunk(key));
      if (!record.has_value()) continue;
      batch.DeleteChunk(key);
      files.push_back(record->file_number);
      bytes += record->size;
    }
    absl::StatusOr<std::vector<uint64_t>> dropped = DropFileRefs(files, &batch);
    JUKE_RETURN_IF_ERROR(Annotate(dropped.status(), context));
    freed = *std::move(dropped);
    JUKE_RETURN_IF_ERROR(Annotate(index_->Commit(&batch, true), context));

    absl::MutexLock lock(&mu_);
    chunk_count_ -= files.size();
    used_bytes_ -= bytes;
  }
  RemoveFreedFiles(freed);
  JUKE_LOG_INFO(log_,
                "Snapshot deleted volumeID={} epoch={} chunks={} "
                "filesFreed={}",
                absl::CHexEscape(volume_id), epoch, keys.size(), freed.size());
  return absl::OkStatus();
}

}  // namespace juke::storage
