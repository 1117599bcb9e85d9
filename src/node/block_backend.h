#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

// The storage a node-attached block device is served from. The kernel sees
// it as /dev/loopN (see attachment.h); every read, write and flush the
// kernel issues ends up here.
//
// Offsets and lengths are multiples of kSectorSize and lie within size().
// An implementation handles its own alignment beyond that (a replicated
// volume with 4 KiB blocks does read-modify-write itself). A write that
// returns OK may still sit in a volatile cache; Flush() makes everything
// acknowledged before it durable. Any error is reported to the kernel as
// EIO: a fenced or failed writer must never look like a successful one.
//
// Implementations must be thread-safe: the device serves requests from
// several threads at once.
namespace juke::node {

inline constexpr uint64_t kSectorSize = 512;

class BlockBackend {
 public:
  virtual ~BlockBackend() = default;

  // The device size in bytes; a multiple of kSectorSize.
  virtual uint64_t size() const = 0;

  virtual absl::Status ReadAt(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual absl::Status WriteAt(uint64_t offset,
                               std::span<const uint8_t> data) = 0;

  // Makes every write acknowledged so far durable.
  virtual absl::Status Flush() = 0;

  // Changes the size. Optional: the default returns Unimplemented.
  virtual absl::Status Resize(uint64_t new_size);
};

// InvalidArgument unless `offset` and `length` are sector multiples;
// OutOfRange unless [offset, offset + length) lies within `size`.
absl::Status CheckRange(uint64_t offset, uint64_t length, uint64_t size);

// A sparse in-memory device for tests: regions never written read as
// zeros. Counts flushes and can be told to fail every call, to test how
// errors reach the kernel. Thread-safe.
class MemoryBackend final : public BlockBackend {
 public:
  // REQUIRES: `size` is a multiple of kSectorSize.
  explicit MemoryBackend(uint64_t size);

  uint64_t size() const override;
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> data) override;
  absl::Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override;
  absl::Status Flush() override;
  absl::Status Resize(uint64_t new_size) override;

  // While `status` is not OK, ReadAt, WriteAt and Flush return it.
  void SetFault(absl::Status status);
  int flush_count() const;

 private:
  static constexpr uint64_t kChunkSize = uint64_t{64} * 1024;

  mutable absl::Mutex mu_;
  uint64_t size_ ABSL_GUARDED_BY(mu_);
  // Chunk index -> kChunkSize bytes; absent chunks are zeros.
  std::map<uint64_t, std::vector<uint8_t>> chunks_ ABSL_GUARDED_BY(mu_);
  absl::Status fault_ ABSL_GUARDED_BY(mu_);
  int flushes_ ABSL_GUARDED_BY(mu_) = 0;
};

// A device backed by a plain file, for tests and benchmarks: pread, pwrite,
// fdatasync. Thread-safe.
class FileBackend final : public BlockBackend {
 public:
  // Opens `path`, creating it if missing. A new or shorter file is extended
  // (sparsely) to `size`; `size` 0 takes the file's current size.
  static absl::StatusOr<std::unique_ptr<FileBackend>> Open(
      absl::string_view path, uint64_t size);
  ~FileBackend() override;

  FileBackend(const FileBackend&) = delete;
  FileBackend& operator=(const FileBackend&) = delete;

  uint64_t size() const override { return size_.load(); }
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> data) override;
  absl::Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override;
  absl::Status Flush() override;
  absl::Status Resize(uint64_t new_size) override;

 private:
  FileBackend(int fd, uint64_t size) : fd_(fd), size_(size) {}

  const int fd_;
  std::atomic<uint64_t> size_;
};

}  // namespace juke::node
