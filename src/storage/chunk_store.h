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

#include "src/storage/file_system.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace juke::storage {

// Identifies a chunk: (volume id, chunk index, snapshot epoch).
struct ChunkKey {
  std::string volume_id;
  uint64_t index = 0;
  uint64_t epoch = 0;

  friend bool operator==(const ChunkKey&, const ChunkKey&) = default;
};

struct ChunkMeta {
  ChunkKey key;
  uint64_t size = 0;        // highest written byte + 1
  uint64_t version = 0;     // +1 per write
  uint64_t generation = 0;  // writer generation of the latest write
};

struct ReadResult {
  std::vector<uint8_t> data;
  std::vector<uint32_t> checksums;  // one per 4 KiB block of data
  uint64_t version = 0;
  uint64_t generation = 0;
};

struct ListResult {
  std::vector<ChunkMeta> chunks;
  std::string next_page_token;  // empty on the last page
};

// What the disk label records; written when a disk is first added.
struct DiskIdentity {
  std::string pool_id;
  std::string host_id;
  std::string disk_id;
};

struct ChunkStoreOptions {
  std::string path;       // the disk's directory
  DiskIdentity identity;  // expected identity
  // Label a blank directory with `identity`. When false, a directory without
  // a label is refused (a disk that was swapped or wiped).
  bool create_if_missing = true;
  uint64_t max_chunk_size = 64ull << 20;
  FileSystem* fs = nullptr;  // not owned; must outlive the store
  // The index's own I/O goes through RocksDB, not `fs`. Tests set this to
  // inject faults there; null means RocksDB's default. Not owned.
  rocksdb::Env* index_env = nullptr;
};

struct ChunkStoreStats {
  uint64_t capacity_bytes = 0;
  uint64_t available_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t chunk_count = 0;
  uint64_t checksum_failures = 0;
  uint64_t io_errors = 0;
  std::string filesystem_id;  // FileSystemStats::filesystem_id
};

// The chunks of one disk: data files written and read through a FileSystem,
// indexed by a RocksDB database on the same disk (size, per-4-KiB checksums,
// version, writer generation of every chunk; the highest fencing generation
// of every volume). Thread-safe.
//
// A write is acknowledged only when durable, and a crash at any instant
// leaves the chunk with its old or its new content. A read whose data does
// not match its stored checksums fails with DataLoss and is counted; it
// never returns wrong data.
class ChunkStore {
 public:
  // Opens the disk at options.path: checks its label against
  // options.identity (FailedPrecondition naming both when it belongs to
  // another host or pool; NotFound when the label is missing and
  // create_if_missing is false), opens the index and finishes any write a
  // crash interrupted.
  static absl::StatusOr<std::unique_ptr<ChunkStore>> Open(
      const ChunkStoreOptions& options);

  virtual ~ChunkStore() = default;

  // Writes `data` at `offset` of the chunk, creating it when absent.
  // REQUIRES (else InvalidArgument): offset and data.size() multiples of
  // 4096, data non-empty, offset + size <= max_chunk_size, one checksum per
  // block; a checksum that does not match its block is DataLoss. A
  // generation below the volume's fence is FailedPrecondition; a higher one
  // raises the fence. With `expected_version`, the write applies only if
  // the chunk's version is that (0: the chunk is absent), else Aborted;
  // recovery copies a replica this way without undoing a newer write.
  // Snapshot entries (epoch not 0) are read-only to everyone but their
  // mover, which copies one onto a new disk with conditional writes: a
  // write to one without `expected_version` is InvalidArgument, and the
  // volume's fence neither applies to it nor rises.
  // Returns the chunk's new version.
  virtual absl::StatusOr<uint64_t> Write(
      const ChunkKey& key, uint64_t offset, std::span<const uint8_t> data,
      std::span<const uint32_t> checksums, uint64_t generation,
      std::optional<uint64_t> expected_version) = 0;

  // Reads `length` bytes at `offset`; never-written blocks read as zeros.
  // NotFound when the chunk does not exist.
  virtual absl::StatusOr<ReadResult> Read(const ChunkKey& key, uint64_t offset,
                                          uint64_t length) = 0;

  // Read() without the data: the checksums of the blocks as the index
  // holds them (a zero block's for blocks never written), the version and
  // the generation. Nothing is read from the chunk file, so this checks
  // nothing on disk.
  virtual absl::StatusOr<ReadResult> ReadChecksums(const ChunkKey& key,
                                                   uint64_t offset,
                                                   uint64_t length) = 0;

  // NotFound when absent; FailedPrecondition when fenced. A snapshot's
  // entry may be deleted too, unfenced (see Write); the data file goes
  // with the last entry that names it.
  virtual absl::Status Delete(const ChunkKey& key, uint64_t generation) = 0;

  // Chunks in key order, `volume_id` empty for all; page_size 1..1000.
  // InvalidArgument for a page token this store did not hand out.
  virtual absl::StatusOr<ListResult> List(absl::string_view volume_id,
                                          uint32_t page_size,
                                          absl::string_view page_token) = 0;

  // Takes snapshot `epoch` (not 0) of the volume on this disk: for every
  // live chunk of the volume (epoch 0), an entry (volume, index, epoch)
  // that shares the chunk's data file and checksums, all in one synced
  // index batch, so the disk holds the whole snapshot or none of it. No
  // data is copied: the next write to a shared chunk moves the live chunk
  // to a new file first. `generation` is checked against the fence and
  // raises it, as a write's does. Taking a snapshot again adds only the
  // entries it lacks. Returns how many chunks the snapshot holds here.
  virtual absl::StatusOr<uint64_t> Snapshot(absl::string_view volume_id,
                                            uint64_t epoch,
                                            uint64_t generation) = 0;

  // Drops every entry of snapshot `epoch` of the volume; data files that no
  // entry names any more are removed. OK when there is none.
  virtual absl::Status DeleteSnapshot(absl::string_view volume_id,
                                      uint64_t epoch) = 0;

  // Raises the volume's fence to `generation` durably (no-op when lower);
  // returns the fence now in force.
  virtual absl::StatusOr<uint64_t> Fence(absl::string_view volume_id,
                                         uint64_t generation) = 0;
  // The volume's fence; 0 when never fenced.
  virtual uint64_t FenceOf(absl::string_view volume_id) = 0;

  virtual absl::StatusOr<ChunkStoreStats> Stats() = 0;
};

}  // namespace juke::storage
