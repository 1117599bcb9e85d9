#include "src/storage/chunk_index.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"

#include "src/common/status.h"

namespace juke::storage {
namespace {

// Every key starts with a tag byte naming its kind.
constexpr char kBlocksTag = 'b';
constexpr char kChunkTag = 'c';
constexpr char kPendingRemovalTag = 'd';
constexpr char kFenceTag = 'f';
constexpr char kJournalTag = 'j';
constexpr char kFileRefsTag = 'r';
constexpr char kNextFileNumberKey[] = "mnext_file_number";

// Every value that is more than one number starts with its format version.
constexpr uint8_t kValueFormat = 1;

// Converts RocksDB's status; the one place that does.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context) {
  if (s.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", s.ToString());
  if (s.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (s.IsNotFound()) return absl::NotFoundError(message);
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsIOError()) return absl::UnavailableError(message);
  if (s.IsBusy() || s.IsTryAgain()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

void PutBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>(v >> shift));
  }
}

uint64_t GetBigEndian64(absl::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

void PutFixed32(std::string* out, uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) {
    out->push_back(static_cast<char>(v >> shift));
  }
}

void PutFixed64(std::string* out, uint64_t v) {
  for (int shift = 0; shift < 64; shift += 8) {
    out->push_back(static_cast<char>(v >> shift));
  }
}

// Reads little-endian numbers and byte strings off the front of a value.
class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}

  bool U8(uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }

  bool Fixed32(uint32_t* v) {
    if (in_.size() < 4) return false;
    *v = 0;
    for (int i = 3; i >= 0; --i) *v = (*v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(4);
    return true;
  }

  bool Fixed64(uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = 0;
    for (int i = 7; i >= 0; --i) *v = (*v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(8);
    return true;
  }

  bool Bytes(size_t n, absl::string_view* v) {
    if (in_.size() < n) return false;
    *v = in_.substr(0, n);
    in_.remove_prefix(n);
    return true;
  }

  absl::string_view rest() const { return in_; }
  bool done() const { return in_.empty(); }

 private:
  absl::string_view in_;
};

absl::Status Corrupt(absl::string_view what, absl::string_view key) {
  return absl::DataLossError(absl::StrCat("index entry corrupt: ", what,
                                          " key=", absl::CHexEscape(key)));
}

std::string TaggedChunkKey(char tag, const ChunkKey& key) {
  std::string out(1, tag);
  out += EncodeChunkKey(key);
  return out;
}

std::string JournalKey(uint64_t sequence) {
  std::string out(1, kJournalTag);
  PutBigEndian64(&out, sequence);
  return out;
}

std::string PendingRemovalKey(uint64_t file_number) {
  std::string out(1, kPendingRemovalTag);
  PutBigEndian64(&out, file_number);
  return out;
}

std::string FileRefsKey(uint64_t file_number) {
  std::string out(1, kFileRefsTag);
  PutBigEndian64(&out, file_number);
  return out;
}

std::string FenceKey(absl::string_view volume_id) {
  return absl::StrCat(absl::string_view(&kFenceTag, 1),
                      VolumePrefix(volume_id));
}

absl::StatusOr<ChunkRecord> DecodeChunkRecord(absl::string_view key,
                                              absl::string_view value) {
  Reader r(value);
  uint8_t format;
  ChunkRecord record;
  if (!r.U8(&format) || format != kValueFormat ||
      !r.Fixed64(&record.file_number) || !r.Fixed64(&record.size) ||
      !r.Fixed64(&record.version) || !r.Fixed64(&record.generation) ||
      !r.done()) {
    return Corrupt("chunk record", key);
  }
  return record;
}

absl::StatusOr<JournalEntry> DecodeJournal(absl::string_view key,
                                           absl::string_view value) {
  JournalEntry entry;
  Reader r(value);
  uint8_t format;
  uint32_t key_size;
  absl::string_view chunk_key;
  if (key.size() != 9 || !r.U8(&format) || format != kValueFormat ||
      !r.Fixed32(&key_size) || !r.Bytes(key_size, &chunk_key) ||
      !r.Fixed64(&entry.file_number) || !r.Fixed64(&entry.offset)) {
    return Corrupt("journal record", key);
  }
  absl::StatusOr<ChunkKey> decoded = DecodeChunkKey(chunk_key);
  if (!decoded.ok()) return Corrupt("journal chunk key", key);
  entry.sequence = GetBigEndian64(key.substr(1));
  entry.key = *std::move(decoded);
  entry.data.assign(r.rest().data(), r.rest().size());
  return entry;
}

// Once a write failed, RocksDB would retry it from a thread of its own (for
// a full disk). The index is fail-stop instead (see Commit), so that retry
// is turned off.
class NoAutoRecovery : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason,
                            rocksdb::Status bg_error,
                            bool* auto_recovery) override {
    bg_error.PermitUncheckedError();
    *auto_recovery = false;
  }
};

absl::string_view AsView(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace

absl::Status ValidateVolumeId(absl::string_view volume_id) {
  if (volume_id.empty() || volume_id.size() > kMaxVolumeIdSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("volume id must be 1 to ", kMaxVolumeIdSize,
                     " bytes, got ", volume_id.size()));
  }
  if (absl::StrContains(volume_id, '\0')) {
    return absl::InvalidArgumentError("volume id must not contain NUL bytes");
  }
  return absl::OkStatus();
}

std::string VolumePrefix(absl::string_view volume_id) {
  std::string out(volume_id);
  out.push_back('\0');
  return out;
}

std::string EncodeChunkKey(const ChunkKey& key) {
  std::string out = VolumePrefix(key.volume_id);
  PutBigEndian64(&out, key.index);
  PutBigEndian64(&out, key.epoch);
  return out;
}

absl::StatusOr<ChunkKey> DecodeChunkKey(absl::string_view encoded) {
  size_t nul = encoded.find('\0');
  if (nul == absl::string_view::npos || encoded.size() != nul + 17 ||
      !ValidateVolumeId(encoded.substr(0, nul)).ok()) {
    return absl::InvalidArgumentError("not an encoded chunk key");
  }
  ChunkKey key;
  key.volume_id.assign(encoded.data(), nul);
  key.index = GetBigEndian64(encoded.substr(nul + 1));
  key.epoch = GetBigEndian64(encoded.substr(nul + 9));
  return key;
}

void BlockMap::Extend(size_t blocks) {
  if (blocks <= checksums.size()) return;
  written.resize(blocks, 0);
  checksums.resize(blocks, 0);
}

void IndexBatch::PutChunk(const ChunkKey& key, const ChunkRecord& record,
                          const BlockMap& blocks) {
  std::string value(1, static_cast<char>(kValueFormat));
  PutFixed64(&value, record.file_number);
  PutFixed64(&value, record.size);
  PutFixed64(&value, record.version);
  PutFixed64(&value, record.generation);
  batch_.Put(TaggedChunkKey(kChunkTag, key), value);

  // Blocks: count, a bitmap of written blocks, then every checksum.
  std::string map(1, static_cast<char>(kValueFormat));
  PutFixed32(&map, static_cast<uint32_t>(blocks.blocks()));
  std::string bitmap((blocks.blocks() + 7) / 8, '\0');
  for (size_t i = 0; i < blocks.blocks(); ++i) {
    if (blocks.written[i]) bitmap[i / 8] |= static_cast<char>(1 << (i % 8));
  }
  map += bitmap;
  for (uint32_t sum : blocks.checksums) PutFixed32(&map, sum);
  batch_.Put(TaggedChunkKey(kBlocksTag, key), map);
}

void IndexBatch::DeleteChunk(const ChunkKey& key) {
  batch_.Delete(TaggedChunkKey(kChunkTag, key));
  batch_.Delete(TaggedChunkKey(kBlocksTag, key));
}

void IndexBatch::PutFence(absl::string_view volume_id, uint64_t generation) {
  std::string value;
  PutFixed64(&value, generation);
  batch_.Put(FenceKey(volume_id), value);
}

void IndexBatch::PutJournal(uint64_t sequence, const ChunkKey& key,
                            uint64_t file_number, uint64_t offset,
                            std::span<const uint8_t> data) {
  std::string encoded_key = EncodeChunkKey(key);
  std::string value(1, static_cast<char>(kValueFormat));
  value.reserve(1 + 4 + encoded_key.size() + 16 + data.size());
  PutFixed32(&value, static_cast<uint32_t>(encoded_key.size()));
  value += encoded_key;
  PutFixed64(&value, file_number);
  PutFixed64(&value, offset);
  value.append(reinterpret_cast<const char*>(data.data()), data.size());
  batch_.Put(JournalKey(sequence), value);
}

void IndexBatch::DeleteJournal(uint64_t sequence) {
  batch_.Delete(JournalKey(sequence));
}

void IndexBatch::PutNextFileNumber(uint64_t file_number) {
  std::string value;
  PutFixed64(&value, file_number);
  batch_.Put(kNextFileNumberKey, value);
}

void IndexBatch::PutPendingRemoval(uint64_t file_number) {
  batch_.Put(PendingRemovalKey(file_number), "");
}

void IndexBatch::DeletePendingRemoval(uint64_t file_number) {
  batch_.Delete(PendingRemovalKey(file_number));
}

void IndexBatch::PutFileRefs(uint64_t file_number, uint64_t refs) {
  if (refs < 2) {
    batch_.Delete(FileRefsKey(file_number));
    return;
  }
  std::string value;
  PutFixed64(&value, refs);
  batch_.Put(FileRefsKey(file_number), value);
}

ChunkIndex::ChunkIndex(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

ChunkIndex::~ChunkIndex() {
  // Close reports background errors; the store has already reported
  // whatever made them, so they are not repeated here.
  db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<ChunkIndex>> ChunkIndex::Open(
    const Options& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.keep_log_file_num = 4;
  db_options.max_log_file_size = 4 << 20;
  // Recover the WAL up to the first damaged record: every write the store
  // acknowledged was synced, so it comes before any damage.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.listeners.push_back(std::make_shared<NoAutoRecovery>());
  if (options.env != nullptr) db_options.env = options.env;

  rocksdb::DB* db = nullptr;
  JUKE_RETURN_IF_ERROR(
      FromRocks(rocksdb::DB::Open(db_options, options.dir, &db),
                absl::StrCat("open index ", options.dir)));
  return std::unique_ptr<ChunkIndex>(
      new ChunkIndex(std::unique_ptr<rocksdb::DB>(db)));
}

absl::Status ChunkIndex::Commit(IndexBatch* batch, bool sync) {
  {
    absl::MutexLock lock(&mu_);
    if (!failed_.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "index refuses writes since an earlier one failed (",
          failed_.message(), "); reopen the disk once the cause is fixed"));
    }
  }

  // Not under mu_: concurrent commits share RocksDB's group commit, and so
  // one log sync.
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  absl::Status s =
      FromRocks(db_->Write(write_options, &batch->batch_), "index write");
  if (!s.ok()) {
    absl::MutexLock lock(&mu_);
    if (failed_.ok()) failed_ = s;
  }
  return s;
}

absl::StatusOr<std::optional<ChunkRecord>> ChunkIndex::GetChunk(
    const ChunkKey& key) {
  std::string db_key = TaggedChunkKey(kChunkTag, key);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), db_key, &value);
  if (s.IsNotFound()) return std::nullopt;
  JUKE_RETURN_IF_ERROR(FromRocks(s, "index read"));
  return DecodeChunkRecord(db_key, value);
}

absl::StatusOr<BlockMap> ChunkIndex::GetBlocks(const ChunkKey& key) {
  std::string db_key = TaggedChunkKey(kBlocksTag, key);
  std::string value;
  JUKE_RETURN_IF_ERROR(FromRocks(
      db_->Get(rocksdb::ReadOptions(), db_key, &value), "index read"));

  Reader r(value);
  uint8_t format;
  uint32_t count;
  absl::string_view bitmap;
  if (!r.U8(&format) || format != kValueFormat || !r.Fixed32(&count) ||
      !r.Bytes((count + 7) / 8, &bitmap) || r.rest().size() != 4ull * count) {
    return Corrupt("block map", db_key);
  }
  BlockMap blocks;
  blocks.Extend(count);
  for (uint32_t i = 0; i < count; ++i) {
    blocks.written[i] = (static_cast<uint8_t>(bitmap[i / 8]) >> (i % 8)) & 1;
    r.Fixed32(&blocks.checksums[i]);
  }
  return blocks;
}

absl::StatusOr<JournalEntry> ChunkIndex::GetJournal(uint64_t sequence) {
  std::string db_key = JournalKey(sequence);
  std::string value;
  JUKE_RETURN_IF_ERROR(FromRocks(
      db_->Get(rocksdb::ReadOptions(), db_key, &value), "index read"));
  return DecodeJournal(db_key, value);
}

absl::StatusOr<uint64_t> ChunkIndex::GetNextFileNumber() {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), kNextFileNumberKey, &value);
  if (s.IsNotFound()) return 1;
  JUKE_RETURN_IF_ERROR(FromRocks(s, "index read"));
  Reader r(value);
  uint64_t next;
  if (!r.Fixed64(&next) || !r.done()) {
    return Corrupt("next file number", kNextFileNumberKey);
  }
  return next;
}

absl::StatusOr<uint64_t> ChunkIndex::GetFileRefs(uint64_t file_number) {
  std::string db_key = FileRefsKey(file_number);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), db_key, &value);
  if (s.IsNotFound()) return 1;
  JUKE_RETURN_IF_ERROR(FromRocks(s, "index read"));
  Reader r(value);
  uint64_t refs;
  if (!r.Fixed64(&refs) || !r.done() || refs < 2) {
    return Corrupt("file references", db_key);
  }
  return refs;
}

absl::StatusOr<std::vector<std::pair<ChunkKey, ChunkRecord>>>
ChunkIndex::ScanChunks(absl::string_view volume_id,
                       const std::optional<ChunkKey>& after, size_t limit) {
  std::string prefix(1, kChunkTag);
  if (!volume_id.empty()) prefix += VolumePrefix(volume_id);
  std::string start =
      after.has_value() ? TaggedChunkKey(kChunkTag, *after) : prefix;

  std::vector<std::pair<ChunkKey, ChunkRecord>> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    absl::string_view key = AsView(it->key());
    if (!absl::StartsWith(key, prefix)) break;
    if (after.has_value() && key == start) continue;
    absl::StatusOr<ChunkKey> chunk = DecodeChunkKey(key.substr(1));
    if (!chunk.ok()) return Corrupt("chunk key", key);
    JUKE_ASSIGN_OR_RETURN(ChunkRecord record,
                          DecodeChunkRecord(key, AsView(it->value())));
    out.emplace_back(*std::move(chunk), record);
  }
  JUKE_RETURN_IF_ERROR(FromRocks(it->status(), "index scan"));
  return out;
}

absl::Status ChunkIndex::ForEachWithPrefix(
    absl::string_view prefix,
    const std::function<absl::Status(absl::string_view, absl::string_view)>&
        fn) {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid();
       it->Next()) {
    absl::string_view key = AsView(it->key());
    if (!absl::StartsWith(key, prefix)) break;
    JUKE_RETURN_IF_ERROR(fn(key, AsView(it->value())));
  }
  return FromRocks(it->status(), "index scan");
}

absl::Status ChunkIndex::ForEachChunk(
    const std::function<absl::Status(const ChunkKey&, const ChunkRecord&)>&
        fn) {
  return ForEachWithPrefix(
      absl::string_view(&kChunkTag, 1),
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        absl::StatusOr<ChunkKey> chunk = DecodeChunkKey(key.substr(1));
        if (!chunk.ok()) return Corrupt("chunk key", key);
        JUKE_ASSIGN_OR_RETURN(ChunkRecord record,
                              DecodeChunkRecord(key, value));
        return fn(*chunk, record);
      });
}

absl::Status ChunkIndex::ForEachFence(
    const std::function<absl::Status(absl::string_view, uint64_t)>& fn) {
  return ForEachWithPrefix(
      absl::string_view(&kFenceTag, 1),
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        Reader r(value);
        uint64_t generation;
        if (key.size() < 3 || key.back() != '\0' || !r.Fixed64(&generation) ||
            !r.done()) {
          return Corrupt("fence", key);
        }
        return fn(key.substr(1, key.size() - 2), generation);
      });
}

absl::Status ChunkIndex::ForEachJournal(
    const std::function<absl::Status(JournalEntry)>& fn) {
  return ForEachWithPrefix(
      absl::string_view(&kJournalTag, 1),
      [&](absl::string_view key, absl::string_view value) -> absl::Status {
        JUKE_ASSIGN_OR_RETURN(JournalEntry entry, DecodeJournal(key, value));
        return fn(std::move(entry));
      });
}

absl::Status ChunkIndex::ForEachPendingRemoval(
    const std::function<absl::Status(uint64_t)>& fn) {
  return ForEachWithPrefix(
      absl::string_view(&kPendingRemovalTag, 1),
      [&](absl::string_view key, absl::string_view) -> absl::Status {
        if (key.size() != 9) return Corrupt("pending removal", key);
        return fn(GetBigEndian64(key.substr(1)));
      });
}

}  // namespace juke::storage
