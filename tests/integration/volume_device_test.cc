// The node data path end to end: a 3-replica volume on a real pool, served
// as a loop device over FUSE, formatted, mounted, filled with files, then
// attached as another host while a daemon dies, and every file checked.

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

#include "src/common/checksum.h"
#include "src/model/map_store.h"
#include "src/node/attachment.h"
#include "src/node/exec.h"
#include "src/node/filesystem.h"
#include "src/volume/volume_backend.h"
#include "src/volume/volume_catalog.h"
#include "src/volume/volume_client.h"

#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pool.h"

namespace juke {
namespace {

using testing::TempDir;
using testing::TestPool;

constexpr uint64_t kVolumeSize = 64ull << 20;

std::string RandomText(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(size, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

uint32_t FileSum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  return Crc32c({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
}

class VolumeDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool = TestPool::Start();
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    auto dir = TempDir::Create("juke-device-test");
    ASSERT_TRUE(dir.ok());
    dir_ = std::move(*dir);
    catalog_ = std::make_unique<VolumeCatalog>(&pool_->client());
    ASSERT_TRUE(RefreshMap(pool_->client()).ok());
  }

  // Attaches the volume as `node`'s writer and returns its block device.
  std::unique_ptr<node::Attachment> AttachAs(const std::string& id,
                                             const std::string& node,
                                             bool take_over) {
    auto record = catalog_->Attach(id, node, false, take_over);
    EXPECT_TRUE(record.ok()) << record.status();
    auto map = RefreshMap(pool_->client());
    EXPECT_TRUE(map.ok());
    EXPECT_TRUE(FenceVolumeEverywhere(&pool_->client(), &clients_, *map, id,
                                      record->attachment->generation)
                    .ok());
    auto client = VolumeClient::Open(catalog_.get(), &clients_, *record, *map);
    EXPECT_TRUE(client.ok()) << client.status();
    auto backend = std::make_shared<VolumeBackend>(std::move(*client));
    std::string state = absl::StrCat(dir_->path(), "/state-", node);
    mkdir(state.c_str(), 0755);
    auto attachment = node::Attachment::Attach(backend, state);
    EXPECT_TRUE(attachment.ok()) << attachment.status();
    return attachment.ok() ? std::move(*attachment) : nullptr;
  }

  std::unique_ptr<TestPool> pool_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<VolumeCatalog> catalog_;
  ChunkClientPool clients_;
};

TEST_F(VolumeDeviceTest, FilesSurviveAMoveToAnotherHostAndADeadDaemon) {
  VolumeRecord shape;
  shape.id = "vol-fs";
  shape.size_bytes = kVolumeSize;
  shape.replicas = 3;
  ASSERT_TRUE(catalog_->Create(shape).ok());
  std::string mnt = dir_->path() + "/mnt";
  mkdir(mnt.c_str(), 0755);

  // Host h1: format the blank device, mount it, write files.
  std::map<std::string, uint32_t> sums;
  {
    auto a = AttachAs("vol-fs", "h1", false);
    ASSERT_NE(a, nullptr);
    ASSERT_TRUE(node::FormatIfBlank(a->device_path(), "ext4").ok());
    ASSERT_TRUE(node::Mount(a->device_path(), mnt, "ext4", {}, false).ok());
    for (int i = 0; i < 8; ++i) {
      std::string path = absl::StrCat(mnt, "/file-", i);
      std::ofstream(path, std::ios::binary)
          << RandomText((i + 1) * 300 * 1024 + 17 * i, i);
      sums[path] = FileSum(path);
    }
    ASSERT_TRUE(node::Unmount(mnt).ok());
    ASSERT_TRUE(a->Detach().ok());
  }
  ASSERT_TRUE(catalog_->Detach("vol-fs", "h1").ok());

  // Host h2 takes it; h3's daemon dies under it. Nothing is reformatted
  // and every file reads back the same.
  auto b = AttachAs("vol-fs", "h2", false);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(node::FormatIfBlank(b->device_path(), "ext4").ok());
  ASSERT_TRUE(pool_->host(2).process->Kill(SIGKILL).ok());
  ASSERT_TRUE(node::Mount(b->device_path(), mnt, "ext4", {}, false).ok());
  for (const auto& [path, sum] : sums) {
    EXPECT_EQ(FileSum(path), sum) << path;
  }
  // And it keeps taking writes with two replicas left.
  std::string more = mnt + "/after-crash";
  std::ofstream(more, std::ios::binary) << RandomText(1 << 20, 99);
  uint32_t more_sum = FileSum(more);
  ASSERT_TRUE(node::Unmount(mnt).ok());
  ASSERT_TRUE(b->Detach().ok());

  auto c = AttachAs("vol-fs", "h1", /*take_over=*/true);
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(node::Mount(c->device_path(), mnt, "ext4", {}, true).ok());
  EXPECT_EQ(FileSum(more), more_sum);
  EXPECT_EQ(FileSum(sums.begin()->first), sums.begin()->second);
  ASSERT_TRUE(node::Unmount(mnt).ok());
  ASSERT_TRUE(c->Detach().ok());
  auto marks = catalog_->StaleMarks("vol-fs");
  ASSERT_TRUE(marks.ok());
  EXPECT_FALSE(marks->empty()) << "h3 missed writes and must be marked stale";
}

TEST_F(VolumeDeviceTest, FioVerifiesWhatItWroteAfterAMoveToAnotherHost) {
  VolumeRecord shape;
  shape.id = "vol-fio";
  shape.size_bytes = kVolumeSize;
  shape.replicas = 3;
  ASSERT_TRUE(catalog_->Create(shape).ok());
  // Random 4 KiB writes at depth 16, each block carrying its own
  // checksum and offset; fio checks them all at the end of the run...
  auto fio = [](const std::string& device, bool verify_only) {
    std::vector<std::string> argv = {"fio",
                                     "--name=verify",
                                     "--filename=" + device,
                                     "--rw=randwrite",
                                     "--bs=4k",
                                     "--size=16M",
                                     "--direct=1",
                                     "--ioengine=libaio",
                                     "--iodepth=16",
                                     "--verify=crc32c",
                                     "--verify_fatal=1",
                                     "--randseed=7"};
    // No verify state file in the working directory.
    argv.emplace_back("--verify_state_save=0");
    if (verify_only) argv.emplace_back("--verify_only");
    return node::RunCommandChecked(argv, absl::Minutes(3));
  };
  {
    auto a = AttachAs("vol-fio", "h1", false);
    ASSERT_NE(a, nullptr);
    auto wrote = fio(a->device_path(), false);
    ASSERT_TRUE(wrote.ok()) << wrote.status();
    ASSERT_TRUE(a->Detach().ok());
  }
  ASSERT_TRUE(catalog_->Detach("vol-fio", "h1").ok());
  // ...and again, read only, from another host with a daemon dead.
  ASSERT_TRUE(pool_->host(0).process->Kill(SIGKILL).ok());
  auto b = AttachAs("vol-fio", "h2", false);
  ASSERT_NE(b, nullptr);
  auto verified = fio(b->device_path(), true);
  EXPECT_TRUE(verified.ok()) << verified.status();
  ASSERT_TRUE(b->Detach().ok());
}

}  // namespace
}  // namespace juke
