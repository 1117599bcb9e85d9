#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

#include "src/common/logging.h"
#include "src/storage/chunk_index.h"
#include "src/storage/chunk_store.h"
#include "src/storage/file_cache.h"
#include "src/storage/file_system.h"
#include "src/storage/lock_table.h"

// The ChunkStore of one disk, as docs/chunk-store.md describes it. Internal
// to the store: everyone else gets one from ChunkStore::Open.
namespace juke::storage {

// How chunks are named in messages and logs: the volume id escaped, since
// it may hold any byte but NUL.
std::string ChunkName(const ChunkKey& key);

// Chunk files under options.path/chunks, their index in options.path/index.
// Thread-safe.
class DiskChunkStore : public ChunkStore {
 public:
  // REQUIRES: `options` were validated, the disk's label checked.
  DiskChunkStore(const ChunkStoreOptions& options,
                 std::unique_ptr<ChunkIndex> index);

  // Finishes what a crash interrupted and loads the in-memory state. Called
  // once, by ChunkStore::Open, before the store is shared.
  absl::Status Recover();

  absl::StatusOr<uint64_t> Write(
      const ChunkKey& key, uint64_t offset, std::span<const uint8_t> data,
      std::span<const uint32_t> checksums, uint64_t generation,
      std::optional<uint64_t> expected_version) override;
  absl::StatusOr<ReadResult> Read(const ChunkKey& key, uint64_t offset,
                                  uint64_t length) override;
  absl::StatusOr<ReadResult> ReadChecksums(const ChunkKey& key, uint64_t offset,
                                           uint64_t length) override;
  absl::Status Delete(const ChunkKey& key, uint64_t generation) override;
  absl::StatusOr<ListResult> List(absl::string_view volume_id,
                                  uint32_t page_size,
                                  absl::string_view page_token) override;
  absl::StatusOr<uint64_t> Snapshot(absl::string_view volume_id, uint64_t epoch,
                                    uint64_t generation) override;
  absl::Status DeleteSnapshot(absl::string_view volume_id,
                              uint64_t epoch) override;
  absl::StatusOr<uint64_t> Fence(absl::string_view volume_id,
                                 uint64_t generation) override;
  uint64_t FenceOf(absl::string_view volume_id) override;
  absl::StatusOr<ChunkStoreStats> Stats() override;

 private:
  absl::Status ValidateWrite(const ChunkKey& key, uint64_t offset,
                             std::span<const uint8_t> data,
                             std::span<const uint32_t> checksums,
                             std::optional<uint64_t> expected_version) const;
  absl::Status ValidateRange(uint64_t offset, uint64_t length) const;
  // Read() and ReadChecksums(): with `data`, reads and checks the blocks.
  absl::StatusOr<ReadResult> ReadBlocks(const ChunkKey& key, uint64_t offset,
                                        uint64_t length, bool data);

  std::string FilePath(uint64_t file_number) const {
    return absl::StrFormat("%s/chunks/%012d.chunk", options_.path, file_number);
  }
  absl::StatusOr<uint64_t> AllocateFileNumber();
  absl::StatusOr<std::shared_ptr<File>> OpenChunkFile(uint64_t file_number);

  // Locks the volume's fence for a write or delete at `generation`:
  // exclusively when the operation raises it. The lock is held until the
  // operation's index commit, so that no operation below a fence commits
  // after Fence() returned. FailedPrecondition when fenced; *raises tells
  // whether the commit must raise the fence.
  absl::StatusOr<LockTable::Handle> LockFence(absl::string_view volume_id,
                                              uint64_t generation,
                                              bool* raises);

  // LockFence for an operation on one chunk. A snapshot's chunk (epoch not
  // 0) is not the volume writer's: its copies and deletes answer to the
  // snapshot's record, so they take the lock shared and check nothing.
  absl::StatusOr<LockTable::Handle> LockChunkFence(const ChunkKey& key,
                                                   uint64_t generation,
                                                   bool* raises);

  // The write of a chunk whose data file a snapshot shares: the chunk's
  // old blocks and the new data go to a new file, made durable before the
  // index switches the chunk to it in one synced batch, so a crash leaves
  // the old file and entry untouched or the new ones complete.
  // REQUIRES: the chunk's lock, exclusively; `record` and `blocks` are the
  // chunk's new entry, whose file number this replaces.
  absl::StatusOr<uint64_t> CopyOnWrite(
      const ChunkKey& key, const ChunkRecord& old, const BlockMap& old_blocks,
      ChunkRecord record, const BlockMap& blocks, uint64_t offset,
      std::span<const uint8_t> data, uint64_t generation);
  // Copies the written blocks of `old_blocks` outside [skip_from, skip_to)
  // from one chunk file to another, checking each against its checksum.
  absl::Status CopyBlocks(const ChunkKey& key, File* from, File* to,
                          const BlockMap& old_blocks, uint64_t size,
                          uint64_t skip_from, uint64_t skip_to);

  // Adds to `batch` what dropping one index entry per item of `files` does
  // to the files' reference counts. Returns the files that no entry names
  // any more; the batch records them for removal.
  // REQUIRES: refs_mu_.
  absl::StatusOr<std::vector<uint64_t>> DropFileRefs(
      const std::vector<uint64_t>& files, IndexBatch* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(refs_mu_);
  // Removes files freed by a committed batch, then their removal records.
  // A file that cannot be removed yet keeps its record; Open retries.
  void RemoveFreedFiles(const std::vector<uint64_t>& files);
  // Removes chunk files that no index entry names: a copy-on-write or a
  // new chunk's file whose commit a crash or a failure cut off.
  absl::Status RemoveOrphanFiles();

  // Writes journaled data into its chunk file, durably.
  absl::Status Apply(const ChunkKey& key, uint64_t file_number, uint64_t offset,
                     std::span<const uint8_t> data);
  // Applies and drops the journal entries of chunk `name` that earlier
  // attempts failed to apply. REQUIRES: the chunk's lock, exclusively.
  absl::Status FinishPending(const std::string& name);
  bool HasPending(const std::string& name) {
    absl::MutexLock lock(&mu_);
    return pending_.contains(name);
  }

  const ChunkStoreOptions options_;
  FileSystem* const fs_;
  const std::unique_ptr<ChunkIndex> index_;
  const Logger log_;
  FileCache files_;

  // Serializes operations on one chunk (writers exclusive, readers shared)
  // and fence changes of one volume. A chunk's lock is taken before its
  // volume's.
  LockTable chunk_locks_;
  LockTable fence_locks_;

  // Held from reading a file's reference count to committing its new one.
  // Taken after chunk locks and before a fence lock.
  absl::Mutex refs_mu_;

  // Reserves file numbers; held across the index commit of a reservation.
  absl::Mutex file_number_mu_;
  uint64_t next_file_number_ ABSL_GUARDED_BY(file_number_mu_) = 0;
  uint64_t file_number_limit_ ABSL_GUARDED_BY(file_number_mu_) = 0;

  absl::Mutex mu_;
  std::map<std::string, uint64_t, std::less<>> fences_ ABSL_GUARDED_BY(mu_);
  // Journal entries, by chunk, whose data may not be in the chunk file
  // yet: an apply failed. Reads and writes of the chunk first finish them.
  std::map<std::string, std::vector<uint64_t>> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t used_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t chunk_count_ ABSL_GUARDED_BY(mu_) = 0;

  std::atomic<uint64_t> checksum_failures_{0};
  std::atomic<uint64_t> io_errors_{0};
};

}  // namespace juke::storage
