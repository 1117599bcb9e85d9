// Snapshots in one disk's chunk store: shared files, copy-on-write, and
// what deleting the live chunks and the snapshot leaves behind.

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#include "src/common/checksum.h"
#include "src/storage/chunk_store.h"
#include "src/storage/fault_injecting_file_system.h"
#include "src/storage/test_util.h"

namespace juke::storage {
namespace {

using testing::NoSpaceRocksFileSystem;
using testing::Pattern;
using testing::TempDir;

constexpr uint64_t kSnap = 7;
const ChunkKey kLive0{"volume-a", 0, 0};
const ChunkKey kLive1{"volume-a", 1, 0};
const ChunkKey kSnap0{"volume-a", 0, kSnap};
const ChunkKey kSnap1{"volume-a", 1, kSnap};

class DiskSnapshotTest : public ::testing::Test {
 protected:
  void Open() {
    store_.reset();
    ChunkStoreOptions options;
    options.path = disk_;
    options.identity = {"pool-1", "host-a", "disk-0"};
    options.max_chunk_size = 1 << 20;
    options.fs = &fs_;
    options.index_env = env_.get();
    auto store = ChunkStore::Open(options);
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

  std::vector<uint8_t> ReadOk(const ChunkKey& key, uint64_t block,
                              size_t blocks) {
    auto result = store_->Read(key, block * kBlockSize, blocks * kBlockSize);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {};
    EXPECT_EQ(result->checksums, BlockChecksums(result->data));
    return result->data;
  }

  size_t ChunkFileCount() {
    size_t n = 0;
    for (const auto& entry :
         std::filesystem::directory_iterator(disk_ + "/chunks")) {
      (void)entry;
      ++n;
    }
    return n;
  }

  // Every entry of the store, all volumes and epochs.
  std::vector<ChunkMeta> Entries() {
    auto list = store_->List("", 0, "");
    EXPECT_TRUE(list.ok()) << list.status();
    return list.ok() ? list->chunks : std::vector<ChunkMeta>{};
  }

  // Two chunks of volume-a, four blocks each, then snapshot kSnap.
  void WriteAndSnapshot() {
    ASSERT_TRUE(Write(kLive0, 0, Pattern(1, 4)).ok());
    ASSERT_TRUE(Write(kLive1, 0, Pattern(2, 4)).ok());
    auto taken = store_->Snapshot("volume-a", kSnap, 1);
    ASSERT_TRUE(taken.ok()) << taken.status();
    EXPECT_EQ(*taken, 2u);
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

TEST_F(DiskSnapshotTest, SnapshotSharesFilesAndCopiesNothing) {
  WriteAndSnapshot();
  EXPECT_EQ(ChunkFileCount(), 2u);
  EXPECT_EQ(ReadOk(kSnap0, 0, 4), Pattern(1, 4));
  EXPECT_EQ(ReadOk(kSnap1, 0, 4), Pattern(2, 4));
  EXPECT_EQ(Entries().size(), 4u);

  // Taking it again adds nothing; another volume's chunks are not in it.
  ASSERT_TRUE(Write({"volume-b", 0, 0}, 0, Pattern(3, 1)).ok());
  auto again = store_->Snapshot("volume-a", kSnap, 1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 2u);
  EXPECT_EQ(Entries().size(), 5u);
  EXPECT_TRUE(
      absl::IsNotFound(store_->Read({"volume-b", 0, kSnap}, 0, 4096).status()));
}

TEST_F(DiskSnapshotTest, WriteAfterSnapshotLeavesTheSnapshotIntact) {
  WriteAndSnapshot();
  // A partial overwrite of chunk 0 and a write past its end.
  ASSERT_TRUE(Write(kLive0, 1, Pattern(10, 1)).ok());
  ASSERT_TRUE(Write(kLive0, 6, Pattern(11, 1)).ok());

  std::vector<uint8_t> live = Pattern(1, 4);
  std::vector<uint8_t> changed = Pattern(10, 1);
  std::copy(changed.begin(), changed.end(), live.begin() + kBlockSize);
  EXPECT_EQ(ReadOk(kLive0, 0, 4), live);
  EXPECT_EQ(ReadOk(kLive0, 6, 1), Pattern(11, 1));
  EXPECT_EQ(ReadOk(kSnap0, 0, 4), Pattern(1, 4));
  EXPECT_EQ(ReadOk(kSnap0, 4, 4), std::vector<uint8_t>(4 * kBlockSize, 0));
  EXPECT_EQ(ReadOk(kSnap1, 0, 4), Pattern(2, 4));
  // Chunk 0 moved to a file of its own; chunk 1 still shares.
  EXPECT_EQ(ChunkFileCount(), 3u);

  Open();
  EXPECT_EQ(ReadOk(kLive0, 0, 4), live);
  EXPECT_EQ(ReadOk(kSnap0, 0, 4), Pattern(1, 4));
  EXPECT_EQ(ChunkFileCount(), 3u);
  EXPECT_TRUE(
      absl::IsInvalidArgument(Write(kSnap0, 0, Pattern(5, 1)).status()));
}

TEST_F(DiskSnapshotTest, TwoSnapshotsKeepTheirOwnPointsInTime) {
  WriteAndSnapshot();
  ASSERT_TRUE(Write(kLive0, 0, Pattern(20, 4)).ok());
  ASSERT_TRUE(store_->Snapshot("volume-a", kSnap + 1, 1).ok());
  ASSERT_TRUE(Write(kLive0, 0, Pattern(21, 4)).ok());

  EXPECT_EQ(ReadOk(kSnap0, 0, 4), Pattern(1, 4));
  EXPECT_EQ(ReadOk({"volume-a", 0, kSnap + 1}, 0, 4), Pattern(20, 4));
  EXPECT_EQ(ReadOk(kLive0, 0, 4), Pattern(21, 4));
  // Chunk 1's one file is named by the live chunk and both snapshots.
  EXPECT_EQ(ReadOk({"volume-a", 1, kSnap + 1}, 0, 4), Pattern(2, 4));

  ASSERT_TRUE(store_->DeleteSnapshot("volume-a", kSnap).ok());
  EXPECT_EQ(ReadOk({"volume-a", 1, kSnap + 1}, 0, 4), Pattern(2, 4));
  EXPECT_EQ(ReadOk(kLive1, 0, 4), Pattern(2, 4));
  // Left: live 0, snapshot 2's chunk 0, and chunk 1's shared file.
  EXPECT_EQ(ChunkFileCount(), 3u);
}

TEST_F(DiskSnapshotTest, DeletingTheVolumeThenTheSnapshotFreesEverything) {
  WriteAndSnapshot();
  ASSERT_TRUE(Write(kLive1, 0, Pattern(30, 2)).ok());  // chunk 1 copied

  ASSERT_TRUE(store_->Delete(kLive0, 1).ok());
  ASSERT_TRUE(store_->Delete(kLive1, 1).ok());
  // The snapshot outlives its volume: both its files stay.
  EXPECT_EQ(ReadOk(kSnap0, 0, 4), Pattern(1, 4));
  EXPECT_EQ(ReadOk(kSnap1, 0, 4), Pattern(2, 4));
  EXPECT_EQ(ChunkFileCount(), 2u);
  Open();
  EXPECT_EQ(ReadOk(kSnap0, 0, 4), Pattern(1, 4));
  EXPECT_EQ(ChunkFileCount(), 2u);

  ASSERT_TRUE(store_->DeleteSnapshot("volume-a", kSnap).ok());
  EXPECT_EQ(ChunkFileCount(), 0u);
  EXPECT_TRUE(Entries().empty());
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunk_count, 0u);
  EXPECT_EQ(stats->used_bytes, 0u);
  // Deleting it again is done already.
  EXPECT_TRUE(store_->DeleteSnapshot("volume-a", kSnap).ok());
  Open();
  EXPECT_EQ(ChunkFileCount(), 0u);
  EXPECT_TRUE(Entries().empty());
}

TEST_F(DiskSnapshotTest, DeletingTheSnapshotFirstKeepsTheVolume) {
  WriteAndSnapshot();
  ASSERT_TRUE(store_->DeleteSnapshot("volume-a", kSnap).ok());
  EXPECT_EQ(ReadOk(kLive0, 0, 4), Pattern(1, 4));
  EXPECT_EQ(ChunkFileCount(), 2u);
  // Unshared again: writes go in place.
  ASSERT_TRUE(Write(kLive0, 0, Pattern(40, 1)).ok());
  EXPECT_EQ(ChunkFileCount(), 2u);
  ASSERT_TRUE(store_->Delete(kLive0, 1).ok());
  ASSERT_TRUE(store_->Delete(kLive1, 1).ok());
  EXPECT_EQ(ChunkFileCount(), 0u);
}

TEST_F(DiskSnapshotTest, SnapshotIsFencedLikeAWrite) {
  ASSERT_TRUE(Write(kLive0, 0, Pattern(1, 1), 3).ok());
  ASSERT_TRUE(store_->Fence("volume-a", 5).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->Snapshot("volume-a", kSnap, 4).status()));
  ASSERT_TRUE(store_->Snapshot("volume-a", kSnap, 6).ok());
  EXPECT_EQ(store_->FenceOf("volume-a"), 6u);
  EXPECT_TRUE(
      absl::IsFailedPrecondition(Write(kLive0, 0, Pattern(2, 1), 5).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(store_->Snapshot("volume-a", 0, 6).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->DeleteSnapshot("", 1)));
}

// A snapshot's mover copies its chunk onto another disk with conditional
// writes, whatever the volume's fence; plain writes stay refused, and the
// copy never touches the fence or the live chunk.
TEST_F(DiskSnapshotTest, SnapshotChunkIsCopiedInOnlyByConditionalWrites) {
  ASSERT_TRUE(Write(kLive0, 0, Pattern(1, 2), 9).ok());
  ASSERT_TRUE(store_->Fence("volume-a", 12).ok());
  const std::vector<uint8_t> half = Pattern(50, 1);
  EXPECT_TRUE(absl::IsInvalidArgument(Write(kSnap0, 0, half, 12).status()));
  EXPECT_EQ(Entries().size(), 1u);

  auto conditional = [&](uint64_t block, const std::vector<uint8_t>& data,
                         uint64_t expected) {
    return store_->Write(kSnap0, block * kBlockSize, data, BlockChecksums(data),
                         0, expected);
  };
  // Generation 0 is far below the fence, yet the copy goes in: it is the
  // snapshot's record, not the fence, that says which copies count.
  absl::StatusOr<uint64_t> v1 = conditional(0, half, 0);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_TRUE(absl::IsAborted(conditional(1, Pattern(51, 1), 0).status()));
  absl::StatusOr<uint64_t> v2 = conditional(1, Pattern(51, 1), *v1);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(store_->FenceOf("volume-a"), 12u);
  EXPECT_EQ(ReadOk(kSnap0, 0, 1), half);
  EXPECT_EQ(ReadOk(kSnap0, 1, 1), Pattern(51, 1));
  EXPECT_EQ(ReadOk(kLive0, 0, 2), Pattern(1, 2));

  // Deleting the copy is not fenced either; the live chunk stays fenced.
  ASSERT_TRUE(store_->Delete(kSnap0, 0).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->Read(kSnap0, 0, kBlockSize).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->Delete(kLive0, 11)));
  EXPECT_EQ(ReadOk(kLive0, 0, 2), Pattern(1, 2));
}

// Every way the copy-on-write of a shared chunk can fail before its commit
// leaves the live chunk and the snapshot as they were, and no file behind
// once the disk is reopened.
TEST_F(DiskSnapshotTest, FailedCopyOnWriteChangesNothing) {
  struct Fault {
    std::string name;
    FaultRule rule;
    bool index_full = false;
  };
  auto rule = [](FaultOp op, int error, uint64_t skip = 0) {
    FaultRule r;
    r.op = op;
    r.error = error;
    r.skip = skip;
    return r;
  };
  std::vector<Fault> faults;
  faults.push_back({"open fails", rule(FaultOp::kOpen, EIO)});
  faults.push_back({"copy read fails", rule(FaultOp::kRead, EIO)});
  faults.push_back({"write fails", rule(FaultOp::kWrite, ENOSPC)});
  faults.push_back({"last write fails", rule(FaultOp::kWrite, EIO, 1)});
  faults.push_back({"sync fails", rule(FaultOp::kSync, EIO)});
  FaultRule tear = rule(FaultOp::kWrite, EIO);
  tear.tear_bytes = kBlockSize + 100;
  faults.push_back({"torn write, then a crash", tear});
  faults.push_back({"index full", {}, true});

  WriteAndSnapshot();
  for (const Fault& f : faults) {
    SCOPED_TRACE(f.name);
    // A fresh store has no open files: the copy must open both.
    Open();
    if (f.index_full) {
      rocks_fs_->full = true;
    } else {
      fs_.AddRule(f.rule);
    }
    auto failed = Write(kLive0, 1, Pattern(50, 2));
    EXPECT_FALSE(failed.ok());
    rocks_fs_->full = false;
    fs_.Reset();

    Open();
    EXPECT_EQ(ReadOk(kLive0, 0, 4), Pattern(1, 4));
    EXPECT_EQ(ReadOk(kSnap0, 0, 4), Pattern(1, 4));
    EXPECT_EQ(ChunkFileCount(), 2u);
    EXPECT_EQ(Entries().size(), 4u);
  }

  // The disk works again, and the snapshot still holds its point in time.
  ASSERT_TRUE(Write(kLive0, 1, Pattern(51, 2)).ok());
  EXPECT_EQ(ReadOk(kLive0, 1, 2), Pattern(51, 2));
  EXPECT_EQ(ReadOk(kSnap0, 0, 4), Pattern(1, 4));
  EXPECT_EQ(ChunkFileCount(), 3u);
}

TEST_F(DiskSnapshotTest, CorruptSharedBlockFailsTheCopyInsteadOfSpreading) {
  WriteAndSnapshot();
  // Flip a byte of chunk 0's block 2 on disk.
  std::string file;
  for (const auto& entry :
       std::filesystem::directory_iterator(disk_ + "/chunks")) {
    file = std::min(file.empty() ? entry.path().string() : file,
                    entry.path().string());
  }
  {
    std::unique_ptr<FileSystem> raw = NewUringFileSystem();
    auto f = raw->OpenFile(file);
    ASSERT_TRUE(f.ok());
    std::vector<uint8_t> block(kBlockSize);
    ASSERT_TRUE((*f)->ReadAt(2 * kBlockSize, block).ok());
    block[10] ^= 0xff;
    ASSERT_TRUE((*f)->WriteAt(2 * kBlockSize, block).ok());
    ASSERT_TRUE((*f)->Sync().ok());
  }
  Open();
  auto write = Write(kLive0, 0, Pattern(60, 1));
  EXPECT_TRUE(absl::IsDataLoss(write.status())) << write.status();
  EXPECT_EQ(ChunkFileCount(), 2u);
}

}  // namespace
}  // namespace juke::storage
