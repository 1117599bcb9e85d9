#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "src/common/checksum.h"
#include "src/storage/file_system.h"
#include "src/storage/test_util.h"

namespace juke::storage {
namespace {

using testing::Pattern;
using testing::TempDir;
using ::testing::UnorderedElementsAre;

class UringFileSystemTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) { return dir_.path() + "/" + name; }

  TempDir dir_;
  std::unique_ptr<FileSystem> fs_ = NewUringFileSystem();
};

TEST_F(UringFileSystemTest, WriteThenReadReturnsTheData) {
  auto file = fs_->OpenFile(Path("f"));
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<uint8_t> data = Pattern(1, 8);
  ASSERT_TRUE((*file)->WriteAt(kBlockSize, data).ok());
  ASSERT_TRUE((*file)->Sync().ok());

  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE((*file)->ReadAt(kBlockSize, back).ok());
  EXPECT_EQ(back, data);
}

TEST_F(UringFileSystemTest, ReadsPastEndOfFileAsZeros) {
  auto file = fs_->OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> data = Pattern(2, 1);
  ASSERT_TRUE((*file)->WriteAt(0, data).ok());

  std::vector<uint8_t> back(3 * kBlockSize, 0xAA);
  ASSERT_TRUE((*file)->ReadAt(0, back).ok());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), back.begin()));
  EXPECT_TRUE(std::all_of(back.begin() + kBlockSize, back.end(),
                          [](uint8_t b) { return b == 0; }));
}

TEST_F(UringFileSystemTest, UnalignedBuffersAreBouncedForDirectIo) {
  auto file = fs_->OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> data = Pattern(3, 4);
  // One byte into a larger buffer: never 4096-aligned.
  std::vector<uint8_t> storage(data.size() + 1);
  std::memcpy(storage.data() + 1, data.data(), data.size());
  ASSERT_TRUE((*file)->WriteAt(0, {storage.data() + 1, data.size()}).ok());

  std::vector<uint8_t> back_storage(data.size() + 1);
  std::span<uint8_t> back(back_storage.data() + 1, data.size());
  ASSERT_TRUE((*file)->ReadAt(0, back).ok());
  EXPECT_TRUE(std::equal(data.begin(), data.end(), back.begin()));
}

TEST_F(UringFileSystemTest, ConcurrentWritesToDisjointRangesAllLand) {
  auto file = fs_->OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 16; ++i) {
        uint64_t block = t * 16 + i;
        ASSERT_TRUE(
            (*file)->WriteAt(block * kBlockSize, Pattern(block, 1)).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE((*file)->Sync().ok());

  for (uint64_t block = 0; block < 128; ++block) {
    std::vector<uint8_t> back(kBlockSize);
    ASSERT_TRUE((*file)->ReadAt(block * kBlockSize, back).ok());
    EXPECT_EQ(back, Pattern(block, 1)) << "block " << block;
  }
}

TEST_F(UringFileSystemTest, ReopenedFileKeepsItsData) {
  std::vector<uint8_t> data = Pattern(4, 2);
  {
    auto file = fs_->OpenFile(Path("f"));
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE((*file)->WriteAt(0, data).ok());
    ASSERT_TRUE((*file)->Sync().ok());
  }
  auto file = fs_->OpenFile(Path("f"));
  ASSERT_TRUE(file.ok());
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE((*file)->ReadAt(0, back).ok());
  EXPECT_EQ(back, data);
}

TEST_F(UringFileSystemTest, WriteFileReplacesContentsAndReadFileReadsThem) {
  ASSERT_TRUE(fs_->WriteFile(Path("label"), "first").ok());
  ASSERT_TRUE(fs_->WriteFile(Path("label"), "second").ok());
  auto text = fs_->ReadFile(Path("label"));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "second");
  // No temporary file is left behind.
  auto names = fs_->ListDir(dir_.path());
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, UnorderedElementsAre("label"));
}

TEST_F(UringFileSystemTest, MissingPathsAreNotFound) {
  EXPECT_TRUE(absl::IsNotFound(fs_->ReadFile(Path("absent")).status()));
  EXPECT_TRUE(absl::IsNotFound(fs_->RemoveFile(Path("absent"))));
  EXPECT_TRUE(absl::IsNotFound(fs_->ListDir(Path("absent")).status()));
}

TEST_F(UringFileSystemTest, CreateDirsCreatesParentsAndListDirNamesEntries) {
  ASSERT_TRUE(fs_->CreateDirs(Path("a/b/c")).ok());
  ASSERT_TRUE(fs_->CreateDirs(Path("a/b/c")).ok());
  ASSERT_TRUE(fs_->OpenFile(Path("a/b/file")).ok());
  auto names = fs_->ListDir(Path("a/b"));
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, UnorderedElementsAre("c", "file"));

  ASSERT_TRUE(fs_->RemoveFile(Path("a/b/file")).ok());
  names = fs_->ListDir(Path("a/b"));
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, UnorderedElementsAre("c"));
}

TEST_F(UringFileSystemTest, StatReportsCapacityAndAvailableSpace) {
  auto stats = fs_->Stat(dir_.path());
  ASSERT_TRUE(stats.ok());
  EXPECT_GT(stats->capacity_bytes, 0u);
  EXPECT_LE(stats->available_bytes, stats->capacity_bytes);
}

}  // namespace
}  // namespace juke::storage
