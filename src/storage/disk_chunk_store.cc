#include "src/storage/disk_chunk_store.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "src/common/checksum.h"
#include "src/common/status.h"

namespace juke::storage {
namespace {

constexpr uint32_t kMaxPageSize = 1000;
constexpr size_t kOpenFiles = 512;
// File numbers are reserved this many at a time, so that creating a chunk
// does not have to persist the counter (docs/chunk-store.md).
constexpr uint64_t kFileNumberReservation = 1024;

absl::Status CheckAligned(absl::string_view what, uint64_t value) {
  if (value % kBlockSize == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", value, " is not a multiple of ", kBlockSize));
}

// Page tokens are the hex of the last listed chunk's encoded key.
absl::StatusOr<ChunkKey> ParsePageToken(absl::string_view token,
                                        absl::string_view volume_id) {
  bool hex = token.size() % 2 == 0 &&
             std::all_of(token.begin(), token.end(),
                         [](char c) { return absl::ascii_isxdigit(c); });
  absl::StatusOr<ChunkKey> key = absl::InvalidArgumentError("not hex");
  if (hex) key = DecodeChunkKey(absl::HexStringToBytes(token));
  if (!key.ok() || (!volume_id.empty() && key->volume_id != volume_id)) {
    return absl::InvalidArgumentError(
        "page token was not handed out by this listing; start again with an "
        "empty token");
  }
  return key;
}

}  // namespace

std::string ChunkName(const ChunkKey& key) {
  return absl::StrCat(absl::CHexEscape(key.volume_id), "/", key.index, "/",
                      key.epoch);
}

DiskChunkStore::DiskChunkStore(const ChunkStoreOptions& options,
                               std::unique_ptr<ChunkIndex> index)
    : options_(options),
      fs_(options.fs),
      index_(std::move(index)),
      log_(GetLogger("storage")),
      files_(options.fs, kOpenFiles) {}

absl::Status DiskChunkStore::ValidateRange(uint64_t offset,
                                           uint64_t length) const {
  JUKE_RETURN_IF_ERROR(CheckAligned("offset", offset));
  JUKE_RETURN_IF_ERROR(CheckAligned("length", length));
  if (length == 0) return absl::InvalidArgumentError("length is zero");
  if (offset > options_.max_chunk_size ||
      length > options_.max_chunk_size - offset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offset ", offset, " plus length ", length,
        " exceeds the maximum chunk size ", options_.max_chunk_size));
  }
  return absl::OkStatus();
}

absl::Status DiskChunkStore::ValidateWrite(
    const ChunkKey& key, uint64_t offset, std::span<const uint8_t> data,
    std::span<const uint32_t> checksums,
    std::optional<uint64_t> expected_version) const {
  JUKE_RETURN_IF_ERROR(ValidateVolumeId(key.volume_id));
  if (key.epoch != 0 && !expected_version.has_value()) {
    return absl::InvalidArgumentError(
        "the chunk belongs to a snapshot, and snapshots are read-only; only "
        "a conditional write (expected_version) may copy one in");
  }
  if (data.empty()) return absl::InvalidArgumentError("data is empty");
  JUKE_RETURN_IF_ERROR(ValidateRange(offset, data.size()));
  size_t blocks = data.size() / kBlockSize;
  if (checksums.size() != blocks) {
    return absl::InvalidArgumentError(absl::StrCat("got ", checksums.size(),
                                                   " checksums for ", blocks,
                                                   " blocks of data"));
  }
  for (size_t i = 0; i < blocks; ++i) {
    uint32_t actual = Crc32c(data.subspan(i * kBlockSize, kBlockSize));
    if (actual != checksums[i]) {
      return absl::DataLossError(absl::StrFormat(
          "checksum mismatch in request block %d: sent %08x, data has %08x", i,
          checksums[i], actual));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> DiskChunkStore::AllocateFileNumber() {
  absl::MutexLock lock(&file_number_mu_);
  if (next_file_number_ == file_number_limit_) {
    IndexBatch batch;
    batch.PutNextFileNumber(file_number_limit_ + kFileNumberReservation);
    JUKE_RETURN_IF_ERROR(index_->Commit(&batch, true));
    file_number_limit_ += kFileNumberReservation;
  }
  return next_file_number_++;
}

absl::StatusOr<std::shared_ptr<File>> DiskChunkStore::OpenChunkFile(
    uint64_t file_number) {
  absl::StatusOr<std::shared_ptr<File>> file =
      files_.Get(file_number, FilePath(file_number));
  if (!file.ok()) ++io_errors_;
  return file;
}

absl::StatusOr<LockTable::Handle> DiskChunkStore::LockChunkFence(
    const ChunkKey& key, uint64_t generation, bool* raises) {
  if (key.epoch == 0) return LockFence(key.volume_id, generation, raises);
  *raises = false;
  return fence_locks_.LockShared(key.volume_id);
}

absl::StatusOr<LockTable::Handle> DiskChunkStore::LockFence(
    absl::string_view volume_id, uint64_t generation, bool* raises) {
  *raises = generation > FenceOf(volume_id);
  LockTable::Handle lock = *raises ? fence_locks_.Lock(volume_id)
                                   : fence_locks_.LockShared(volume_id);
  // Fences only rise, so a shared lock stays right; an exclusive one may
  // turn out not to be needed.
  uint64_t fence = FenceOf(volume_id);
  if (generation < fence) {
    return absl::FailedPreconditionError(
        absl::StrCat("fenced: generation ", generation, " below ", fence,
                     " for volume ", absl::CHexEscape(volume_id)));
  }
  *raises = generation > fence;
  return lock;
}

absl::Status DiskChunkStore::Apply(const ChunkKey& key, uint64_t file_number,
                                   uint64_t offset,
                                   std::span<const uint8_t> data) {
  absl::Status s;
  absl::StatusOr<std::shared_ptr<File>> file = OpenChunkFile(file_number);
  if (!file.ok()) {
    s = file.status();
  } else {
    s = (*file)->WriteAt(offset, data);
    if (s.ok()) s = (*file)->Sync();
    if (!s.ok()) ++io_errors_;
  }
  if (!s.ok()) {
    JUKE_LOG_ERROR(log_,
                   "Chunk file write failed, kept in journal chunk={} "
                   "fileNumber={} err={}",
                   ChunkName(key), file_number, s);
  }
  return s;
}

absl::Status DiskChunkStore::FinishPending(const std::string& name) {
  std::vector<uint64_t> sequences;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(name);
    if (it == pending_.end()) return absl::OkStatus();
    sequences = it->second;
  }

  for (uint64_t sequence : sequences) {
    JUKE_ASSIGN_OR_RETURN(JournalEntry entry, index_->GetJournal(sequence));
    JUKE_RETURN_IF_ERROR(Annotate(
        Apply(entry.key, entry.file_number, entry.offset,
              {reinterpret_cast<const uint8_t*>(entry.data.data()),
               entry.data.size()}),
        "an earlier write of the chunk is journaled but not yet in its file"));
    IndexBatch batch;
    batch.DeleteJournal(sequence);
    JUKE_RETURN_IF_ERROR(index_->Commit(&batch, false));

    absl::MutexLock lock(&mu_);
    std::vector<uint64_t>& left = pending_[name];
    left.erase(left.begin());
    if (left.empty()) pending_.erase(name);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> DiskChunkStore::Write(
    const ChunkKey& key, uint64_t offset, std::span<const uint8_t> data,
    std::span<const uint32_t> checksums, uint64_t generation,
    std::optional<uint64_t> expected_version) {
  const std::string context = absl::StrCat("write chunk ", ChunkName(key));
  JUKE_RETURN_IF_ERROR(Annotate(
      ValidateWrite(key, offset, data, checksums, expected_version), context));

  const std::string name = EncodeChunkKey(key);
  LockTable::Handle chunk_lock = chunk_locks_.Lock(name);
  JUKE_RETURN_IF_ERROR(Annotate(FinishPending(name), context));

  // The chunk's new index entry.
  absl::StatusOr<std::optional<ChunkRecord>> old = index_->GetChunk(key);
  JUKE_RETURN_IF_ERROR(Annotate(old.status(), context));
  ChunkRecord record = old->value_or(ChunkRecord{});
  if (expected_version.has_value() && record.version != *expected_version) {
    return absl::AbortedError(
        absl::StrCat(context, ": version is ", record.version, ", expected ",
                     *expected_version, "; a newer write got there first"));
  }
  BlockMap blocks;
  bool shared = false;
  if (old->has_value()) {
    absl::StatusOr<BlockMap> old_blocks = index_->GetBlocks(key);
    JUKE_RETURN_IF_ERROR(Annotate(old_blocks.status(), context));
    blocks = *std::move(old_blocks);
    // Only a snapshot taken under this chunk's lock adds a reference, so a
    // file named by this chunk alone stays so until the write is done.
    absl::StatusOr<uint64_t> refs = index_->GetFileRefs(record.file_number);
    JUKE_RETURN_IF_ERROR(Annotate(refs.status(), context));
    shared = *refs > 1;
  } else {
    absl::StatusOr<uint64_t> number = AllocateFileNumber();
    JUKE_RETURN_IF_ERROR(Annotate(number.status(), context));
    record.file_number = *number;
  }
  const uint64_t old_size = record.size;
  const BlockMap old_blocks = shared ? blocks : BlockMap();
  record.size = std::max(record.size, offset + data.size());
  record.version += 1;
  record.generation = generation;
  blocks.Extend(record.size / kBlockSize);
  for (size_t i = 0; i < checksums.size(); ++i) {
    blocks.written[offset / kBlockSize + i] = 1;
    blocks.checksums[offset / kBlockSize + i] = checksums[i];
  }
  if (shared) {
    absl::StatusOr<uint64_t> version = CopyOnWrite(
        key, **old, old_blocks, record, blocks, offset, data, generation);
    if (!version.ok()) return Annotate(version.status(), context);
    return version;
  }

  // Open the file before committing anything, so that a disk that cannot
  // even open it fails the write with nothing changed.
  absl::StatusOr<std::shared_ptr<File>> file =
      OpenChunkFile(record.file_number);
  JUKE_RETURN_IF_ERROR(Annotate(file.status(), context));

  // The commit point: journal entry, new index entry and raised fence in
  // one synced batch.
  uint64_t sequence;
  {
    bool raises;
    absl::StatusOr<LockTable::Handle> fence_lock =
        LockChunkFence(key, generation, &raises);
    JUKE_RETURN_IF_ERROR(Annotate(fence_lock.status(), context));
    {
      absl::MutexLock lock(&mu_);
      sequence = next_sequence_++;
    }
    IndexBatch batch;
    batch.PutJournal(sequence, key, record.file_number, offset, data);
    batch.PutChunk(key, record, blocks);
    if (raises) batch.PutFence(key.volume_id, generation);
    absl::Status committed = index_->Commit(&batch, true);
    if (!committed.ok()) {
      // A new chunk's file holds nothing yet; its number is never reused.
      if (!old->has_value()) {
        files_.Erase(record.file_number);
        fs_->RemoveFile(FilePath(record.file_number)).IgnoreError();
      }
      return Annotate(committed, context);
    }

    absl::MutexLock lock(&mu_);
    if (raises) fences_[key.volume_id] = generation;
    used_bytes_ += record.size - old_size;
    if (!old->has_value()) ++chunk_count_;
  }

  // Now the data file. Should this fail, the journal keeps the data and the
  // next read or write of the chunk, or the next Open, applies it again.
  absl::Status applied = Apply(key, record.file_number, offset, data);
  if (!applied.ok()) {
    absl::MutexLock lock(&mu_);
    pending_[name].push_back(sequence);
    return Annotate(applied,
                    absl::StrCat(context,
                                 ": committed to the journal but not to the "
                                 "chunk file; it will be applied when the "
                                 "disk allows"));
  }

  IndexBatch done;
  done.DeleteJournal(sequence);
  absl::Status dropped = index_->Commit(&done, false);
  if (!dropped.ok()) {
    // The write is durable; the entry is applied again before the chunk is
    // next used, which is harmless.
    JUKE_LOG_WARN(log_, "Cannot drop journal entry chunk={} err={}",
                  ChunkName(key), dropped);
    absl::MutexLock lock(&mu_);
    pending_[name].push_back(sequence);
  }
  return record.version;
}

absl::StatusOr<ReadResult> DiskChunkStore::Read(const ChunkKey& key,
                                                uint64_t offset,
                                                uint64_t length) {
  return ReadBlocks(key, offset, length, true);
}

absl::StatusOr<ReadResult> DiskChunkStore::ReadChecksums(const ChunkKey& key,
                                                         uint64_t offset,
                                                         uint64_t length) {
  return ReadBlocks(key, offset, length, false);
}

absl::StatusOr<ReadResult> DiskChunkStore::ReadBlocks(const ChunkKey& key,
                                                      uint64_t offset,
                                                      uint64_t length,
                                                      bool data) {
  const std::string context = absl::StrCat("read chunk ", ChunkName(key));
  JUKE_RETURN_IF_ERROR(Annotate(ValidateVolumeId(key.volume_id), context));
  JUKE_RETURN_IF_ERROR(Annotate(ValidateRange(offset, length), context));

  // Readers share the chunk's lock, unless a failed write must be finished
  // first.
  const std::string name = EncodeChunkKey(key);
  std::optional<LockTable::Handle> chunk_lock;
  chunk_lock.emplace(chunk_locks_.LockShared(name));
  if (HasPending(name)) {
    chunk_lock.reset();
    chunk_lock.emplace(chunk_locks_.Lock(name));
    JUKE_RETURN_IF_ERROR(Annotate(FinishPending(name), context));
  }

  absl::StatusOr<std::optional<ChunkRecord>> record = index_->GetChunk(key);
  JUKE_RETURN_IF_ERROR(Annotate(record.status(), context));
  if (!record->has_value()) {
    return absl::NotFoundError(absl::StrCat(context, ": no such chunk"));
  }
  absl::StatusOr<BlockMap> blocks = index_->GetBlocks(key);
  JUKE_RETURN_IF_ERROR(Annotate(blocks.status(), context));
  uint64_t file_number = (*record)->file_number;

  ReadResult result;
  result.version = (*record)->version;
  result.generation = (*record)->generation;
  if (!data) {
    result.checksums.resize(length / kBlockSize);
    for (size_t i = 0; i < result.checksums.size(); ++i) {
      size_t block = offset / kBlockSize + i;
      result.checksums[i] = block < blocks->blocks() && blocks->written[block]
                                ? blocks->checksums[block]
                                : ZeroBlockChecksum();
    }
    return result;
  }
  result.data.assign(length, 0);
  // Only the part below the chunk's size is read; the rest stays zeros.
  if (offset < (*record)->size) {
    uint64_t in_file = std::min(length, (*record)->size - offset);
    absl::StatusOr<std::shared_ptr<File>> file = OpenChunkFile(file_number);
    JUKE_RETURN_IF_ERROR(Annotate(file.status(), context));
    absl::Status s = (*file)->ReadAt(offset, {result.data.data(), in_file});
    if (!s.ok()) {
      ++io_errors_;
      return Annotate(s, context);
    }
  }

  result.checksums.resize(length / kBlockSize);
  for (size_t i = 0; i < result.checksums.size(); ++i) {
    size_t block = offset / kBlockSize + i;
    std::span<uint8_t> data(result.data.data() + i * kBlockSize, kBlockSize);
    if (block >= blocks->blocks() || !blocks->written[block]) {
      std::memset(data.data(), 0, kBlockSize);
      result.checksums[i] = ZeroBlockChecksum();
      continue;
    }
    uint32_t actual = Crc32c(data);
    if (actual != blocks->checksums[block]) {
      ++checksum_failures_;
      JUKE_LOG_ERROR(log_,
                     "Checksum mismatch chunk={} block={} fileNumber={} "
                     "stored={:08x} read={:08x}",
                     ChunkName(key), block, file_number,
                     blocks->checksums[block], actual);
      return absl::DataLossError(absl::StrFormat(
          "checksum mismatch chunk %s block %d (file %d): stored %08x, read "
          "%08x",
          ChunkName(key), block, file_number, blocks->checksums[block],
          actual));
    }
    result.checksums[i] = actual;
  }
  return result;
}

absl::Status DiskChunkStore::Delete(const ChunkKey& key, uint64_t generation) {
  const std::string context = absl::StrCat("delete chunk ", ChunkName(key));
  JUKE_RETURN_IF_ERROR(Annotate(ValidateVolumeId(key.volume_id), context));

  const std::string name = EncodeChunkKey(key);
  LockTable::Handle chunk_lock = chunk_locks_.Lock(name);
  std::vector<uint64_t> freed;
  {
    absl::MutexLock refs_lock(&refs_mu_);
    bool raises;
    absl::StatusOr<LockTable::Handle> fence_lock =
        LockChunkFence(key, generation, &raises);
    JUKE_RETURN_IF_ERROR(Annotate(fence_lock.status(), context));

    absl::StatusOr<std::optional<ChunkRecord>> record = index_->GetChunk(key);
    JUKE_RETURN_IF_ERROR(Annotate(record.status(), context));
    if (!record->has_value()) {
      return absl::NotFoundError(absl::StrCat(context, ": no such chunk"));
    }

    // The index entry goes, with any journal entries not yet applied; a
    // file no other entry names is recorded for removal, so that a crash
    // cannot leak it.
    IndexBatch batch;
    batch.DeleteChunk(key);
    absl::StatusOr<std::vector<uint64_t>> dropped =
        DropFileRefs({(*record)->file_number}, &batch);
    JUKE_RETURN_IF_ERROR(Annotate(dropped.status(), context));
    freed = *std::move(dropped);
    if (raises) batch.PutFence(key.volume_id, generation);
    {
      // The chunk's lock keeps its pending entries as they are.
      absl::MutexLock lock(&mu_);
      auto pending = pending_.find(name);
      if (pending != pending_.end()) {
        for (uint64_t sequence : pending->second) {
          batch.DeleteJournal(sequence);
        }
      }
    }
    JUKE_RETURN_IF_ERROR(Annotate(index_->Commit(&batch, true), context));

    absl::MutexLock lock(&mu_);
    pending_.erase(name);
    if (raises) fences_[key.volume_id] = generation;
    used_bytes_ -= (*record)->size;
    --chunk_count_;
  }
  RemoveFreedFiles(freed);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> DiskChunkStore::DropFileRefs(
    const std::vector<uint64_t>& files, IndexBatch* batch) {
  std::map<uint64_t, uint64_t> drops;
  for (uint64_t f : files) ++drops[f];
  std::vector<uint64_t> freed;
  for (const auto& [file_number, count] : drops) {
    JUKE_ASSIGN_OR_RETURN(uint64_t refs, index_->GetFileRefs(file_number));
    if (count >= refs) {
      batch->PutFileRefs(file_number, 0);
      batch->PutPendingRemoval(file_number);
      freed.push_back(file_number);
    } else {
      batch->PutFileRefs(file_number, refs - count);
    }
  }
  return freed;
}

void DiskChunkStore::RemoveFreedFiles(const std::vector<uint64_t>& files) {
  IndexBatch done;
  for (uint64_t file_number : files) {
    files_.Erase(file_number);
    absl::Status removed = fs_->RemoveFile(FilePath(file_number));
    if (!removed.ok() && !absl::IsNotFound(removed)) {
      // The entries are gone; only the space is not back yet.
      ++io_errors_;
      JUKE_LOG_WARN(log_, "Cannot remove chunk file fileNumber={} err={}",
                    file_number, removed);
      continue;
    }
    done.DeletePendingRemoval(file_number);
  }
  absl::Status dropped = index_->Commit(&done, false);
  if (!dropped.ok()) {
    JUKE_LOG_WARN(log_, "Cannot drop pending removals err={}", dropped);
  }
}

absl::StatusOr<ListResult> DiskChunkStore::List(absl::string_view volume_id,
                                                uint32_t page_size,
                                                absl::string_view page_token) {
  if (!volume_id.empty()) {
    JUKE_RETURN_IF_ERROR(Annotate(ValidateVolumeId(volume_id), "list chunks"));
  }
  if (page_size == 0) page_size = kMaxPageSize;
  if (page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "list chunks: page size ", page_size, " above ", kMaxPageSize));
  }
  std::optional<ChunkKey> after;
  if (!page_token.empty()) {
    absl::StatusOr<ChunkKey> key = ParsePageToken(page_token, volume_id);
    JUKE_RETURN_IF_ERROR(Annotate(key.status(), "list chunks"));
    after = *std::move(key);
  }

  // One more than asked tells whether another page follows.
  JUKE_ASSIGN_OR_RETURN(auto chunks,
                        index_->ScanChunks(volume_id, after, page_size + 1));
  ListResult result;
  bool more = chunks.size() > page_size;
  if (more) chunks.pop_back();
  for (auto& [key, record] : chunks) {
    result.chunks.push_back(ChunkMeta{std::move(key), record.size,
                                      record.version, record.generation});
  }
  if (more) {
    result.next_page_token =
        absl::BytesToHexString(EncodeChunkKey(result.chunks.back().key));
  }
  return result;
}

absl::StatusOr<uint64_t> DiskChunkStore::Fence(absl::string_view volume_id,
                                               uint64_t generation) {
  JUKE_RETURN_IF_ERROR(Annotate(ValidateVolumeId(volume_id), "fence"));
  LockTable::Handle fence_lock = fence_locks_.Lock(volume_id);
  uint64_t fence = FenceOf(volume_id);
  if (generation <= fence) return fence;

  IndexBatch batch;
  batch.PutFence(volume_id, generation);
  JUKE_RETURN_IF_ERROR(
      Annotate(index_->Commit(&batch, true),
               absl::StrCat("fence volume ", absl::CHexEscape(volume_id))));
  absl::MutexLock lock(&mu_);
  fences_.insert_or_assign(std::string{volume_id}, generation);
  JUKE_LOG_INFO(log_, "Volume fenced volumeID={} generation={}",
                absl::CHexEscape(volume_id), generation);
  return generation;
}

uint64_t DiskChunkStore::FenceOf(absl::string_view volume_id) {
  absl::MutexLock lock(&mu_);
  auto it = fences_.find(volume_id);
  return it == fences_.end() ? 0 : it->second;
}

absl::StatusOr<ChunkStoreStats> DiskChunkStore::Stats() {
  JUKE_ASSIGN_OR_RETURN(FileSystemStats fs_stats, fs_->Stat(options_.path));
  ChunkStoreStats stats;
  stats.capacity_bytes = fs_stats.capacity_bytes;
  stats.available_bytes = fs_stats.available_bytes;
  stats.filesystem_id = fs_stats.filesystem_id;
  stats.checksum_failures = checksum_failures_.load();
  stats.io_errors = io_errors_.load();
  absl::MutexLock lock(&mu_);
  stats.used_bytes = used_bytes_;
  stats.chunk_count = chunk_count_;
  return stats;
}

}  // namespace juke::storage
