#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// The seam between the chunk store and the disk, in the manner of leveldb's
// Env: every byte of chunk data goes through these two interfaces, so tests
// can swap in a FaultInjectingFileSystem that fails, tears or delays I/O.
namespace juke::storage {

// An open file. Thread-safe: concurrent ReadAt/WriteAt on disjoint ranges
// are allowed.
class File {
 public:
  virtual ~File() = default;

  // Reads exactly buf.size() bytes at `offset`; bytes past the end of the
  // file read as zeros. For direct I/O, offset, buf.size() and buf.data()
  // are multiples of kBlockSize.
  virtual absl::Status ReadAt(uint64_t offset, std::span<uint8_t> buf) = 0;

  // Writes all of `data` at `offset`. Not durable until Sync() returns.
  virtual absl::Status WriteAt(uint64_t offset,
                               std::span<const uint8_t> data) = 0;

  // Makes every completed write durable (fdatasync).
  virtual absl::Status Sync() = 0;
};

struct FileSystemStats {
  uint64_t capacity_bytes = 0;
  uint64_t available_bytes = 0;
  // Names the file system among all those of all machines: the boot id of
  // this machine and the device number. Empty when the boot id is unknown.
  std::string filesystem_id;
};

// Opens and manages files. Thread-safe.
class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path` for reading and writing, creating it when absent. Uses
  // direct I/O where the file system supports it. When the file is
  // created, its directory entry is durable before OpenFile returns.
  virtual absl::StatusOr<std::unique_ptr<File>> OpenFile(
      const std::string& path) = 0;
  // NotFound when absent.
  virtual absl::Status RemoveFile(const std::string& path) = 0;
  // Creates `path` and missing parents; OK when it exists.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  // Names of the entries of directory `path`, without "." and "..", in no
  // particular order. NotFound when the directory does not exist.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) = 0;
  virtual absl::StatusOr<FileSystemStats> Stat(const std::string& path) = 0;

  // Small whole-file helpers for metadata such as the disk label. WriteFile
  // replaces the file atomically (temporary file, fsync, rename, fsync dir).
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  virtual absl::Status WriteFile(const std::string& path,
                                 absl::string_view contents) = 0;
};

// The real file system: io_uring for chunk reads and writes, O_DIRECT where
// the underlying file system supports it (probed once per directory; tmpfs
// does not, and then buffered I/O with fdatasync is used and logged).
std::unique_ptr<FileSystem> NewUringFileSystem();

}  // namespace juke::storage
