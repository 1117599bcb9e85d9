#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace juke::storage {

// Reader-writer locks named by strings (a chunk key, a volume id), created
// on first use and dropped when nobody holds or waits for them, so the
// table stays as small as the set of busy names. Thread-safe.
class LockTable {
 public:
  // Holds the named lock until destroyed.
  class Handle {
   public:
    Handle(Handle&& other) noexcept
        : table_(other.table_), entry_(other.entry_), shared_(other.shared_) {
      other.table_ = nullptr;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle& operator=(Handle&&) = delete;
    ~Handle() {
      if (table_ != nullptr) table_->Release(entry_, shared_);
    }

   private:
    friend class LockTable;
    Handle(LockTable* table, void* entry, bool shared)
        : table_(table), entry_(entry), shared_(shared) {}

    LockTable* table_;
    void* entry_;
    bool shared_;
  };

  // Blocks until the lock named `name` is held exclusively.
  Handle Lock(absl::string_view name) { return Acquire(name, false); }
  // Blocks until the lock named `name` is held shared.
  Handle LockShared(absl::string_view name) { return Acquire(name, true); }

 private:
  struct Entry {
    std::string name;
    absl::Mutex mu;
    int users = 0;  // holders and waiters; guarded by the table's mu_
  };

  Handle Acquire(absl::string_view name, bool shared) {
    Entry* entry;
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(name);
      if (it == entries_.end()) {
        auto created = std::make_unique<Entry>();
        created->name.assign(name.data(), name.size());
        it = entries_.emplace(created->name, std::move(created)).first;
      }
      entry = it->second.get();
      ++entry->users;
    }
    if (shared) {
      entry->mu.ReaderLock();
    } else {
      entry->mu.Lock();
    }
    return Handle(this, entry, shared);
  }

  void Release(void* opaque, bool shared) {
    auto* entry = static_cast<Entry*>(opaque);
    if (shared) {
      entry->mu.ReaderUnlock();
    } else {
      entry->mu.Unlock();
    }
    absl::MutexLock lock(&mu_);
    if (--entry->users == 0) entries_.erase(entries_.find(entry->name));
  }

  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> entries_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace juke::storage
