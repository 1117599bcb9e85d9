#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "src/storage/file_system.h"

namespace juke::storage {

// The operations a fault rule can match.
enum class FaultOp {
  kOpen,     // FileSystem::OpenFile
  kRead,     // File::ReadAt
  kWrite,    // File::WriteAt
  kSync,     // File::Sync
  kRemove,   // FileSystem::RemoveFile
  kMetadata  // CreateDirs, ListDir, Stat, ReadFile, WriteFile
};

// One injected fault. A rule lets `skip` matching operations through, then
// fires on the next `count` of them (kForever: on every later one).
struct FaultRule {
  static constexpr uint64_t kForever = std::numeric_limits<uint64_t>::max();

  FaultOp op = FaultOp::kWrite;
  // Only operations on paths containing this; empty matches every path.
  std::string path_contains;
  uint64_t skip = 0;
  uint64_t count = 1;
  // errno the operation fails with (EIO, ENOSPC, ...); 0 lets it succeed,
  // which with `delay` makes a slow but working disk.
  int error = EIO;
  // Sleeps this long before the operation, whether it then fails or not.
  absl::Duration delay = absl::ZeroDuration();
  // Writes only: a torn write. The first `tear_bytes` bytes reach the file
  // (any byte count; a partial block is merged into the block on disk),
  // the write fails with `error`, and the file system is left crashed:
  // every later operation fails until Reset().
  std::optional<size_t> tear_bytes;
};

// A FileSystem that passes everything to another one, except for the
// faults tests ask for: failed operations, torn writes, a crash, delays.
// Faults are errno values turned into Status like the real file system
// does. Does not own `base`, which must outlive it and every file it opens.
// Thread-safe.
class FaultInjectingFileSystem : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem* base) : base_(base) {}

  void AddRule(FaultRule rule);
  // Drops every rule and ends the crashed state.
  void Reset();
  // True after a torn write, until Reset().
  bool crashed() const;
  // Operations that failed because of a rule or the crashed state.
  uint64_t injected_faults() const;

  // Shorthands: the nth (1-based) matching operation fails; every one does.
  void FailNth(FaultOp op, uint64_t n, int error,
               absl::string_view path_contains = "");
  void FailAlways(FaultOp op, int error, absl::string_view path_contains = "");

  absl::StatusOr<std::unique_ptr<File>> OpenFile(
      const std::string& path) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status CreateDirs(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) override;
  absl::StatusOr<FileSystemStats> Stat(const std::string& path) override;
  absl::StatusOr<std::string> ReadFile(const std::string& path) override;
  absl::Status WriteFile(const std::string& path,
                         absl::string_view contents) override;

  // What a rule decided for one operation. Public for the file wrapper.
  struct Decision {
    absl::Status status;  // the error to return instead, or OK
    absl::Duration delay = absl::ZeroDuration();
    std::optional<size_t> tear_bytes;
  };
  // Applies the rules to an operation on `path`, sleeps any delay, and says
  // how the operation must fail. Marks the file system crashed for a tear.
  Decision Check(FaultOp op, const std::string& path);

 private:
  struct RuleState {
    FaultRule rule;
    uint64_t seen = 0;  // matching operations so far
  };

  FileSystem* const base_;
  mutable absl::Mutex mu_;
  std::vector<RuleState> rules_ ABSL_GUARDED_BY(mu_);
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t injected_faults_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace juke::storage
