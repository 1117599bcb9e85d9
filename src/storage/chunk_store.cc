#include "src/storage/chunk_store.h"

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "src/common/checksum.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/storage/chunk_index.h"
#include "src/storage/disk_chunk_store.h"
#include "src/storage/disk_label.h"

// Opening a disk: its label, its index, and recovery from a crash.
namespace juke::storage {
namespace {

absl::Status ValidateOptions(const ChunkStoreOptions& options) {
  if (options.fs == nullptr) {
    return absl::InvalidArgumentError("no file system given");
  }
  if (options.path.empty()) return absl::InvalidArgumentError("no path given");
  if (options.max_chunk_size == 0 || options.max_chunk_size % kBlockSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max chunk size ", options.max_chunk_size,
                     " is not a positive multiple of ", kBlockSize));
  }
  const DiskIdentity& id = options.identity;
  if (id.pool_id.empty() || id.host_id.empty() || id.disk_id.empty()) {
    return absl::InvalidArgumentError(
        "pool id, host id and disk id are all required");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DiskChunkStore::Recover() {
  JUKE_ASSIGN_OR_RETURN(uint64_t next_file, index_->GetNextFileNumber());
  {
    absl::MutexLock lock(&file_number_mu_);
    next_file_number_ = file_number_limit_ = next_file;
  }

  JUKE_RETURN_IF_ERROR(index_->ForEachFence(
      [this](absl::string_view volume_id, uint64_t generation) {
        absl::MutexLock lock(&mu_);
        fences_.insert_or_assign(std::string{volume_id}, generation);
        return absl::OkStatus();
      }));

  // Files of deleted chunks that a crash kept from being removed.
  IndexBatch removed;
  JUKE_RETURN_IF_ERROR(index_->ForEachPendingRemoval([&](uint64_t file_number) {
    absl::Status s = fs_->RemoveFile(FilePath(file_number));
    if (s.ok() || absl::IsNotFound(s)) {
      removed.DeletePendingRemoval(file_number);
    } else {
      JUKE_LOG_WARN(log_, "Cannot remove chunk file fileNumber={} err={}",
                    file_number, s);
    }
    return absl::OkStatus();
  }));
  JUKE_RETURN_IF_ERROR(index_->Commit(&removed, false));

  // Writes that were committed to the index but maybe not to their chunk
  // files. Applying one again is harmless, and they are replayed in the
  // order they were made.
  uint64_t replayed = 0;
  uint64_t last_sequence = 0;
  IndexBatch applied;
  JUKE_RETURN_IF_ERROR(
      index_->ForEachJournal([&](JournalEntry entry) -> absl::Status {
        last_sequence = entry.sequence;
        std::string name = EncodeChunkKey(entry.key);

        // Deleting a chunk drops its entries in the same batch, so this does
        // not happen; were it to, writing the data would resurrect a file.
        JUKE_ASSIGN_OR_RETURN(std::optional<ChunkRecord> record,
                              index_->GetChunk(entry.key));
        if (!record.has_value() || record->file_number != entry.file_number) {
          JUKE_LOG_WARN(log_,
                        "Dropping journal entry of a deleted chunk chunk={}",
                        ChunkName(entry.key));
          applied.DeleteJournal(entry.sequence);
          return absl::OkStatus();
        }

        // After an entry of a chunk that cannot be applied, the later ones of
        // that chunk wait for it.
        if (!HasPending(name)) {
          absl::Status s =
              Apply(entry.key, entry.file_number, entry.offset,
                    {reinterpret_cast<const uint8_t*>(entry.data.data()),
                     entry.data.size()});
          if (s.ok()) {
            applied.DeleteJournal(entry.sequence);
            ++replayed;
            return absl::OkStatus();
          }
        }
        absl::MutexLock lock(&mu_);
        pending_[name].push_back(entry.sequence);
        return absl::OkStatus();
      }));
  JUKE_RETURN_IF_ERROR(index_->Commit(&applied, false));

  JUKE_RETURN_IF_ERROR(RemoveOrphanFiles());

  uint64_t chunks = 0;
  uint64_t bytes = 0;
  JUKE_RETURN_IF_ERROR(
      index_->ForEachChunk([&](const ChunkKey&, const ChunkRecord& record) {
        ++chunks;
        bytes += record.size;
        return absl::OkStatus();
      }));

  absl::MutexLock lock(&mu_);
  next_sequence_ = last_sequence + 1;
  chunk_count_ = chunks;
  used_bytes_ = bytes;
  JUKE_LOG_INFO(log_,
                "Disk opened path={} diskID={} chunks={} replayedWrites={} "
                "pendingChunks={}",
                options_.path, options_.identity.disk_id, chunks, replayed,
                pending_.size());
  return absl::OkStatus();
}

absl::Status DiskChunkStore::RemoveOrphanFiles() {
  std::set<uint64_t> named;
  JUKE_RETURN_IF_ERROR(
      index_->ForEachChunk([&](const ChunkKey&, const ChunkRecord& record) {
        named.insert(record.file_number);
        return absl::OkStatus();
      }));
  const std::string dir = absl::StrCat(options_.path, "/chunks");
  JUKE_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir));
  uint64_t removed = 0;
  for (const std::string& name : names) {
    // Only names this store makes: twelve digits and ".chunk".
    absl::string_view digits(name);
    uint64_t number = 0;
    if (!absl::ConsumeSuffix(&digits, ".chunk") || digits.size() != 12 ||
        !absl::c_all_of(digits, absl::ascii_isdigit) ||
        !absl::SimpleAtoi(digits, &number) || named.count(number) > 0) {
      continue;
    }
    absl::Status s = fs_->RemoveFile(FilePath(number));
    if (!s.ok() && !absl::IsNotFound(s)) {
      JUKE_LOG_WARN(log_,
                    "Cannot remove orphan chunk file fileNumber={} err={}",
                    number, s);
      continue;
    }
    ++removed;
  }
  if (removed > 0) {
    JUKE_LOG_INFO(log_, "Orphan chunk files removed path={} files={}",
                  options_.path, removed);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChunkStore>> ChunkStore::Open(
    const ChunkStoreOptions& options) {
  const std::string context = absl::StrCat("open disk ", options.path);
  JUKE_RETURN_IF_ERROR(Annotate(ValidateOptions(options), context));
  JUKE_RETURN_IF_ERROR(LoadOrCreateDiskLabel(options.fs, options.path,
                                             options.identity,
                                             options.create_if_missing)
                           .status());
  JUKE_RETURN_IF_ERROR(Annotate(
      options.fs->CreateDirs(absl::StrCat(options.path, "/chunks")), context));
  JUKE_RETURN_IF_ERROR(Annotate(
      options.fs->CreateDirs(absl::StrCat(options.path, "/index")), context));

  ChunkIndex::Options index_options;
  index_options.dir = absl::StrCat(options.path, "/index");
  index_options.env = options.index_env;
  absl::StatusOr<std::unique_ptr<ChunkIndex>> index =
      ChunkIndex::Open(index_options);
  JUKE_RETURN_IF_ERROR(Annotate(index.status(), context));

  auto store = std::make_unique<DiskChunkStore>(options, *std::move(index));
  JUKE_RETURN_IF_ERROR(Annotate(store->Recover(), context));
  return store;
}

}  // namespace juke::storage
