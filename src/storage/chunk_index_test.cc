#include "src/storage/chunk_index.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "src/storage/test_util.h"

namespace juke::storage {
namespace {

using testing::NoSpaceRocksFileSystem;
using testing::TempDir;

std::unique_ptr<ChunkIndex> OpenIndex(const std::string& dir,
                                      rocksdb::Env* env = nullptr) {
  ChunkIndex::Options options;
  options.dir = dir;
  options.env = env;
  auto index = ChunkIndex::Open(options);
  EXPECT_TRUE(index.ok()) << index.status();
  return index.ok() ? *std::move(index) : nullptr;
}

TEST(ChunkIndexTest, ValidatesVolumeIds) {
  EXPECT_TRUE(ValidateVolumeId("v").ok());
  EXPECT_TRUE(ValidateVolumeId(std::string(256, 'x')).ok());
  EXPECT_TRUE(ValidateVolumeId("any\xff\x01 bytes/..").ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateVolumeId("")));
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateVolumeId(std::string(257, 'x'))));
  EXPECT_TRUE(
      absl::IsInvalidArgument(ValidateVolumeId(std::string("a\0b", 3))));
}

TEST(ChunkIndexTest, EncodedChunkKeysSortByVolumeThenIndexThenEpoch) {
  std::vector<ChunkKey> keys = {
      {"a", 0, 0},     {"a", 0, 1},  {"a", 1, 0}, {"a", 256, 0},
      {"a\x01", 0, 0}, {"ab", 0, 0}, {"b", 0, 0}, {"\xff", 0, 0},
  };
  for (size_t i = 1; i < keys.size(); ++i) {
    EXPECT_LT(EncodeChunkKey(keys[i - 1]), EncodeChunkKey(keys[i]))
        << "key " << i;
  }
  for (const ChunkKey& key : keys) {
    auto decoded = DecodeChunkKey(EncodeChunkKey(key));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, key);
  }
}

TEST(ChunkIndexTest, DecodeChunkKeyRejectsGarbage) {
  EXPECT_FALSE(DecodeChunkKey("").ok());
  EXPECT_FALSE(DecodeChunkKey("no-nul").ok());
  EXPECT_FALSE(DecodeChunkKey(std::string("v\0short", 7)).ok());
  EXPECT_FALSE(DecodeChunkKey(std::string(17, '\0')).ok());
}

TEST(ChunkIndexTest, ChunkRecordsAndBlockMapsRoundTrip) {
  TempDir dir;
  auto index = OpenIndex(dir.path());
  ASSERT_NE(index, nullptr);
  ChunkKey key{"vol", 3, 1};
  ChunkRecord record{7, 5 * kBlockSize, 2, 9};
  BlockMap blocks;
  blocks.Extend(5);
  blocks.written = {1, 0, 0, 1, 1};
  blocks.checksums = {11, 0, 0, 44, 55};

  IndexBatch batch;
  batch.PutChunk(key, record, blocks);
  ASSERT_TRUE(index->Commit(&batch, true).ok());

  auto got = index->GetChunk(key);
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->file_number, 7u);
  EXPECT_EQ((*got)->size, 5 * kBlockSize);
  EXPECT_EQ((*got)->version, 2u);
  EXPECT_EQ((*got)->generation, 9u);
  auto got_blocks = index->GetBlocks(key);
  ASSERT_TRUE(got_blocks.ok());
  EXPECT_EQ(got_blocks->written, blocks.written);
  EXPECT_EQ(got_blocks->checksums, blocks.checksums);

  auto absent = index->GetChunk({"vol", 4, 1});
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
}

TEST(ChunkIndexTest, ScanChunksStaysWithinTheVolume) {
  TempDir dir;
  auto index = OpenIndex(dir.path());
  ASSERT_NE(index, nullptr);
  IndexBatch batch;
  for (const char* volume : {"a", "ab", "b"}) {
    for (uint64_t i = 0; i < 3; ++i) {
      batch.PutChunk({volume, i, 0}, ChunkRecord{i + 1, 0, 1, 1}, BlockMap());
    }
  }
  ASSERT_TRUE(index->Commit(&batch, true).ok());

  auto a = index->ScanChunks("a", std::nullopt, 100);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 3u);
  for (auto& [key, record] : *a) EXPECT_EQ(key.volume_id, "a");

  auto after = index->ScanChunks("", ChunkKey{"a", 2, 0}, 2);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].first, (ChunkKey{"ab", 0, 0}));
  EXPECT_EQ((*after)[1].first, (ChunkKey{"ab", 1, 0}));
}

TEST(ChunkIndexTest, JournalFencesAndCountersSurviveReopen) {
  TempDir dir;
  {
    auto index = OpenIndex(dir.path());
    ASSERT_NE(index, nullptr);
    IndexBatch batch;
    std::vector<uint8_t> data(kBlockSize, 7);
    batch.PutJournal(10, {"v", 1, 0}, 4, kBlockSize, data);
    batch.PutJournal(2, {"w", 1, 0}, 5, 0, data);
    batch.PutFence("v", 12);
    batch.PutNextFileNumber(99);
    batch.PutPendingRemoval(3);
    ASSERT_TRUE(index->Commit(&batch, true).ok());
  }
  auto index = OpenIndex(dir.path());
  ASSERT_NE(index, nullptr);

  std::vector<uint64_t> sequences;
  ASSERT_TRUE(index
                  ->ForEachJournal([&](const JournalEntry& entry) {
                    sequences.push_back(entry.sequence);
                    EXPECT_EQ(entry.data, std::string(kBlockSize, 7));
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(sequences, (std::vector<uint64_t>{2, 10}));
  auto entry = index->GetJournal(10);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->key, (ChunkKey{"v", 1, 0}));
  EXPECT_EQ(entry->file_number, 4u);
  EXPECT_EQ(entry->offset, kBlockSize);

  std::vector<std::pair<std::string, uint64_t>> fences;
  ASSERT_TRUE(index
                  ->ForEachFence([&](absl::string_view v, uint64_t g) {
                    fences.emplace_back(std::string(v), g);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(fences, (std::vector<std::pair<std::string, uint64_t>>{{"v", 12}}));
  auto next = index->GetNextFileNumber();
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 99u);
  std::vector<uint64_t> removals;
  ASSERT_TRUE(index
                  ->ForEachPendingRemoval([&](uint64_t n) {
                    removals.push_back(n);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(removals, (std::vector<uint64_t>{3}));
}

TEST(ChunkIndexTest, FullDiskIsResourceExhaustedThenRefusesWritesTillReopen) {
  TempDir dir;
  auto rocks_fs = std::make_shared<NoSpaceRocksFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(rocks_fs);
  auto index = OpenIndex(dir.path(), env.get());
  ASSERT_NE(index, nullptr);
  IndexBatch before;
  before.PutFence("v", 1);
  ASSERT_TRUE(index->Commit(&before, true).ok());

  rocks_fs->full = true;
  IndexBatch batch;
  batch.PutFence("v", 2);
  absl::Status s = index->Commit(&batch, true);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;

  rocks_fs->full = false;
  IndexBatch retry;
  retry.PutFence("v", 3);
  s = index->Commit(&retry, true);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_NE(s.message().find("reopen"), std::string::npos) << s;
  EXPECT_TRUE(index->GetNextFileNumber().ok());

  index.reset();
  index = OpenIndex(dir.path(), env.get());
  ASSERT_NE(index, nullptr);
  std::vector<uint64_t> fences;
  ASSERT_TRUE(index
                  ->ForEachFence([&](absl::string_view, uint64_t g) {
                    fences.push_back(g);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(fences, std::vector<uint64_t>{1});
  IndexBatch after;
  after.PutFence("v", 4);
  EXPECT_TRUE(index->Commit(&after, true).ok());
}

}  // namespace
}  // namespace juke::storage
