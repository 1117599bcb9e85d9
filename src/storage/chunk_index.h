#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/write_batch.h"

#include "src/storage/chunk_store.h"

// The index of one disk: a RocksDB database holding, for every chunk, where
// its data lives and what it should read back as, plus the fences, the
// write journal and the store's counters. This file owns the key and value
// encodings, which docs/chunk-store.md describes.
namespace juke::storage {

inline constexpr size_t kMaxVolumeIdSize = 256;

// InvalidArgument unless `volume_id` is 1 to 256 bytes without NUL.
absl::Status ValidateVolumeId(absl::string_view volume_id);

// The order-preserving encoding of a chunk key: the volume id, a NUL, then
// the index and the epoch as big-endian 64-bit numbers. Chunk keys sort by
// volume id, then index, then epoch, and the keys of one volume share the
// prefix VolumePrefix(volume_id).
std::string EncodeChunkKey(const ChunkKey& key);
// InvalidArgument unless `encoded` came from EncodeChunkKey.
absl::StatusOr<ChunkKey> DecodeChunkKey(absl::string_view encoded);
std::string VolumePrefix(absl::string_view volume_id);

// Where a chunk's data lives and its summary; the small part of the
// chunk's index entry, read by List and at startup.
struct ChunkRecord {
  uint64_t file_number = 0;  // the data file, chunks/<number>.chunk
  uint64_t size = 0;         // highest written byte + 1
  uint64_t version = 0;
  uint64_t generation = 0;
};

// Per 4 KiB block of a chunk, up to its size: whether it was ever written,
// and the CRC32C it must read back with. Blocks never written read as
// zeros.
struct BlockMap {
  std::vector<uint8_t> written;     // 0 or 1
  std::vector<uint32_t> checksums;  // 0 where not written

  size_t blocks() const { return checksums.size(); }
  // Grows to at least `blocks` blocks; never shrinks.
  void Extend(size_t blocks);
};

// A write that is durable in the index but maybe not yet in its data file.
struct JournalEntry {
  uint64_t sequence = 0;
  ChunkKey key;
  uint64_t file_number = 0;
  uint64_t offset = 0;
  std::string data;
};

// Changes to the index, applied atomically by ChunkIndex::Commit. Not
// thread-safe.
class IndexBatch {
 public:
  void PutChunk(const ChunkKey& key, const ChunkRecord& record,
                const BlockMap& blocks);
  void DeleteChunk(const ChunkKey& key);
  void PutFence(absl::string_view volume_id, uint64_t generation);
  void PutJournal(uint64_t sequence, const ChunkKey& key, uint64_t file_number,
                  uint64_t offset, std::span<const uint8_t> data);
  void DeleteJournal(uint64_t sequence);
  void PutNextFileNumber(uint64_t file_number);
  // A data file to remove: its chunk is gone from the index, the file may
  // not be yet.
  void PutPendingRemoval(uint64_t file_number);
  void DeletePendingRemoval(uint64_t file_number);
  // How many index entries (a live chunk and its snapshots) name the data
  // file. Only counts of 2 or more are stored; 1 or 0 removes the entry.
  void PutFileRefs(uint64_t file_number, uint64_t refs);

 private:
  friend class ChunkIndex;
  rocksdb::WriteBatch batch_;
};

// Owns the RocksDB database of one disk. Thread-safe.
class ChunkIndex {
 public:
  struct Options {
    std::string dir;  // the database directory, <disk>/index
    // For tests, to inject faults into RocksDB's own I/O; not owned.
    rocksdb::Env* env = nullptr;
  };

  static absl::StatusOr<std::unique_ptr<ChunkIndex>> Open(
      const Options& options);
  ~ChunkIndex();

  // Applies `batch` atomically; with `sync`, durably before returning.
  // ResourceExhausted when the disk is full.
  //
  // Fail-stop: after a failed commit every later one is Unavailable until
  // the index is reopened, while reads go on. A failed write may still have
  // reached the log (a sync can fail after the data got to the disk), so
  // only recovery at open knows what the index holds; and RocksDB cannot be
  // resumed in place after a failed log write anyway.
  absl::Status Commit(IndexBatch* batch, bool sync);

  // nullopt when the chunk is absent.
  absl::StatusOr<std::optional<ChunkRecord>> GetChunk(const ChunkKey& key);
  absl::StatusOr<BlockMap> GetBlocks(const ChunkKey& key);
  absl::StatusOr<JournalEntry> GetJournal(uint64_t sequence);
  // 1 when never stored.
  absl::StatusOr<uint64_t> GetNextFileNumber();
  // How many entries share the data file: the stored count, or 1 when none
  // is stored (a file named by one entry, the usual case).
  absl::StatusOr<uint64_t> GetFileRefs(uint64_t file_number);

  // Chunks in key order: those after `after` (from the first when nullopt),
  // of `volume_id` (every volume when empty), at most `limit` of them.
  absl::StatusOr<std::vector<std::pair<ChunkKey, ChunkRecord>>> ScanChunks(
      absl::string_view volume_id, const std::optional<ChunkKey>& after,
      size_t limit);

  // Visitors over the whole index, in key order; a visitor's error stops
  // the scan and is returned.
  absl::Status ForEachChunk(
      const std::function<absl::Status(const ChunkKey&, const ChunkRecord&)>&
          fn);
  absl::Status ForEachFence(
      const std::function<absl::Status(absl::string_view, uint64_t)>& fn);
  absl::Status ForEachJournal(
      const std::function<absl::Status(JournalEntry)>& fn);
  absl::Status ForEachPendingRemoval(
      const std::function<absl::Status(uint64_t)>& fn);

 private:
  explicit ChunkIndex(std::unique_ptr<rocksdb::DB> db);

  absl::Status ForEachWithPrefix(
      absl::string_view prefix,
      const std::function<absl::Status(absl::string_view key,
                                       absl::string_view value)>& fn);

  const std::unique_ptr<rocksdb::DB> db_;
  absl::Mutex mu_;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // the first failed commit
};

}  // namespace juke::storage
