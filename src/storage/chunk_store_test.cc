#include "src/storage/chunk_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

#include "src/common/checksum.h"
#include "src/storage/fault_injecting_file_system.h"
#include "src/storage/test_util.h"

namespace juke::storage {
namespace {

using testing::NoSpaceRocksFileSystem;
using testing::Pattern;
using testing::TempDir;

constexpr uint64_t kMaxChunkSize = 1 << 20;

bool AllZero(std::span<const uint8_t> data) {
  return std::all_of(data.begin(), data.end(), [](uint8_t b) { return !b; });
}

class ChunkStoreTest : public ::testing::Test {
 protected:
  ChunkStoreOptions Options() {
    ChunkStoreOptions options;
    options.path = disk_;
    options.identity = {"pool-1", "host-a", "disk-0"};
    options.max_chunk_size = kMaxChunkSize;
    options.fs = &fs_;
    options.index_env = env_.get();
    return options;
  }

  // (Re)opens the store, closing the current one first.
  void Open() {
    store_.reset();
    auto store = ChunkStore::Open(Options());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  void SetUp() override { Open(); }

  absl::StatusOr<uint64_t> Write(const ChunkKey& key, uint64_t block,
                                 const std::vector<uint8_t>& data,
                                 uint64_t generation = 1) {
    return store_->Write(key, block * kBlockSize, data, BlockChecksums(data),
                         generation, std::nullopt);
  }

  // Reads `blocks` blocks from `block` on, expecting success.
  std::vector<uint8_t> ReadOk(const ChunkKey& key, uint64_t block,
                              size_t blocks) {
    auto result = store_->Read(key, block * kBlockSize, blocks * kBlockSize);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {};
    EXPECT_EQ(result->checksums, BlockChecksums(result->data));
    return result->data;
  }

  uint64_t VersionOf(const ChunkKey& key) {
    auto result = store_->Read(key, 0, kBlockSize);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->version : 0;
  }

  // The chunk files on disk.
  std::vector<std::string> ChunkFiles() {
    std::vector<std::string> files;
    for (const auto& entry :
         std::filesystem::directory_iterator(disk_ + "/chunks")) {
      files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  TempDir dir_;
  const std::string disk_ = dir_.path() + "/disk";
  std::unique_ptr<FileSystem> real_fs_ = NewUringFileSystem();
  FaultInjectingFileSystem fs_{real_fs_.get()};
  std::shared_ptr<NoSpaceRocksFileSystem> rocks_fs_ =
      std::make_shared<NoSpaceRocksFileSystem>();
  std::unique_ptr<rocksdb::Env> env_ = rocksdb::NewCompositeEnv(rocks_fs_);
  std::unique_ptr<ChunkStore> store_;
};

const ChunkKey kChunkA{"volume-a", 0, 0};
const ChunkKey kChunkB{"volume-b", 5, 0};

TEST_F(ChunkStoreTest, WriteThenReadReturnsTheData) {
  std::vector<uint8_t> data = Pattern(1, 4);
  auto version = Write(kChunkA, 2, data, 3);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 1u);

  auto result = store_->Read(kChunkA, 2 * kBlockSize, 4 * kBlockSize);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->data, data);
  EXPECT_EQ(result->checksums, BlockChecksums(data));
  EXPECT_EQ(result->version, 1u);
  EXPECT_EQ(result->generation, 3u);
}

TEST_F(ChunkStoreTest, UnwrittenBlocksOfASparseChunkReadAsZeros) {
  std::vector<uint8_t> data = Pattern(2, 1);
  ASSERT_TRUE(Write(kChunkA, 3, data).ok());

  auto result = store_->Read(kChunkA, 0, 8 * kBlockSize);
  ASSERT_TRUE(result.ok()) << result.status();
  std::span<const uint8_t> all(result->data);
  EXPECT_TRUE(AllZero(all.first(3 * kBlockSize)));
  EXPECT_TRUE(
      std::equal(data.begin(), data.end(), all.begin() + 3 * kBlockSize));
  EXPECT_TRUE(AllZero(all.subspan(4 * kBlockSize)));
  EXPECT_EQ(result->checksums[0], ZeroBlockChecksum());
  EXPECT_EQ(result->checksums[7], ZeroBlockChecksum());

  // Past the written size, up to the maximum chunk size: zeros too.
  auto tail = store_->Read(kChunkA, kMaxChunkSize - kBlockSize, kBlockSize);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_TRUE(AllZero(tail->data));
}

// The checksums alone are what a full read would return, without the
// data: the stored ones for written blocks, a zero block's for the rest.
TEST_F(ChunkStoreTest, ChecksumsAloneMatchWhatAReadReturns) {
  ASSERT_TRUE(Write(kChunkA, 3, Pattern(2, 2)).ok());
  auto read = store_->Read(kChunkA, 0, 8 * kBlockSize);
  auto sums = store_->ReadChecksums(kChunkA, 0, 8 * kBlockSize);
  ASSERT_TRUE(read.ok() && sums.ok()) << sums.status();
  EXPECT_TRUE(sums->data.empty());
  EXPECT_EQ(sums->checksums, read->checksums);
  EXPECT_EQ(sums->version, read->version);
  EXPECT_NE(sums->checksums[3], ZeroBlockChecksum());
  // The whole chunk in one call, and nothing for a chunk never written.
  auto whole = store_->ReadChecksums(kChunkA, 0, kMaxChunkSize);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->checksums.size(), kMaxChunkSize / kBlockSize);
  EXPECT_TRUE(
      absl::IsNotFound(store_->ReadChecksums(kChunkB, 0, kBlockSize).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->ReadChecksums(kChunkA, 1, kBlockSize).status()));
}

TEST_F(ChunkStoreTest, OverwriteRaisesVersionAndReplacesTheData) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 4)).ok());
  auto version = Write(kChunkA, 1, Pattern(2, 2));
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 2u);

  std::vector<uint8_t> expected = Pattern(1, 4);
  std::vector<uint8_t> patch = Pattern(2, 2);
  std::copy(patch.begin(), patch.end(), expected.begin() + kBlockSize);
  EXPECT_EQ(ReadOk(kChunkA, 0, 4), expected);
  EXPECT_EQ(VersionOf(kChunkA), 2u);
}

TEST_F(ChunkStoreTest, ConditionalWriteAppliesOnlyAtTheExpectedVersion) {
  std::vector<uint8_t> data = Pattern(3, 1);
  std::vector<uint32_t> sums = BlockChecksums(data);
  // Version 0 means "absent": a second create loses.
  ASSERT_EQ(*store_->Write(kChunkA, 0, data, sums, 1, 0), 1u);
  absl::StatusOr<uint64_t> again = store_->Write(kChunkA, 0, data, sums, 1, 0);
  EXPECT_TRUE(absl::IsAborted(again.status())) << again.status();

  ASSERT_TRUE(Write(kChunkA, 1, Pattern(4, 1)).ok());  // version 2
  std::vector<uint8_t> late = Pattern(5, 1);
  absl::StatusOr<uint64_t> stale =
      store_->Write(kChunkA, kBlockSize, late, BlockChecksums(late), 1, 1);
  EXPECT_TRUE(absl::IsAborted(stale.status())) << stale.status();
  EXPECT_EQ(VersionOf(kChunkA), 2u);
  EXPECT_EQ(ReadOk(kChunkA, 1, 1), Pattern(4, 1));

  EXPECT_EQ(
      *store_->Write(kChunkA, kBlockSize, late, BlockChecksums(late), 1, 2),
      3u);
  EXPECT_EQ(ReadOk(kChunkA, 1, 1), late);
}

TEST_F(ChunkStoreTest, ReopenKeepsDataVersionsAndCounts) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(2, 2)).ok());
  ASSERT_TRUE(Write(kChunkB, 4, Pattern(3, 1)).ok());
  Open();

  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(2, 2));
  EXPECT_EQ(VersionOf(kChunkA), 2u);
  EXPECT_EQ(ReadOk(kChunkB, 4, 1), Pattern(3, 1));
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunk_count, 2u);
  EXPECT_EQ(stats->used_bytes, 2 * kBlockSize + 5 * kBlockSize);

  // New chunks after a reopen get files of their own.
  ASSERT_TRUE(Write({"volume-c", 0, 0}, 0, Pattern(4, 1)).ok());
  EXPECT_EQ(ChunkFiles().size(), 3u);
  EXPECT_EQ(ReadOk(kChunkB, 4, 1), Pattern(3, 1));
}

TEST_F(ChunkStoreTest, ReadFailsWithDataLossWhenBlockCorrupted) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 4)).ok());
  std::vector<std::string> files = ChunkFiles();
  ASSERT_EQ(files.size(), 1u);
  ASSERT_TRUE(Write(kChunkB, 0, Pattern(2, 4)).ok());

  // Flip one byte of block 2 of chunk A behind the store's back.
  int fd = open(files[0].c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t byte;
  off_t where = 2 * kBlockSize + 17;
  ASSERT_EQ(pread(fd, &byte, 1, where), 1);
  byte ^= 0x40;
  ASSERT_EQ(pwrite(fd, &byte, 1, where), 1);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);

  auto bad = store_->Read(kChunkA, 0, 4 * kBlockSize);
  EXPECT_TRUE(absl::IsDataLoss(bad.status())) << bad.status();
  EXPECT_TRUE(absl::StrContains(bad.status().message(),
                                "checksum mismatch chunk volume-a/0/0 block 2"))
      << bad.status();
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->checksum_failures, 1u);

  // The good blocks of the chunk and the other chunk still read.
  std::vector<uint8_t> good = Pattern(1, 4);
  good.resize(2 * kBlockSize);
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), good);
  EXPECT_EQ(ReadOk(kChunkB, 0, 4), Pattern(2, 4));
  EXPECT_EQ(store_->Stats()->checksum_failures, 1u);
}

TEST_F(ChunkStoreTest, WrongChecksumInRequestIsDataLossAndWritesNothing) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  std::vector<uint8_t> data = Pattern(2, 2);
  std::vector<uint32_t> sums = BlockChecksums(data);
  sums[1] ^= 1;

  absl::StatusOr<uint64_t> existing =
      store_->Write(kChunkA, 0, data, sums, 1, std::nullopt);
  EXPECT_TRUE(absl::IsDataLoss(existing.status())) << existing.status();
  EXPECT_EQ(VersionOf(kChunkA), 1u);
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(1, 2));

  absl::StatusOr<uint64_t> fresh =
      store_->Write(kChunkB, 0, data, sums, 1, std::nullopt);
  EXPECT_TRUE(absl::IsDataLoss(fresh.status())) << fresh.status();
  EXPECT_TRUE(absl::IsNotFound(store_->Read(kChunkB, 0, kBlockSize).status()));
  EXPECT_EQ(ChunkFiles().size(), 1u);
}

TEST_F(ChunkStoreTest, TornChunkFileWriteIsCompletedByJournalReplay) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 4)).ok());

  // The chunk file write tears halfway into its second block, and the disk
  // is gone from then on: a crash.
  FaultRule tear;
  tear.op = FaultOp::kWrite;
  tear.tear_bytes = kBlockSize + 1000;
  fs_.AddRule(tear);
  absl::StatusOr<uint64_t> torn = Write(kChunkA, 0, Pattern(2, 4));
  EXPECT_FALSE(torn.ok());
  EXPECT_TRUE(fs_.crashed());

  // Restart on a working disk.
  fs_.Reset();
  Open();
  EXPECT_EQ(ReadOk(kChunkA, 0, 4), Pattern(2, 4));
  EXPECT_EQ(VersionOf(kChunkA), 2u);
}

TEST_F(ChunkStoreTest, WriteFailingBeforeTheJournalCommitLeavesOldContent) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  // A fresh store has no open files, so the write must open the chunk file,
  // which it does before committing anything.
  Open();
  fs_.FailNth(FaultOp::kOpen, 1, EIO);
  absl::StatusOr<uint64_t> failed = Write(kChunkA, 0, Pattern(2, 2));
  EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(1, 2));
  EXPECT_EQ(VersionOf(kChunkA), 1u);

  fs_.FailNth(FaultOp::kOpen, 1, EIO);
  failed = Write(kChunkB, 0, Pattern(3, 1));
  EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
  EXPECT_TRUE(absl::IsNotFound(store_->Read(kChunkB, 0, kBlockSize).status()));

  // And after a restart nothing of either failed write appears.
  Open();
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(1, 2));
  EXPECT_TRUE(absl::IsNotFound(store_->Read(kChunkB, 0, kBlockSize).status()));
}

TEST_F(ChunkStoreTest, FullChunkFileIsResourceExhaustedAndSparesOtherChunks) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  ASSERT_TRUE(Write(kChunkB, 0, Pattern(2, 2)).ok());

  fs_.FailAlways(FaultOp::kWrite, ENOSPC);
  absl::StatusOr<uint64_t> full = Write(kChunkA, 0, Pattern(3, 2));
  EXPECT_TRUE(absl::IsResourceExhausted(full.status())) << full.status();
  EXPECT_TRUE(absl::StrContains(full.status().message(), "No space left"))
      << full.status();
  EXPECT_TRUE(absl::StrContains(full.status().message(), "journal"))
      << full.status();

  // Other chunks read fine meanwhile; the failed one cannot be served until
  // its write lands.
  EXPECT_EQ(ReadOk(kChunkB, 0, 2), Pattern(2, 2));
  EXPECT_TRUE(
      absl::IsResourceExhausted(store_->Read(kChunkA, 0, kBlockSize).status()));
  EXPECT_GE(store_->Stats()->io_errors, 1u);

  // Space is back: the journaled write is applied, and writes work again.
  fs_.Reset();
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(3, 2));
  EXPECT_EQ(VersionOf(kChunkA), 2u);
  ASSERT_TRUE(Write(kChunkB, 0, Pattern(4, 2)).ok());
  EXPECT_EQ(ReadOk(kChunkB, 0, 2), Pattern(4, 2));
}

TEST_F(ChunkStoreTest, FailedSyncIsUnavailableAndAppliedOnReopen) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  ASSERT_TRUE(Write(kChunkB, 0, Pattern(2, 2)).ok());

  fs_.FailAlways(FaultOp::kSync, EIO);
  absl::StatusOr<uint64_t> failed = Write(kChunkA, 0, Pattern(3, 2));
  EXPECT_TRUE(absl::IsUnavailable(failed.status())) << failed.status();
  EXPECT_EQ(ReadOk(kChunkB, 0, 2), Pattern(2, 2));

  fs_.Reset();
  Open();
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(3, 2));
  EXPECT_EQ(ReadOk(kChunkB, 0, 2), Pattern(2, 2));
}

TEST_F(ChunkStoreTest, DeletingAChunkWithAPendingWriteDropsTheWrite) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  fs_.FailAlways(FaultOp::kWrite, EIO);
  EXPECT_TRUE(absl::IsUnavailable(Write(kChunkA, 0, Pattern(2, 2)).status()));
  fs_.Reset();

  ASSERT_TRUE(store_->Delete(kChunkA, 1).ok());
  Open();
  EXPECT_TRUE(absl::IsNotFound(store_->Read(kChunkA, 0, kBlockSize).status()));
  EXPECT_TRUE(ChunkFiles().empty());
}

TEST_F(ChunkStoreTest, FullIndexIsResourceExhaustedAndChangesNothing) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  ASSERT_TRUE(Write(kChunkB, 0, Pattern(2, 2)).ok());

  rocks_fs_->full = true;
  absl::StatusOr<uint64_t> full = Write(kChunkA, 0, Pattern(3, 2));
  EXPECT_TRUE(absl::IsResourceExhausted(full.status())) << full.status();
  rocks_fs_->full = false;

  // Reads go on; writes wait for a reopen (ChunkIndex::Commit says why).
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(1, 2));
  EXPECT_EQ(VersionOf(kChunkA), 1u);
  EXPECT_EQ(ReadOk(kChunkB, 0, 2), Pattern(2, 2));
  absl::StatusOr<uint64_t> refused =
      Write({"volume-c", 0, 0}, 0, Pattern(4, 1));
  EXPECT_TRUE(absl::IsUnavailable(refused.status())) << refused.status();
  EXPECT_TRUE(absl::IsNotFound(
      store_->Read({"volume-c", 0, 0}, 0, kBlockSize).status()));
  EXPECT_EQ(ChunkFiles().size(), 2u);

  Open();
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(1, 2));
  EXPECT_EQ(ReadOk(kChunkB, 0, 2), Pattern(2, 2));
  auto version = Write(kChunkA, 0, Pattern(5, 2));
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 2u);
  EXPECT_EQ(ReadOk(kChunkA, 0, 2), Pattern(5, 2));
}

TEST_F(ChunkStoreTest, FencesRejectLowerGenerationsAndSurviveReopen) {
  const std::string volume = kChunkA.volume_id;
  auto fence = store_->Fence(volume, 5);
  ASSERT_TRUE(fence.ok());
  EXPECT_EQ(*fence, 5u);

  absl::StatusOr<uint64_t> fenced = Write(kChunkA, 0, Pattern(1, 1), 4);
  EXPECT_TRUE(absl::IsFailedPrecondition(fenced.status()));
  EXPECT_TRUE(absl::StrContains(fenced.status().message(),
                                "fenced: generation 4 below 5"))
      << fenced.status();
  EXPECT_TRUE(absl::IsNotFound(store_->Read(kChunkA, 0, kBlockSize).status()));

  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 1), 5).ok());
  EXPECT_EQ(store_->FenceOf(volume), 5u);
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(2, 1), 7).ok());
  EXPECT_EQ(store_->FenceOf(volume), 7u);
  fence = store_->Fence(volume, 6);
  ASSERT_TRUE(fence.ok());
  EXPECT_EQ(*fence, 7u);
  EXPECT_EQ(store_->FenceOf(kChunkB.volume_id), 0u);

  Open();
  EXPECT_EQ(store_->FenceOf(volume), 7u);
  EXPECT_TRUE(
      absl::IsFailedPrecondition(Write(kChunkA, 0, Pattern(3, 1), 6).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Delete(kChunkA, 6)));
  EXPECT_EQ(ReadOk(kChunkA, 0, 1), Pattern(2, 1));
  EXPECT_TRUE(store_->Delete(kChunkA, 7).ok());
  // Other volumes are not fenced by it.
  EXPECT_TRUE(Write(kChunkB, 0, Pattern(4, 1), 1).ok());
}

TEST_F(ChunkStoreTest, DeleteRemovesTheChunkAndItsFile) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  ASSERT_TRUE(Write(kChunkB, 0, Pattern(2, 3)).ok());
  ASSERT_EQ(ChunkFiles().size(), 2u);

  ASSERT_TRUE(store_->Delete(kChunkA, 1).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Read(kChunkA, 0, kBlockSize).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->Delete(kChunkA, 1)));
  EXPECT_EQ(ChunkFiles().size(), 1u);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunk_count, 1u);
  EXPECT_EQ(stats->used_bytes, 3 * kBlockSize);

  // Written again, it starts over.
  auto version = Write(kChunkA, 0, Pattern(3, 1));
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 1u);
  EXPECT_EQ(ReadOk(kChunkA, 0, 2).size(), 2 * kBlockSize);
}

TEST_F(ChunkStoreTest, DeleteWhoseFileRemovalFailsFinishesOnReopen) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 2)).ok());
  fs_.FailNth(FaultOp::kRemove, 1, EIO);
  ASSERT_TRUE(store_->Delete(kChunkA, 1).ok());
  EXPECT_EQ(ChunkFiles().size(), 1u);
  EXPECT_TRUE(absl::IsNotFound(store_->Read(kChunkA, 0, kBlockSize).status()));

  Open();
  EXPECT_EQ(ChunkFiles().size(), 0u);
}

TEST_F(ChunkStoreTest, StatsReportSpaceChunksAndBytes) {
  ASSERT_TRUE(Write(kChunkA, 1, Pattern(1, 2)).ok());
  ASSERT_TRUE(Write(kChunkB, 0, Pattern(2, 1)).ok());
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->capacity_bytes, 0u);
  EXPECT_LE(stats->available_bytes, stats->capacity_bytes);
  EXPECT_EQ(stats->chunk_count, 2u);
  EXPECT_EQ(stats->used_bytes, 4 * kBlockSize);
  EXPECT_EQ(stats->checksum_failures, 0u);
  EXPECT_EQ(stats->io_errors, 0u);
}

TEST_F(ChunkStoreTest, OpenRefusesADiskOfAnotherHost) {
  store_.reset();
  ChunkStoreOptions options = Options();
  options.identity.host_id = "host-b";
  auto store = ChunkStore::Open(options);
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(), "host_id=host-b"));
  EXPECT_TRUE(absl::StrContains(store.status().message(), "host_id=host-a"));
}

TEST_F(ChunkStoreTest, OpenRefusesADiskOfAnotherPool) {
  store_.reset();
  ChunkStoreOptions options = Options();
  options.identity.pool_id = "pool-2";
  auto store = ChunkStore::Open(options);
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(), "pool_id=pool-2"));
}

TEST_F(ChunkStoreTest, OpenRefusesAWipedLabelOverExistingData) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 1)).ok());
  store_.reset();
  ASSERT_TRUE(std::filesystem::remove(disk_ + "/LABEL"));
  auto store = ChunkStore::Open(Options());
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_TRUE(absl::StrContains(store.status().message(), "label missing"));
}

TEST_F(ChunkStoreTest, OpenWithoutLabelIsNotFoundUnlessCreating) {
  ChunkStoreOptions options = Options();
  options.path = dir_.path() + "/blank";
  options.create_if_missing = false;
  EXPECT_TRUE(absl::IsNotFound(ChunkStore::Open(options).status()));
  ASSERT_TRUE(std::filesystem::create_directory(options.path));
  EXPECT_TRUE(absl::IsNotFound(ChunkStore::Open(options).status()));
  options.create_if_missing = true;
  EXPECT_TRUE(ChunkStore::Open(options).ok());
}

TEST_F(ChunkStoreTest, WriteRejectsBadInputAndChangesNothing) {
  std::vector<uint8_t> block = Pattern(1, 1);
  std::vector<uint32_t> sums = BlockChecksums(block);
  auto invalid = [&](const ChunkKey& key, uint64_t offset,
                     std::span<const uint8_t> data,
                     std::span<const uint32_t> checksums) {
    absl::Status s =
        store_->Write(key, offset, data, checksums, 1, std::nullopt).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  };
  invalid(kChunkA, 100, block, sums);
  invalid(kChunkA, 0, std::span(block).first(100), sums);
  invalid(kChunkA, 0, {}, {});
  invalid(kChunkA, kMaxChunkSize, block, sums);
  std::vector<uint8_t> big = Pattern(2, kMaxChunkSize / kBlockSize + 1);
  invalid(kChunkA, 0, big, BlockChecksums(big));
  invalid(kChunkA, 0, block, {});
  invalid({"", 0, 0}, 0, block, sums);
  invalid({std::string("a\0b", 3), 0, 0}, 0, block, sums);
  invalid({std::string(257, 'v'), 0, 0}, 0, block, sums);

  EXPECT_TRUE(Write({std::string(256, 'v'), 0, 0}, 0, block).ok());
  EXPECT_TRUE(Write(kChunkA, kMaxChunkSize / kBlockSize - 1, block).ok());
  EXPECT_EQ(store_->Stats()->chunk_count, 2u);
}

TEST_F(ChunkStoreTest, OtherOperationsRejectBadInput) {
  ASSERT_TRUE(Write(kChunkA, 0, Pattern(1, 1)).ok());
  auto invalid = [](const absl::Status& s) {
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  };
  invalid(store_->Read(kChunkA, 1, kBlockSize).status());
  invalid(store_->Read(kChunkA, 0, 100).status());
  invalid(store_->Read(kChunkA, 0, 0).status());
  invalid(store_->Read(kChunkA, kMaxChunkSize - kBlockSize, 2 * kBlockSize)
              .status());
  invalid(store_->Read({"", 0, 0}, 0, kBlockSize).status());
  invalid(store_->Delete({std::string("\0", 1), 0, 0}, 1));
  invalid(store_->Fence("", 1).status());
  invalid(store_->Fence(std::string(257, 'v'), 1).status());
  invalid(store_->List(std::string("a\0", 2), 10, "").status());
  invalid(store_->List("", 1001, "").status());
}

TEST_F(ChunkStoreTest, ListPagesCoverEveryChunkExactlyOnceInKeyOrder) {
  std::vector<ChunkKey> written;
  for (const char* volume : {"v1", "v2", "v10"}) {
    for (uint64_t index = 0; index < 7; ++index) {
      ChunkKey key{volume, index * 3, 0};
      ASSERT_TRUE(Write(key, 0, Pattern(index, 1), 1).ok());
      written.push_back(key);
    }
  }
  // A snapshot's entries list among the live chunks, by epoch.
  ASSERT_TRUE(store_->Snapshot("v2", 1, 1).ok());
  for (uint64_t index = 0; index < 7; ++index) {
    written.push_back({"v2", index * 3, 1});
  }

  std::vector<ChunkKey> listed;
  std::string token;
  int pages = 0;
  do {
    auto page = store_->List("", 4, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->chunks.size(), 4u);
    for (const ChunkMeta& meta : page->chunks) {
      listed.push_back(meta.key);
      EXPECT_EQ(meta.version, 1u);
      EXPECT_EQ(meta.size, kBlockSize);
    }
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 7);  // 28 entries, 4 a page

  ASSERT_EQ(listed.size(), written.size());
  std::set<std::string> unique;
  for (size_t i = 0; i < listed.size(); ++i) {
    unique.insert(listed[i].volume_id + "/" + std::to_string(listed[i].index) +
                  "/" + std::to_string(listed[i].epoch));
    if (i > 0) {
      auto prev = std::tie(listed[i - 1].volume_id, listed[i - 1].index,
                           listed[i - 1].epoch);
      auto cur =
          std::tie(listed[i].volume_id, listed[i].index, listed[i].epoch);
      EXPECT_LT(prev, cur);
    }
  }
  EXPECT_EQ(unique.size(), written.size());

  // Page size 0 means the default, which holds them all.
  auto all = store_->List("", 0, "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->chunks.size(), written.size());
  EXPECT_TRUE(all->next_page_token.empty());
}

TEST_F(ChunkStoreTest, ListFiltersByVolume) {
  ASSERT_TRUE(Write({"a", 0, 0}, 0, Pattern(1, 1)).ok());
  ASSERT_TRUE(Write({"a", 1, 0}, 0, Pattern(2, 1)).ok());
  ASSERT_TRUE(Write({"ab", 0, 0}, 0, Pattern(3, 1)).ok());

  auto first = store_->List("a", 1, "");
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->chunks.size(), 1u);
  EXPECT_EQ(first->chunks[0].key, (ChunkKey{"a", 0, 0}));
  auto second = store_->List("a", 1, first->next_page_token);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->chunks.size(), 1u);
  EXPECT_EQ(second->chunks[0].key, (ChunkKey{"a", 1, 0}));
  EXPECT_TRUE(second->next_page_token.empty());

  auto none = store_->List("nothing", 10, "");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->chunks.empty());
}

TEST_F(ChunkStoreTest, ListRejectsPageTokensItDidNotHandOut) {
  ASSERT_TRUE(Write({"a", 0, 0}, 0, Pattern(1, 1)).ok());
  ASSERT_TRUE(Write({"a", 1, 0}, 0, Pattern(2, 1)).ok());
  ASSERT_TRUE(Write({"b", 0, 0}, 0, Pattern(3, 1)).ok());
  auto page = store_->List("a", 1, "");
  ASSERT_TRUE(page.ok());
  ASSERT_FALSE(page->next_page_token.empty());

  for (const std::string& token :
       {std::string("garbage"), std::string("abc"), std::string("zz"),
        std::string("00"), std::string("deadbeef"),
        page->next_page_token + "00"}) {
    absl::Status s = store_->List("", 10, token).status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << token << ": " << s;
  }
  // A token of volume a's listing does not continue volume b's.
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->List("b", 10, page->next_page_token).status()));
}

TEST_F(ChunkStoreTest, ConcurrentWritesToOneChunkAreSerialized) {
  constexpr int kThreads = 4;
  constexpr int kWrites = 10;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        // Each thread writes its own block of the shared chunk, and its own
        // chunk.
        EXPECT_TRUE(Write(kChunkA, t, Pattern(t * 100 + i, 1)).ok());
        EXPECT_TRUE(
            Write({"own", static_cast<uint64_t>(t), 0}, 0, Pattern(i, 2)).ok());
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(VersionOf(kChunkA), uint64_t{kThreads} * kWrites);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(ReadOk(kChunkA, t, 1), Pattern(t * 100 + kWrites - 1, 1));
    EXPECT_EQ(ReadOk({"own", static_cast<uint64_t>(t), 0}, 0, 2),
              Pattern(kWrites - 1, 2));
  }
}

}  // namespace
}  // namespace juke::storage
