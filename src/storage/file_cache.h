#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "src/storage/file_system.h"

namespace juke::storage {

// Open chunk files by file number, at most `capacity` of them; the least
// recently used is closed first. A file handed out stays open for its
// holder after eviction. Thread-safe.
class FileCache {
 public:
  FileCache(FileSystem* fs, size_t capacity) : fs_(fs), capacity_(capacity) {}

  // The open file `number`, opening `path` when it is not cached.
  absl::StatusOr<std::shared_ptr<File>> Get(uint64_t number,
                                            const std::string& path) {
    {
      absl::MutexLock lock(&mu_);
      auto it = files_.find(number);
      if (it != files_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.second);
        return it->second.first;
      }
    }

    // Opened without the lock: opening may create the file and sync its
    // directory. Two callers may race here; the first one cached wins.
    absl::StatusOr<std::unique_ptr<File>> opened = fs_->OpenFile(path);
    if (!opened.ok()) return opened.status();
    std::shared_ptr<File> file = std::move(*opened);

    absl::MutexLock lock(&mu_);
    auto it = files_.find(number);
    if (it != files_.end()) return it->second.first;
    lru_.push_front(number);
    files_.emplace(number, std::make_pair(file, lru_.begin()));
    while (files_.size() > capacity_) {
      files_.erase(lru_.back());
      lru_.pop_back();
    }
    return file;
  }

  // Forgets file `number`; it closes when its last holder lets go.
  void Erase(uint64_t number) {
    absl::MutexLock lock(&mu_);
    auto it = files_.find(number);
    if (it == files_.end()) return;
    lru_.erase(it->second.second);
    files_.erase(it);
  }

 private:
  FileSystem* const fs_;
  const size_t capacity_;
  absl::Mutex mu_;
  std::list<uint64_t> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  std::map<uint64_t,
           std::pair<std::shared_ptr<File>, std::list<uint64_t>::iterator>>
      files_ ABSL_GUARDED_BY(mu_);
};

}  // namespace juke::storage
