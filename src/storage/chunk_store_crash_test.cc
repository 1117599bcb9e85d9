// A real crash: a writer process is killed with SIGKILL at a random moment,
// and every chunk it was writing must then read back as exactly one of the
// versions it wrote, never a mix, with matching checksums.
//
// The writer is this binary run again with --crash-writer, so that it starts
// as a fresh process (forking a process that already runs RocksDB threads is
// unsafe).

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

#include "src/common/checksum.h"
#include "src/storage/chunk_store.h"
#include "src/storage/test_util.h"

namespace juke::storage {
namespace {

using testing::Pattern;
using testing::TempDir;

constexpr uint64_t kChunks = 6;
constexpr size_t kBlocks = 32;  // 128 KiB a write: plenty of room to tear
constexpr char kWriterFlag[] = "--crash-writer";

ChunkStoreOptions Options(const std::string& disk, FileSystem* fs) {
  ChunkStoreOptions options;
  options.path = disk;
  options.identity = {"pool", "host", "disk"};
  options.max_chunk_size = kBlocks * kBlockSize;
  options.fs = fs;
  return options;
}

ChunkKey Chunk(uint64_t i) { return {"crash-volume", i, 0}; }

// What version `version` of chunk `i` holds.
std::vector<uint8_t> Content(uint64_t i, uint64_t version) {
  return Pattern(i * 1000003 + version, kBlocks);
}

// The writer: rewrites every chunk whole, round and round, until killed.
// Writes one byte to `ready_fd` once the store is open.
int RunWriter(const std::string& disk, int ready_fd) {
  std::unique_ptr<FileSystem> fs = NewUringFileSystem();
  auto store = ChunkStore::Open(Options(disk, fs.get()));
  if (!store.ok()) {
    std::fprintf(stderr, "writer: %s\n", store.status().ToString().c_str());
    return 2;
  }
  std::vector<uint64_t> versions(kChunks, 0);
  for (uint64_t i = 0; i < kChunks; ++i) {
    auto read = (*store)->Read(Chunk(i), 0, kBlockSize);
    if (read.ok()) versions[i] = read->version;
  }
  if (write(ready_fd, "r", 1) != 1) return 3;

  while (true) {
    for (uint64_t i = 0; i < kChunks; ++i) {
      std::vector<uint8_t> data = Content(i, versions[i] + 1);
      auto version = (*store)->Write(Chunk(i), 0, data, BlockChecksums(data), 1,
                                     std::nullopt);
      if (!version.ok() || *version != versions[i] + 1) {
        std::fprintf(stderr, "writer: chunk %d: %s\n", static_cast<int>(i),
                     version.status().ToString().c_str());
        return 4;
      }
      versions[i] = *version;
    }
  }
}

std::string SelfPath() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

TEST(ChunkStoreCrashTest, KillNineNeverLeavesAMixedChunk) {
  TempDir dir;
  const std::string disk = dir.path() + "/disk";
  const std::string self = SelfPath();
  ASSERT_FALSE(self.empty());
  unsigned seed = std::random_device()();
  std::mt19937 rng(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));

  uint64_t last_total = 0;
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(ready[0]);
      std::string fd = std::to_string(ready[1]);
      execl(self.c_str(), self.c_str(), kWriterFlag, disk.c_str(), fd.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    close(ready[1]);

    // Kill the writer at a random moment once it is writing.
    pollfd pfd{ready[0], POLLIN, 0};
    ASSERT_EQ(poll(&pfd, 1, 20000), 1) << "writer did not start";
    char byte;
    ASSERT_EQ(read(ready[0], &byte, 1), 1) << "writer failed to open";
    close(ready[0]);
    absl::SleepFor(
        absl::Milliseconds(std::uniform_int_distribution<int>(20, 250)(rng)));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status))
        << "writer exited early, status " << status;

    // Every chunk holds exactly the version its index entry names.
    std::unique_ptr<FileSystem> fs = NewUringFileSystem();
    auto store = ChunkStore::Open(Options(disk, fs.get()));
    ASSERT_TRUE(store.ok()) << store.status();
    uint64_t total = 0;
    for (uint64_t i = 0; i < kChunks; ++i) {
      auto result = (*store)->Read(Chunk(i), 0, kBlocks * kBlockSize);
      if (absl::IsNotFound(result.status())) continue;
      ASSERT_TRUE(result.ok()) << "chunk " << i << ": " << result.status();
      EXPECT_TRUE(result->data == Content(i, result->version))
          << "chunk " << i << " is not version " << result->version;
      EXPECT_EQ(result->checksums, BlockChecksums(result->data));
      total += result->version;
    }
    EXPECT_GE(total, last_total) << "acknowledged writes went missing";
    last_total = total;
  }
  EXPECT_GT(last_total, 0u) << "the writer never got to write";
}

}  // namespace
}  // namespace juke::storage

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == juke::storage::kWriterFlag) {
    return juke::storage::RunWriter(argv[2], std::atoi(argv[3]));
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
