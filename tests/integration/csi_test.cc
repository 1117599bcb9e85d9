// The CSI driver on a real pool, for what the CSI sanity suite does not
// check: names, capacities, paging, hostile ids and secrets, moving a
// volume between nodes, read-only raw block, node edge cases; snapshots
// that outlive their volume, snapshot paging and hostile snapshot ids, and
// a snapshot taken while a writer writes. juke-csi runs
// as two processes, one per node: h1 serves the controller and its node
// plugin, h2 only its node plugin. Needs root (FUSE, loop devices, mounts).

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "juke/storage/v1/storage.grpc.pb.h"

#include "src/model/map_store.h"
#include "src/model/placement.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/volume_catalog.h"

#include "csi/v1/csi.grpc.pb.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pool.h"

namespace juke {
namespace {

namespace v1 = ::csi::v1;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Subprocess;
using testing::SubprocessOptions;
using testing::TempDir;
using testing::TestPool;

using Mode = v1::VolumeCapability::AccessMode;

v1::VolumeCapability MountCap(const std::string& fstype = "ext4",
                              std::vector<std::string> flags = {}) {
  v1::VolumeCapability c;
  c.mutable_mount()->set_fs_type(fstype);
  for (std::string& f : flags) c.mutable_mount()->add_mount_flags(std::move(f));
  c.mutable_access_mode()->set_mode(Mode::SINGLE_NODE_WRITER);
  return c;
}

v1::VolumeCapability BlockCap() {
  v1::VolumeCapability c;
  c.mutable_block();
  c.mutable_access_mode()->set_mode(Mode::SINGLE_NODE_WRITER);
  return c;
}

constexpr int64_t kMiB = 1 << 20;

// A zeroed buffer aligned for O_DIRECT.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size) : size_(size) {
    if (posix_memalign(&data_, 4096, size) != 0) data_ = nullptr;
    if (data_ != nullptr) std::memset(data_, 0, size);
  }
  ~AlignedBuffer() { free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  char* bytes() { return static_cast<char*>(data_); }
  uint8_t* data() { return static_cast<uint8_t*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_;
};

// The size of the block device open as `fd`, as the kernel sees it.
int64_t DeviceSize(int fd) {
  uint64_t bytes = 0;
  if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) return -1;
  return static_cast<int64_t>(bytes);
}

// Whether this process holds capability `cap` (CapEff in
// /proc/self/status).
bool HasCapability(int cap) {
  std::ifstream status("/proc/self/status");
  std::string line;
  uint64_t caps = 0;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "CapEff:")) {
      (void)absl::SimpleHexAtoi(absl::StripAsciiWhitespace(rest), &caps);
    }
  }
  return (caps & (uint64_t{1} << cap)) != 0;
}

class CsiTest : public ::testing::Test {
 protected:
  struct Plugin {
    std::unique_ptr<Subprocess> process;
    std::string socket;
    std::string log;
    std::unique_ptr<v1::Node::Stub> node;
  };

  void SetUp() override {
    auto pool = TestPool::Start();
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    ASSERT_TRUE(RefreshMap(pool_->client()).ok());
    auto dir = TempDir::Create("juke-csi-test");
    ASSERT_TRUE(dir.ok());
    dir_ = std::move(*dir);
    StartPlugin("h1", "all", &a_);
    StartPlugin("h2", "node", &b_);
    auto channel = grpc::CreateChannel(absl::StrCat("unix://", a_.socket),
                                       grpc::InsecureChannelCredentials());
    controller_ = v1::Controller::NewStub(channel);
  }

  void TearDown() override {
    for (Plugin* p : {&a_, &b_}) {
      if (p->process != nullptr) (void)p->process->Terminate();
    }
  }

  void StartPlugin(const std::string& node, const std::string& mode,
                   Plugin* p) {
    p->socket = absl::StrCat(dir_->path(), "/", node, ".sock");
    p->log = absl::StrCat(dir_->path(), "/", node, ".log");
    SubprocessOptions o;
    o.argv = {absl::StrCat(std::getenv("JUKE_BUILD_DIR"), "/src/csi/juke-csi"),
              "--mode=" + mode,
              "--node_id=" + node,
              "--etcd=" + pool_->etcd().endpoint(),
              "--endpoint=unix://" + p->socket,
              absl::StrCat("--state_dir=", dir_->path(), "/", node, "-state"),
              "--log_levels=debug"};
    o.log_path = p->log;
    auto process = Subprocess::Start(o);
    ASSERT_TRUE(process.ok()) << process.status();
    p->process = std::move(*process);
    for (int i = 0; i < 100 && access(p->socket.c_str(), F_OK) != 0; ++i) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_EQ(access(p->socket.c_str(), F_OK), 0) << "no socket " << p->socket;
    p->node = v1::Node::NewStub(
        grpc::CreateChannel(absl::StrCat("unix://", p->socket),
                            grpc::InsecureChannelCredentials()));
  }

  grpc::Status Create(const std::string& name, int64_t required, int64_t limit,
                      v1::CreateVolumeResponse* out,
                      v1::VolumeCapability cap = MountCap(),
                      const std::map<std::string, std::string>& params = {}) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = std::move(cap);
    for (const auto& [key, value] : params) {
      (*req.mutable_parameters())[key] = value;
    }
    if (required != 0 || limit != 0) {
      req.mutable_capacity_range()->set_required_bytes(required);
      req.mutable_capacity_range()->set_limit_bytes(limit);
    }
    grpc::ClientContext ctx;
    return controller_->CreateVolume(&ctx, req, out);
  }

  std::string MustCreate(const std::string& name, int64_t size = 64 << 20) {
    v1::CreateVolumeResponse resp;
    grpc::Status s = Create(name, size, 0, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.volume().volume_id();
  }

  grpc::Status Publish(const std::string& id, const std::string& node,
                       const v1::VolumeCapability& cap,
                       v1::ControllerPublishVolumeResponse* out = nullptr) {
    v1::ControllerPublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_node_id(node);
    *req.mutable_volume_capability() = cap;
    v1::ControllerPublishVolumeResponse resp;
    grpc::ClientContext ctx;
    return controller_->ControllerPublishVolume(&ctx, req,
                                                out != nullptr ? out : &resp);
  }

  grpc::Status Unpublish(const std::string& id, const std::string& node) {
    v1::ControllerUnpublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_node_id(node);
    v1::ControllerUnpublishVolumeResponse resp;
    grpc::ClientContext ctx;
    return controller_->ControllerUnpublishVolume(&ctx, req, &resp);
  }

  grpc::Status Stage(Plugin& p, const std::string& id, const std::string& path,
                     const v1::VolumeCapability& cap) {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(path);
    *req.mutable_volume_capability() = cap;
    v1::NodeStageVolumeResponse resp;
    grpc::ClientContext ctx;
    return p.node->NodeStageVolume(&ctx, req, &resp);
  }

  grpc::Status Unstage(Plugin& p, const std::string& id,
                       const std::string& path) {
    v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(path);
    v1::NodeUnstageVolumeResponse resp;
    grpc::ClientContext ctx;
    return p.node->NodeUnstageVolume(&ctx, req, &resp);
  }

  grpc::Status NodePublish(Plugin& p, const std::string& id,
                           const std::string& staging,
                           const std::string& target,
                           const v1::VolumeCapability& cap, bool read_only) {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    *req.mutable_volume_capability() = cap;
    req.set_readonly(read_only);
    v1::NodePublishVolumeResponse resp;
    grpc::ClientContext ctx;
    return p.node->NodePublishVolume(&ctx, req, &resp);
  }

  grpc::Status NodeUnpublish(Plugin& p, const std::string& id,
                             const std::string& target) {
    v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(id);
    req.set_target_path(target);
    v1::NodeUnpublishVolumeResponse resp;
    grpc::ClientContext ctx;
    return p.node->NodeUnpublishVolume(&ctx, req, &resp);
  }

  grpc::Status Expand(const std::string& id, int64_t required, int64_t limit,
                      v1::ControllerExpandVolumeResponse* out = nullptr) {
    v1::ControllerExpandVolumeRequest req;
    req.set_volume_id(id);
    req.mutable_capacity_range()->set_required_bytes(required);
    req.mutable_capacity_range()->set_limit_bytes(limit);
    v1::ControllerExpandVolumeResponse resp;
    grpc::ClientContext ctx;
    return controller_->ControllerExpandVolume(&ctx, req,
                                               out != nullptr ? out : &resp);
  }

  grpc::Status NodeExpand(Plugin& p, const std::string& id,
                          const std::string& path, int64_t required,
                          v1::NodeExpandVolumeResponse* out = nullptr) {
    v1::NodeExpandVolumeRequest req;
    req.set_volume_id(id);
    req.set_volume_path(path);
    if (required != 0) {
      req.mutable_capacity_range()->set_required_bytes(required);
    }
    v1::NodeExpandVolumeResponse resp;
    grpc::ClientContext ctx;
    return p.node->NodeExpandVolume(&ctx, req, out != nullptr ? out : &resp);
  }

  grpc::Status Modify(const std::string& id,
                      const std::map<std::string, std::string>& params) {
    v1::ControllerModifyVolumeRequest req;
    req.set_volume_id(id);
    for (const auto& [key, value] : params) {
      (*req.mutable_mutable_parameters())[key] = value;
    }
    v1::ControllerModifyVolumeResponse resp;
    grpc::ClientContext ctx;
    return controller_->ControllerModifyVolume(&ctx, req, &resp);
  }

  // Waits until the volume has `replicas` replicas and no move is left:
  // the storage daemons' recovery loop moves a detached volume.
  VolumeRecord WaitForReplicas(const std::string& id, int replicas) {
    VolumeCatalog catalog(&pool_->client());
    absl::StatusOr<VolumeRecord> r;
    for (int i = 0; i < 600; ++i) {
      r = catalog.Get(id);
      if (r.ok() && r->replicas == replicas && r->wanted_replicas == 0 &&
          r->moving_to_epoch == 0 && r->leaving_epoch == 0) {
        return *r;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << "volume " << id << " did not settle at " << replicas
                  << " replicas: "
                  << (r.ok() ? *EncodeVolumeRecord(*r) : r.status().ToString());
    return r.ok() ? *r : VolumeRecord{};
  }

  // Checks that the volume has exactly the chunks of `expected` (chunk c
  // holding expected[c]) and no stale marks, and that each chunk is held by
  // the `replicas` disks its placement names and by no other disk, every
  // copy with the same bytes.
  void ExpectChunksOn(const std::string& id, int replicas,
                      const std::vector<std::string>& expected) {
    const uint64_t chunks = expected.size();
    absl::StatusOr<ClusterMap> map = MapStore(&pool_->client()).Load();
    ASSERT_TRUE(map.ok()) << map.status();
    std::map<uint64_t, std::set<std::string>> holders;
    for (const MapDisk& d : map->disks()) {
      auto on_disk = ListChunkIndexes(chunk_clients_.For(d.address), d.disk_id,
                                      id, absl::Seconds(10));
      ASSERT_TRUE(on_disk.ok()) << on_disk.status();
      for (uint64_t c : *on_disk) holders[c].insert(d.disk_id);
    }
    EXPECT_EQ(holders.size(), chunks);
    VolumeCatalog catalog(&pool_->client());
    auto stale = catalog.StaleMarks(id);
    ASSERT_TRUE(stale.ok());
    EXPECT_TRUE(stale->empty()) << stale->size() << " stale marks";
    for (uint64_t c = 0; c < chunks; ++c) {
      auto placed = PlaceChunk(*map, id, c, replicas, FailureDomain::kHost);
      ASSERT_TRUE(placed.ok()) << placed.status();
      EXPECT_EQ(holders[c],
                std::set<std::string>(placed->begin(), placed->end()))
          << "chunk " << c;
      for (const std::string& disk_id : *placed) {
        storage::v1::ReadChunkRequest req;
        req.set_disk_id(disk_id);
        req.mutable_chunk()->set_volume_id(id);
        req.mutable_chunk()->set_index(c);
        req.set_offset(0);
        req.set_length(expected[c].size());
        storage::v1::ReadChunkResponse resp;
        grpc::ClientContext ctx;
        grpc::Status s = chunk_clients_.For(map->FindDisk(disk_id)->address)
                             ->ReadChunk(&ctx, req, &resp);
        ASSERT_TRUE(s.ok()) << disk_id << ": " << s.error_message();
        EXPECT_TRUE(resp.data() == expected[c])
            << "chunk " << c << " on " << disk_id << " differs";
      }
    }
  }

  int64_t CapacityOf(const std::string& id) {
    v1::ControllerGetVolumeRequest req;
    req.set_volume_id(id);
    v1::ControllerGetVolumeResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = controller_->ControllerGetVolume(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.volume().capacity_bytes();
  }

  // Grows a mounted `fstype` volume of 320 MiB (xfs needs 300) to 640 MiB
  // through both services while it is published, and checks that statfs
  // sees the new size and the files stay.
  void GrowMounted(const std::string& fstype) {
    constexpr int64_t kOld = 320 * kMiB;
    constexpr int64_t kNew = 640 * kMiB;
    std::string id = MustCreate("grow-" + fstype, kOld);
    ASSERT_TRUE(Publish(id, "h1", MountCap(fstype)).ok());
    ASSERT_TRUE(Stage(a_, id, Path("stage"), MountCap(fstype)).ok());
    const std::string target = Path("target");
    ASSERT_TRUE(
        NodePublish(a_, id, Path("stage"), target, MountCap(fstype), false)
            .ok());
    std::ofstream(target + "/kept") << "data";
    struct statfs before {};
    ASSERT_EQ(statfs(target.c_str(), &before), 0);

    v1::ControllerExpandVolumeResponse grown;
    ASSERT_TRUE(Expand(id, kNew, 0, &grown).ok());
    EXPECT_EQ(grown.capacity_bytes(), kNew);
    EXPECT_TRUE(grown.node_expansion_required());
    v1::NodeExpandVolumeResponse node;
    grpc::Status s = NodeExpand(a_, id, target, kNew, &node);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(node.capacity_bytes(), kNew);

    struct statfs after {};
    ASSERT_EQ(statfs(target.c_str(), &after), 0);
    const auto old_bytes =
        static_cast<int64_t>(before.f_blocks * before.f_bsize);
    const auto new_bytes = static_cast<int64_t>(after.f_blocks * after.f_bsize);
    EXPECT_LE(old_bytes, kOld);
    EXPECT_GT(new_bytes, old_bytes + (kNew - kOld) * 9 / 10);
    EXPECT_LE(new_bytes, kNew);
    {
      std::ifstream kept(target + "/kept");
      std::string text;
      std::getline(kept, text);
      EXPECT_EQ(text, "data");
    }
    // Growing again finds nothing to do.
    EXPECT_TRUE(NodeExpand(a_, id, target, kNew).ok());

    EXPECT_TRUE(NodeUnpublish(a_, id, target).ok());
    EXPECT_TRUE(Unstage(a_, id, Path("stage")).ok());
  }

  grpc::Status Snapshot(const std::string& name, const std::string& source,
                        v1::CreateSnapshotResponse* out) {
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_volume_id(source);
    grpc::ClientContext ctx;
    return controller_->CreateSnapshot(&ctx, req, out);
  }

  std::string MustSnapshot(const std::string& name, const std::string& source) {
    v1::CreateSnapshotResponse resp;
    grpc::Status s = Snapshot(name, source, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(resp.snapshot().ready_to_use());
    return resp.snapshot().snapshot_id();
  }

  grpc::Status DeleteSnapshot(const std::string& id) {
    v1::DeleteSnapshotRequest req;
    req.set_snapshot_id(id);
    v1::DeleteSnapshotResponse resp;
    grpc::ClientContext ctx;
    return controller_->DeleteSnapshot(&ctx, req, &resp);
  }

  grpc::Status DeleteVolume(const std::string& id) {
    v1::DeleteVolumeRequest req;
    req.set_volume_id(id);
    v1::DeleteVolumeResponse resp;
    grpc::ClientContext ctx;
    return controller_->DeleteVolume(&ctx, req, &resp);
  }

  // A block volume made from a snapshot (or, with `clone`, a volume).
  grpc::Status CreateFrom(const std::string& name, const std::string& source,
                          bool clone, int64_t required, int64_t limit,
                          v1::CreateVolumeResponse* out) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = BlockCap();
    if (required != 0 || limit != 0) {
      req.mutable_capacity_range()->set_required_bytes(required);
      req.mutable_capacity_range()->set_limit_bytes(limit);
    }
    if (clone) {
      req.mutable_volume_content_source()->mutable_volume()->set_volume_id(
          source);
    } else {
      req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(
          source);
    }
    grpc::ClientContext ctx;
    return controller_->CreateVolume(&ctx, req, out);
  }

  // Publishes, stages and publishes the block volume on `p`'s node; returns
  // the device path.
  std::string AttachBlock(Plugin& p, const std::string& node,
                          const std::string& id) {
    EXPECT_TRUE(Publish(id, node, BlockCap()).ok());
    std::string stage = Path(absl::StrCat(node, "-stage-", id));
    std::string dev = Path(absl::StrCat(node, "-dev-", id));
    grpc::Status staged = Stage(p, id, stage, BlockCap());
    EXPECT_TRUE(staged.ok()) << staged.error_message();
    grpc::Status published = NodePublish(p, id, stage, dev, BlockCap(), false);
    EXPECT_TRUE(published.ok()) << published.error_message();
    return dev;
  }

  void DetachBlock(Plugin& p, const std::string& node, const std::string& id) {
    EXPECT_TRUE(
        NodeUnpublish(p, id, Path(absl::StrCat(node, "-dev-", id))).ok());
    EXPECT_TRUE(Unstage(p, id, Path(absl::StrCat(node, "-stage-", id))).ok());
    EXPECT_TRUE(Unpublish(id, node).ok());
  }

  // Nothing of any volume or snapshot is left: no record, pin or stale mark
  // in etcd, no chunk in any disk's index and no chunk file on any disk.
  // (Fences stay by design: docs/etcd-layout.md.)
  void ExpectNothingLeft() {
    for (const char* prefix :
         {"/juke/v1/snapshots/", "/juke/v1/volumes/", "/juke/v1/stale/"}) {
      auto kvs = pool_->client().GetPrefix(prefix);
      ASSERT_TRUE(kvs.ok());
      EXPECT_TRUE(kvs->empty()) << prefix << " " << kvs->front().key;
    }
    auto pins = pool_->client().GetPrefix("/juke/v1/map/pins/");
    ASSERT_TRUE(pins.ok());
    for (const auto& kv : *pins) {
      EXPECT_EQ(kv.key.find("snapshot"), std::string::npos) << kv.key;
    }
    for (int i = 0; i < pool_->size(); ++i) {
      auto stub = storage::v1::ChunkService::NewStub(grpc::CreateChannel(
          pool_->host(i).address, grpc::InsecureChannelCredentials()));
      storage::v1::GetDisksResponse disks;
      grpc::ClientContext dctx;
      ASSERT_TRUE(
          stub->GetDisks(&dctx, storage::v1::GetDisksRequest(), &disks).ok());
      for (const auto& d : disks.disks()) {
        storage::v1::ListChunksRequest req;
        req.set_disk_id(d.disk_id());
        storage::v1::ListChunksResponse resp;
        grpc::ClientContext ctx;
        ASSERT_TRUE(stub->ListChunks(&ctx, req, &resp).ok());
        EXPECT_EQ(resp.chunks_size(), 0) << d.disk_id();
      }
      for (const std::string& disk : pool_->host(i).disks) {
        int files = 0;
        for (const auto& f :
             std::filesystem::directory_iterator(disk + "/chunks")) {
          (void)f;
          ++files;
        }
        EXPECT_EQ(files, 0) << disk;
      }
    }
  }

  std::string Path(const std::string& name) {
    return absl::StrCat(dir_->path(), "/", name);
  }

  std::unique_ptr<TestPool> pool_;
  std::unique_ptr<TempDir> dir_;
  Plugin a_, b_;
  std::unique_ptr<v1::Controller::Stub> controller_;
  ChunkClientPool chunk_clients_;
};

TEST_F(CsiTest, NamesAreOpaqueAndIdempotent) {
  std::string name(128, 'x');
  name.replace(0, 10, "Upper.Dot_");
  std::string twin = name;
  twin[125] = '-';  // the same first 120 bytes
  std::string id = MustCreate(name);
  std::string twin_id = MustCreate(twin);
  EXPECT_NE(id, twin_id);
  EXPECT_EQ(MustCreate(name), id);  // the same name twice: the same volume

  // The same name with another size is another volume request: refused.
  v1::CreateVolumeResponse resp;
  EXPECT_EQ(Create(name, 128 << 20, 0, &resp).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  v1::CreateVolumeRequest empty;
  *empty.add_volume_capabilities() = MountCap();
  grpc::ClientContext ctx;
  EXPECT_EQ(controller_->CreateVolume(&ctx, empty, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiTest, CapacityIsRoundedUpAndRetriesAreTheSameVolume) {
  int n = 0;
  for (int64_t required :
       {int64_t{1}, int64_t{511}, int64_t{4000000000}, int64_t{1073741825}}) {
    std::string name = absl::StrCat("cap-", n++);
    v1::CreateVolumeResponse first, again;
    ASSERT_TRUE(Create(name, required, 0, &first).ok()) << required;
    EXPECT_GE(first.volume().capacity_bytes(), required);
    grpc::Status retry = Create(name, required, 0, &again);
    ASSERT_TRUE(retry.ok()) << retry.error_message();
    EXPECT_EQ(again.volume().volume_id(), first.volume().volume_id());
    EXPECT_EQ(again.volume().capacity_bytes(), first.volume().capacity_bytes());
  }
  v1::CreateVolumeResponse resp;
  EXPECT_TRUE(Create("cap-none", 0, 0, &resp).ok());
  EXPECT_GT(resp.volume().capacity_bytes(), 0);
  EXPECT_EQ(Create("cap-a", 2 << 20, 1 << 20, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Create("cap-b", -1, 0, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Create("cap-c", 0, -5, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Create("cap-d", 1, 4095, &resp).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
}

TEST_F(CsiTest, BadFlagsAndHostileIdsChangeNothing) {
  v1::CreateVolumeResponse resp;
  EXPECT_EQ(
      Create("flags", 0, 0, &resp, MountCap("ext4", {"exec"})).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Create("flags", 0, 0, &resp, MountCap("ext4", {"noatime,suid"}))
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  std::string canary = Path("canary");
  std::ofstream(canary) << "still here";
  for (const std::string& id :
       {std::string("../../tmp/x"), std::string("../canary"), canary,
        std::string("a/b"), std::string("..")}) {
    v1::DeleteVolumeRequest del;
    del.set_volume_id(id);
    v1::DeleteVolumeResponse dresp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(controller_->DeleteVolume(&ctx, del, &dresp).ok()) << id;
    EXPECT_EQ(Stage(a_, id, Path("stage-hostile"), MountCap()).error_code(),
              grpc::StatusCode::NOT_FOUND)
        << id;
  }
  std::ifstream in(canary);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "still here");

  // Unpublishing from a node that never existed is done already.
  std::string id = MustCreate("unpublish-nowhere");
  EXPECT_TRUE(Unpublish(id, "no-such-node").ok());
  EXPECT_EQ(Publish(id, "no-such-node", MountCap()).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(CsiTest, SecretsNeverReachTheLog) {
  v1::CreateVolumeRequest req;
  req.set_name("secret-volume");
  *req.add_volume_capabilities() = MountCap();
  (*req.mutable_secrets())["token"] = "p,a=s$s";
  v1::CreateVolumeResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(controller_->CreateVolume(&ctx, req, &resp).ok());
  std::ifstream in(a_.log);
  std::stringstream log;
  log << in.rdbuf();
  EXPECT_THAT(log.str(), HasSubstr("secret-volume"));  // requests are logged
  EXPECT_THAT(log.str(), Not(HasSubstr("p,a=s$s")));
}

TEST_F(CsiTest, PagesCoverEveryVolumeOnceWhileVolumesGo) {
  std::set<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.insert(MustCreate(absl::StrCat("page-", i)));
  std::set<std::string> seen;
  std::string token;
  bool deleted = false;
  do {
    v1::ListVolumesRequest req;
    req.set_max_entries(2);
    req.set_starting_token(token);
    v1::ListVolumesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = controller_->ListVolumes(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_LE(resp.entries_size(), 2);
    for (const auto& e : resp.entries()) {
      EXPECT_TRUE(seen.insert(e.volume().volume_id()).second)
          << "seen twice: " << e.volume().volume_id();
    }
    token = resp.next_token();
    if (!deleted && !token.empty()) {
      // Delete the last volume of this page and one not listed yet.
      std::string later = *ids.rbegin();
      for (const std::string& id :
           {resp.entries().rbegin()->volume().volume_id(), later}) {
        v1::DeleteVolumeRequest del;
        del.set_volume_id(id);
        v1::DeleteVolumeResponse dresp;
        grpc::ClientContext dctx;
        ASSERT_TRUE(controller_->DeleteVolume(&dctx, del, &dresp).ok());
        if (id == later) ids.erase(id);
      }
      deleted = true;
    }
  } while (!token.empty());
  for (const std::string& id : ids) EXPECT_EQ(seen.count(id), 1u) << id;

  for (const std::string& bad :
       {std::string("invalid-token"), std::string("-1"), std::string("99999"),
        std::string(4096, 'z')}) {
    v1::ListVolumesRequest req;
    req.set_starting_token(bad);
    v1::ListVolumesResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(controller_->ListVolumes(&ctx, req, &resp).error_code(),
              grpc::StatusCode::ABORTED)
        << bad;
  }
  v1::ListVolumesRequest negative;
  negative.set_max_entries(-1);
  v1::ListVolumesResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(controller_->ListVolumes(&ctx, negative, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiTest, MovingAVolumeFencesTheNodeThatHadIt) {
  std::string id = MustCreate("moving", 64 << 20);
  ASSERT_TRUE(Publish(id, "h1", BlockCap()).ok());
  // A single-node volume cannot be published read-write to a second node.
  EXPECT_EQ(Publish(id, "h2", BlockCap()).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  ASSERT_TRUE(Stage(a_, id, Path("a-stage"), BlockCap()).ok());
  std::string a_dev = Path("a-dev");
  ASSERT_TRUE(
      NodePublish(a_, id, Path("a-stage"), a_dev, BlockCap(), false).ok());
  int fd = open(a_dev.c_str(), O_RDWR | O_DIRECT);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  void* buf = nullptr;
  ASSERT_EQ(posix_memalign(&buf, 4096, 4096), 0);
  std::memset(buf, 'A', 4096);
  ASSERT_EQ(pwrite(fd, buf, 4096, 0), 4096);

  // The controller moves it to h2; h1 still runs and tries to write.
  ASSERT_TRUE(Unpublish(id, "h1").ok());
  ASSERT_TRUE(Publish(id, "h2", BlockCap()).ok());
  std::memset(buf, 'X', 4096);
  EXPECT_NE(pwrite(fd, buf, 4096, 0), 4096) << "a fenced node wrote";
  close(fd);

  ASSERT_TRUE(Stage(b_, id, Path("b-stage"), BlockCap()).ok());
  ASSERT_TRUE(
      NodePublish(b_, id, Path("b-stage"), Path("b-dev"), BlockCap(), false)
          .ok());
  int bfd = open(Path("b-dev").c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(bfd, 0);
  ASSERT_EQ(pread(bfd, buf, 4096, 0), 4096);
  close(bfd);
  EXPECT_EQ(static_cast<char*>(buf)[0], 'A');
  EXPECT_EQ(static_cast<char*>(buf)[4095], 'A');
  free(buf);

  EXPECT_TRUE(NodeUnpublish(a_, id, a_dev).ok());
  EXPECT_TRUE(Unstage(a_, id, Path("a-stage")).ok());
  EXPECT_TRUE(NodeUnpublish(b_, id, Path("b-dev")).ok());
  EXPECT_TRUE(Unstage(b_, id, Path("b-stage")).ok());
}

TEST_F(CsiTest, ReadOnlyRawBlockRefusesWrites) {
  std::string id = MustCreate("ro-block", 64 << 20);
  ASSERT_TRUE(Publish(id, "h1", BlockCap()).ok());
  ASSERT_TRUE(Stage(a_, id, Path("stage"), BlockCap()).ok());
  std::string ro = Path("ro-dev");
  ASSERT_TRUE(NodePublish(a_, id, Path("stage"), ro, BlockCap(), true).ok());
  int fd = open(ro.c_str(), O_WRONLY);
  if (fd >= 0) {
    char byte = 'x';
    EXPECT_NE(pwrite(fd, &byte, 1, 0), 1) << "read-only device took a write";
    close(fd);
  } else {
    EXPECT_EQ(errno, EROFS) << std::strerror(errno);
  }
  EXPECT_TRUE(NodeUnpublish(a_, id, ro).ok());
  EXPECT_TRUE(Unstage(a_, id, Path("stage")).ok());
}

TEST_F(CsiTest, NodeEdgeCases) {
  // Unpublishing what is not there, not a mount, or twice is done.
  EXPECT_TRUE(NodeUnpublish(a_, "csi-any", Path("never-existed")).ok());
  ASSERT_EQ(mkdir(Path("plain-dir").c_str(), 0755), 0);
  EXPECT_TRUE(NodeUnpublish(a_, "csi-any", Path("plain-dir")).ok());
  EXPECT_TRUE(NodeUnpublish(a_, "csi-any", Path("plain-dir")).ok());

  std::string id = MustCreate("edges", 64 << 20);
  ASSERT_TRUE(Publish(id, "h1", MountCap()).ok());
  ASSERT_TRUE(Stage(a_, id, Path("stage"), MountCap("ext4")).ok());
  std::ofstream(Path("stage") + "/kept") << "data";
  // The same stage again is done; at the same path with other arguments it
  // is AlreadyExists.
  EXPECT_TRUE(Stage(a_, id, Path("stage"), MountCap("ext4")).ok());
  EXPECT_EQ(
      Stage(a_, id, Path("stage"), MountCap("ext4", {"noatime"})).error_code(),
      grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(Unstage(a_, id, Path("stage")).ok());
  EXPECT_TRUE(Unstage(a_, id, Path("stage")).ok());

  // Holding ext4, it is never reformatted as xfs.
  grpc::Status xfs = Stage(a_, id, Path("stage"), MountCap("xfs"));
  EXPECT_FALSE(xfs.ok());
  ASSERT_TRUE(Stage(a_, id, Path("stage"), MountCap("ext4")).ok());
  {
    std::ifstream kept(Path("stage") + "/kept");
    std::string text;
    std::getline(kept, text);
    EXPECT_EQ(text, "data");
  }
  EXPECT_TRUE(Unstage(a_, id, Path("stage")).ok());
}

TEST_F(CsiTest, ExpansionNeverShrinksAndChecksItsInput) {
  std::string id = MustCreate("expand-input", 64 * kMiB);
  v1::ControllerExpandVolumeResponse resp;
  // The same size and a smaller one are done already: the real size.
  ASSERT_TRUE(Expand(id, 64 * kMiB, 0, &resp).ok());
  EXPECT_EQ(resp.capacity_bytes(), 64 * kMiB);
  EXPECT_TRUE(resp.node_expansion_required());
  ASSERT_TRUE(Expand(id, 8 * kMiB, 0, &resp).ok());
  EXPECT_EQ(resp.capacity_bytes(), 64 * kMiB);
  // Rounded up to whole chunks, as CreateVolume does.
  ASSERT_TRUE(Expand(id, 100 * kMiB + 1, 0, &resp).ok());
  EXPECT_EQ(resp.capacity_bytes(), 104 * kMiB);
  ASSERT_TRUE(Expand(id, 100 * kMiB, 0, &resp).ok());
  EXPECT_EQ(resp.capacity_bytes(), 104 * kMiB);

  const std::string unknown = "csi-00000000000000000000000000000000";
  struct Case {
    const char* what;
    std::string id;
    int64_t required;
    int64_t limit;
    grpc::StatusCode code;
  };
  const Case cases[] = {
      {"no id", "", 128 * kMiB, 0, grpc::StatusCode::INVALID_ARGUMENT},
      {"INT64_MAX", id, std::numeric_limits<int64_t>::max(), 0,
       grpc::StatusCode::OUT_OF_RANGE},
      {"above the largest volume", id, (int64_t{1} << 50) + 1, 0,
       grpc::StatusCode::OUT_OF_RANGE},
      {"limit below required", id, 200 * kMiB, 150 * kMiB,
       grpc::StatusCode::INVALID_ARGUMENT},
      {"negative required", id, -1, 0, grpc::StatusCode::INVALID_ARGUMENT},
      {"negative limit", id, 0, -1, grpc::StatusCode::INVALID_ARGUMENT},
      {"empty range", id, 0, 0, grpc::StatusCode::INVALID_ARGUMENT},
      {"limit below its size", id, 0, 32 * kMiB,
       grpc::StatusCode::OUT_OF_RANGE},
      {"no chunk fits", id, 200 * kMiB + 1, 200 * kMiB + 4096,
       grpc::StatusCode::OUT_OF_RANGE},
      {"unknown volume", unknown, 128 * kMiB, 0, grpc::StatusCode::NOT_FOUND},
      {"hostile id", "../x", 128 * kMiB, 0, grpc::StatusCode::NOT_FOUND},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Expand(c.id, c.required, c.limit).error_code(), c.code) << c.what;
  }
  v1::ControllerExpandVolumeRequest no_range;
  no_range.set_volume_id(id);
  grpc::ClientContext ctx;
  EXPECT_EQ(
      controller_->ControllerExpandVolume(&ctx, no_range, &resp).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(CapacityOf(id), 104 * kMiB);  // none of them changed anything

  // The node plugin.
  EXPECT_EQ(NodeExpand(a_, "", Path("stage"), 0).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(NodeExpand(a_, id, "", 0).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(NodeExpand(a_, unknown, Path("stage"), 0).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(NodeExpand(a_, id, Path("stage"), 0).error_code(),
            grpc::StatusCode::NOT_FOUND);  // not staged
  ASSERT_TRUE(Publish(id, "h1", BlockCap()).ok());
  ASSERT_TRUE(Stage(a_, id, Path("stage"), BlockCap()).ok());
  EXPECT_EQ(NodeExpand(a_, id, Path("elsewhere"), 0).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // More than the controller gave the volume.
  EXPECT_EQ(NodeExpand(a_, id, Path("stage"), 200 * kMiB).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);
  v1::NodeExpandVolumeResponse node;
  ASSERT_TRUE(NodeExpand(a_, id, Path("stage"), 0, &node).ok());
  EXPECT_EQ(node.capacity_bytes(), 104 * kMiB);
  EXPECT_TRUE(Unstage(a_, id, Path("stage")).ok());
}

TEST_F(CsiTest, RawBlockVolumeGrowsOnlineAndKeepsItsBytes) {
  constexpr int64_t kOld = 64 * kMiB;
  constexpr int64_t kNew = 128 * kMiB;
  std::string id = MustCreate("grow-block", kOld);
  ASSERT_TRUE(Publish(id, "h1", BlockCap()).ok());
  ASSERT_TRUE(Stage(a_, id, Path("stage"), BlockCap()).ok());
  const std::string dev = Path("dev");
  ASSERT_TRUE(NodePublish(a_, id, Path("stage"), dev, BlockCap(), false).ok());
  const int fd = open(dev.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);

  // Bytes no file system would write, over the first MiB.
  AlignedBuffer data(kMiB);
  for (int64_t i = 0; i < kMiB; ++i) {
    data.bytes()[i] = static_cast<char>((i * 131 + 7) % 251);
  }
  ASSERT_EQ(pwrite(fd, data.bytes(), kMiB, 0), kMiB);

  v1::ControllerExpandVolumeResponse grown;
  ASSERT_TRUE(Expand(id, kNew, 0, &grown).ok());
  EXPECT_EQ(grown.capacity_bytes(), kNew);
  EXPECT_TRUE(grown.node_expansion_required());
  EXPECT_EQ(DeviceSize(fd), kOld);  // until the node plugin grows it
  v1::NodeExpandVolumeResponse node;
  grpc::Status s = NodeExpand(a_, id, dev, kNew, &node);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(node.capacity_bytes(), kNew);
  EXPECT_EQ(DeviceSize(fd), kNew);
  EXPECT_TRUE(NodeExpand(a_, id, dev, kNew).ok());  // nothing more to do

  // The same open device: the first MiB byte for byte, a new tail that
  // reads as zeros and takes writes.
  AlignedBuffer back(kMiB);
  ASSERT_EQ(pread(fd, back.bytes(), kMiB, 0), kMiB);
  EXPECT_EQ(std::memcmp(back.bytes(), data.bytes(), kMiB), 0);
  AlignedBuffer tail(4096);
  ASSERT_EQ(pread(fd, tail.bytes(), 4096, kNew - 4096), 4096);
  EXPECT_EQ(std::count(tail.bytes(), tail.bytes() + 4096, 0), 4096);
  std::memset(tail.bytes(), 'T', 4096);
  ASSERT_EQ(pwrite(fd, tail.bytes(), 4096, kNew - 4096), 4096);
  std::memset(tail.bytes(), 0, 4096);
  ASSERT_EQ(pread(fd, tail.bytes(), 4096, kNew - 4096), 4096);
  EXPECT_EQ(tail.bytes()[0], 'T');
  EXPECT_EQ(tail.bytes()[4095], 'T');
  close(fd);
  EXPECT_EQ(CapacityOf(id), kNew);

  EXPECT_TRUE(NodeUnpublish(a_, id, dev).ok());
  EXPECT_TRUE(Unstage(a_, id, Path("stage")).ok());
}

TEST_F(CsiTest, MountedXfsGrowsOnline) { GrowMounted("xfs"); }

TEST_F(CsiTest, MountedExt4GrowsOnline) {
  // The kernel lets only CAP_SYS_RESOURCE grow a mounted ext4
  // (EXT4_IOC_RESIZE_FS); Kubernetes runs the node plugin privileged.
  constexpr int kCapSysResource = 24;
  if (!HasCapability(kCapSysResource)) {
    GTEST_SKIP() << "growing a mounted ext4 needs CAP_SYS_RESOURCE, which "
                    "this process lacks";
  }
  GrowMounted("ext4");
}

TEST_F(CsiTest, ModifyingReplicasMovesEveryChunkAndChecksItsInput) {
  constexpr int64_t kChunk = 4 * kMiB;
  constexpr uint64_t kChunks = 3;
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create("modify-replicas", 16 * kMiB, 0, &created, BlockCap(),
                     {{"replicas", "2"}})
                  .ok());
  const std::string id = created.volume().volume_id();

  // Data in three whole chunks, written through the device, which is then
  // released: the storage daemons move a detached volume.
  AlignedBuffer data(kChunks * kChunk);
  for (int64_t i = 0; i < static_cast<int64_t>(kChunks) * kChunk; ++i) {
    data.bytes()[i] = static_cast<char>((i / 4096 * 7 + i) % 253);
  }
  const std::string dev = AttachBlock(a_, "h1", id);
  const int fd = open(dev.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(pwrite(fd, data.bytes(), kChunks * kChunk, 0),
            static_cast<ssize_t>(kChunks * kChunk));
  close(fd);
  DetachBlock(a_, "h1", id);
  std::vector<std::string> chunk_data;
  for (uint64_t c = 0; c < kChunks; ++c) {
    chunk_data.emplace_back(data.bytes() + c * kChunk, kChunk);
  }
  ExpectChunksOn(id, 2, chunk_data);

  // Bad requests change nothing.
  const std::string unknown = "csi-00000000000000000000000000000000";
  EXPECT_EQ(Modify("", {{"replicas", "3"}}).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{
           {"replicas", "0"},
           {"replicas", "6"},
           {"replicas", "three"},
           {"failureDomain", "zone"},
           {"XXX_FakeKey", "XXX_FakeValue"}}) {
    EXPECT_EQ(Modify(id, {{key, value}}).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << key << "=" << value;
  }
  EXPECT_EQ(Modify(unknown, {{"replicas", "3"}}).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Three hosts cannot hold four replicas apart.
  EXPECT_EQ(Modify(id, {{"replicas", "4"}}).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  VolumeCatalog catalog(&pool_->client());
  auto unchanged = catalog.Get(id);
  ASSERT_TRUE(unchanged.ok());
  EXPECT_EQ(unchanged->replicas, 2);
  EXPECT_EQ(unchanged->wanted_replicas, 0);
  EXPECT_EQ(unchanged->moving_to_epoch, 0u);
  // Nothing to change is done.
  EXPECT_TRUE(Modify(id, {}).ok());
  EXPECT_TRUE(Modify(id, {{"replicas", "2"}}).ok());
  EXPECT_EQ(catalog.Get(id)->wanted_replicas, 0);

  // Up to three: every chunk gets a third current copy.
  ASSERT_TRUE(Modify(id, {{"replicas", "3"}}).ok());
  WaitForReplicas(id, 3);
  ExpectChunksOn(id, 3, chunk_data);
  v1::ControllerGetVolumeRequest get;
  get.set_volume_id(id);
  v1::ControllerGetVolumeResponse got;
  grpc::ClientContext ctx;
  ASSERT_TRUE(controller_->ControllerGetVolume(&ctx, get, &got).ok());
  EXPECT_EQ(got.volume().volume_context().at("replicas"), "3");

  // Down to two: the extra copies go.
  ASSERT_TRUE(Modify(id, {{"replicas", "2"}}).ok());
  WaitForReplicas(id, 2);
  ExpectChunksOn(id, 2, chunk_data);
}

TEST_F(CsiTest, ModifyingAStagedVolumeMovesItThroughItsWriter) {
  constexpr int64_t kChunk = 4 * kMiB;
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create("modify-staged", 8 * kMiB, 0, &created, BlockCap(),
                     {{"replicas", "2"}})
                  .ok());
  const std::string id = created.volume().volume_id();
  const std::string dev = AttachBlock(a_, "h1", id);
  const int fd = open(dev.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  AlignedBuffer data(2 * kChunk);
  std::memset(data.bytes(), 'a', kChunk);
  std::memset(data.bytes() + kChunk, 'b', kChunk);
  ASSERT_EQ(pwrite(fd, data.bytes(), 2 * kChunk, 0), 2 * kChunk);

  // The storage daemons leave an attached volume to its writer, the node
  // plugin that staged it.
  ASSERT_TRUE(Modify(id, {{"replicas", "3"}}).ok());
  WaitForReplicas(id, 3);
  ExpectChunksOn(id, 3, {std::string(kChunk, 'a'), std::string(kChunk, 'b')});
  // Its writes reach the new replica too.
  std::memset(data.bytes(), 'c', kChunk);
  ASSERT_EQ(pwrite(fd, data.bytes(), kChunk, 0), kChunk);
  ASSERT_EQ(fdatasync(fd), 0);
  ExpectChunksOn(id, 3, {std::string(kChunk, 'c'), std::string(kChunk, 'b')});
  close(fd);
  DetachBlock(a_, "h1", id);
}

// Bytes that depend on `seed` and the position.
void Fill(uint8_t* out, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 7;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<uint8_t>(x);
  }
}

// Writes `n` bytes of Fill(seed) at `offset` of the device, O_DIRECT.
bool WriteDevice(const std::string& dev, uint64_t offset, size_t n,
                 uint64_t seed) {
  AlignedBuffer buf(n);
  Fill(buf.data(), n, seed);
  int fd = open(dev.c_str(), O_RDWR | O_DIRECT);
  if (fd < 0) return false;
  bool ok = pwrite(fd, buf.data(), n, static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(n);
  close(fd);
  return ok;
}

// Whether the device holds Fill(seed) (or zeros, seed 0) over the range.
bool DeviceHolds(const std::string& dev, uint64_t offset, size_t n,
                 uint64_t seed) {
  AlignedBuffer buf(n), want(n);
  if (seed != 0) Fill(want.data(), n, seed);
  int fd = open(dev.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  bool ok = pread(fd, buf.data(), n, static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(n);
  close(fd);
  return ok && std::memcmp(buf.data(), want.data(), n) == 0;
}

TEST_F(CsiTest, SnapshotOutlivesItsVolumeAndRestoresByteForByte) {
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create("snap-source", 64 << 20, 0, &created, BlockCap()).ok());
  const std::string vol = created.volume().volume_id();
  std::string dev = AttachBlock(a_, "h1", vol);
  // Three whole chunks, and one block far away in chunk 10.
  ASSERT_TRUE(WriteDevice(dev, 0, 12 << 20, 1));
  ASSERT_TRUE(WriteDevice(dev, 40 << 20, 4096, 2));
  const std::string snap = MustSnapshot("snap-1", vol);
  EXPECT_EQ(MustSnapshot("snap-1", vol), snap);  // the same name again
  // Writes after the snapshot change the volume only.
  ASSERT_TRUE(WriteDevice(dev, 4 << 20, 1 << 20, 3));
  ASSERT_TRUE(WriteDevice(dev, 48 << 20, 4096, 4));
  EXPECT_TRUE(DeviceHolds(dev, 4 << 20, 1 << 20, 3));
  DetachBlock(a_, "h1", vol);

  // The same name of another volume is taken.
  v1::CreateVolumeResponse other;
  ASSERT_TRUE(Create("snap-other", 8 << 20, 0, &other, BlockCap()).ok());
  v1::CreateSnapshotResponse taken;
  EXPECT_EQ(Snapshot("snap-1", other.volume().volume_id(), &taken).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Snapshot("snap-x", "csi-no-such-volume", &taken).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // The source goes; the snapshot stays usable.
  ASSERT_TRUE(DeleteVolume(vol).ok());
  ASSERT_TRUE(DeleteVolume(other.volume().volume_id()).ok());
  v1::CreateVolumeResponse restored;
  grpc::Status r = CreateFrom("restored", snap, false, 128 << 20, 0, &restored);
  ASSERT_TRUE(r.ok()) << r.error_message();
  EXPECT_EQ(restored.volume().capacity_bytes(), 128 << 20);
  EXPECT_EQ(restored.volume().content_source().snapshot().snapshot_id(), snap);
  v1::CreateVolumeResponse small;
  EXPECT_EQ(
      CreateFrom("small", snap, false, 32 << 20, 32 << 20, &small).error_code(),
      grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(
      CreateFrom("nothing", "snap-0000", false, 0, 0, &small).error_code(),
      grpc::StatusCode::NOT_FOUND);

  const std::string copy = restored.volume().volume_id();
  std::string dev2 = AttachBlock(b_, "h2", copy);
  EXPECT_TRUE(DeviceHolds(dev2, 0, 12 << 20, 1));
  EXPECT_TRUE(DeviceHolds(dev2, 40 << 20, 4096, 2));
  EXPECT_TRUE(DeviceHolds(dev2, 48 << 20, 4096, 0));
  EXPECT_TRUE(DeviceHolds(dev2, 64 << 20, 1 << 20, 0));
  DetachBlock(b_, "h2", copy);

  // A clone of the restored volume holds the same.
  v1::CreateVolumeResponse clone;
  r = CreateFrom("clone", copy, true, 0, 0, &clone);
  ASSERT_TRUE(r.ok()) << r.error_message();
  EXPECT_EQ(clone.volume().capacity_bytes(), 128 << 20);
  std::string dev3 = AttachBlock(a_, "h1", clone.volume().volume_id());
  EXPECT_TRUE(DeviceHolds(dev3, 0, 12 << 20, 1));
  EXPECT_TRUE(DeviceHolds(dev3, 40 << 20, 4096, 2));
  DetachBlock(a_, "h1", clone.volume().volume_id());

  ASSERT_TRUE(DeleteVolume(clone.volume().volume_id()).ok());
  ASSERT_TRUE(DeleteVolume(copy).ok());
  ASSERT_TRUE(DeleteSnapshot(snap).ok());
  EXPECT_TRUE(DeleteSnapshot(snap).ok());
  ExpectNothingLeft();
}

// A CO that stops waiting for a restore calls again while the first call
// still copies: the second call must not copy too.
TEST_F(CsiTest, RestoreRetriedWhileFillingCopiesOnce) {
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create("fill-source", 64 << 20, 0, &created, BlockCap()).ok());
  const std::string vol = created.volume().volume_id();
  std::string dev = AttachBlock(a_, "h1", vol);
  ASSERT_TRUE(WriteDevice(dev, 0, 64 << 20, 5));
  DetachBlock(a_, "h1", vol);
  const std::string snap = MustSnapshot("fill-snap", vol);

  grpc::Status first, second;
  v1::CreateVolumeResponse first_out, second_out;
  std::thread a(
      [&] { first = CreateFrom("filled", snap, false, 0, 0, &first_out); });
  absl::SleepFor(absl::Milliseconds(50));
  second = CreateFrom("filled", snap, false, 0, 0, &second_out);
  a.join();
  EXPECT_TRUE(first.ok()) << first.error_message();
  EXPECT_TRUE(second.ok() || second.error_code() == grpc::StatusCode::ABORTED)
      << second.error_message();
  v1::CreateVolumeResponse again;
  ASSERT_TRUE(CreateFrom("filled", snap, false, 0, 0, &again).ok());
  const std::string id = again.volume().volume_id();
  EXPECT_EQ(first_out.volume().volume_id(), id);

  std::ifstream in(a_.log);
  std::string line;
  int fills = 0;
  while (std::getline(in, line)) {
    if (absl::StrContains(line, "Volume filled volumeID=" + id)) ++fills;
  }
  EXPECT_EQ(fills, 1);
  std::string dev2 = AttachBlock(b_, "h2", id);
  EXPECT_TRUE(DeviceHolds(dev2, 0, 64 << 20, 5));
  DetachBlock(b_, "h2", id);
  ASSERT_TRUE(DeleteVolume(id).ok());
  ASSERT_TRUE(DeleteVolume(vol).ok());
  ASSERT_TRUE(DeleteSnapshot(snap).ok());
}

TEST_F(CsiTest, SnapshotPagesCoverEverySnapshotOnceWhileSnapshotsGo) {
  std::string vol = MustCreate("paged", 8 << 20);
  std::string other = MustCreate("paged-other", 8 << 20);
  std::set<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.insert(MustSnapshot(absl::StrCat("page-snap-", i), vol));
  }
  const std::string other_snap = MustSnapshot("other-snap", other);

  std::set<std::string> seen;
  std::string token;
  bool deleted = false;
  do {
    v1::ListSnapshotsRequest req;
    req.set_max_entries(2);
    req.set_starting_token(token);
    req.set_source_volume_id(vol);
    v1::ListSnapshotsResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = controller_->ListSnapshots(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_LE(resp.entries_size(), 2);
    for (const auto& e : resp.entries()) {
      EXPECT_EQ(e.snapshot().source_volume_id(), vol);
      EXPECT_TRUE(seen.insert(e.snapshot().snapshot_id()).second)
          << "seen twice: " << e.snapshot().snapshot_id();
    }
    token = resp.next_token();
    if (!deleted && !token.empty()) {
      // Delete the last snapshot of this page and one not listed yet.
      std::string later = *ids.rbegin();
      ASSERT_TRUE(
          DeleteSnapshot(resp.entries().rbegin()->snapshot().snapshot_id())
              .ok());
      ASSERT_TRUE(DeleteSnapshot(later).ok());
      ids.erase(later);
      deleted = true;
    }
  } while (!token.empty());
  for (const std::string& id : ids) EXPECT_EQ(seen.count(id), 1u) << id;
  EXPECT_EQ(seen.count(other_snap), 0u);

  // By id: that one, whatever its volume; an unknown id lists nothing.
  for (const auto& [id, want] : std::vector<std::pair<std::string, int>>{
           {other_snap, 1}, {"snap-00000000", 0}, {"../../tmp/x", 0}}) {
    v1::ListSnapshotsRequest req;
    req.set_snapshot_id(id);
    v1::ListSnapshotsResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(controller_->ListSnapshots(&ctx, req, &resp).ok()) << id;
    EXPECT_EQ(resp.entries_size(), want) << id;
  }

  for (const std::string& bad :
       {std::string("invalid-token"), std::string("-1"), std::string("99999"),
        std::string(4096, 'z')}) {
    v1::ListSnapshotsRequest req;
    req.set_starting_token(bad);
    v1::ListSnapshotsResponse resp;
    grpc::ClientContext ctx;
    EXPECT_EQ(controller_->ListSnapshots(&ctx, req, &resp).error_code(),
              grpc::StatusCode::ABORTED)
        << bad;
  }
  v1::ListSnapshotsRequest negative;
  negative.set_max_entries(-1);
  v1::ListSnapshotsResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(controller_->ListSnapshots(&ctx, negative, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(CsiTest, HostileSnapshotIdsTouchNothing) {
  std::string canary = Path("canary");
  std::ofstream(canary) << "still here";
  std::string vol = MustCreate("hostile-source", 8 << 20);
  std::string snap = MustSnapshot("hostile-snap", vol);
  for (const std::string& id :
       {std::string("../../tmp/x"), std::string("../canary"), canary,
        std::string("a/b"), std::string(".."), std::string(4096, 's'),
        std::string("snap-unknown")}) {
    EXPECT_TRUE(DeleteSnapshot(id).ok()) << id;
    v1::GetSnapshotRequest get;
    get.set_snapshot_id(id);
    v1::GetSnapshotResponse got;
    grpc::ClientContext ctx;
    EXPECT_EQ(controller_->GetSnapshot(&ctx, get, &got).error_code(),
              grpc::StatusCode::NOT_FOUND)
        << id;
    v1::CreateVolumeResponse resp;
    EXPECT_EQ(CreateFrom("from-hostile", id, false, 0, 0, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND)
        << id;
    EXPECT_EQ(CreateFrom("clone-hostile", id, true, 0, 0, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND)
        << id;
  }
  v1::CreateSnapshotResponse resp;
  EXPECT_EQ(Snapshot("", vol, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Snapshot("x", "", &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Snapshot("x", "../../tmp/x", &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(DeleteSnapshot("").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  std::ifstream in(canary);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "still here");
  // The real snapshot was never touched by any of that.
  v1::GetSnapshotRequest get;
  get.set_snapshot_id(snap);
  v1::GetSnapshotResponse got;
  grpc::ClientContext ctx;
  ASSERT_TRUE(controller_->GetSnapshot(&ctx, get, &got).ok());
  EXPECT_EQ(got.snapshot().source_volume_id(), vol);
}

// A writer on h1 writes one block after another, each only once its
// predecessor was acknowledged, while the controller takes a snapshot.
// Write i goes to its own block, scattered over every chunk, and carries
// i. The snapshot must hold every write acknowledged before CreateSnapshot
// was called, none issued after it returned, and be a prefix: writes 0 to
// k, nothing else. The writer must go on writing afterwards.
TEST_F(CsiTest, SnapshotTakenWhileWritingIsCrashConsistent) {
  constexpr uint64_t kBlocks = (64 << 20) / 4096;
  constexpr uint64_t kStride = 1031;  // odd: i -> i * kStride is one-to-one
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create("busy", 64 << 20, 0, &created, BlockCap()).ok());
  const std::string vol = created.volume().volume_id();
  std::string dev = AttachBlock(a_, "h1", vol);

  std::atomic<int64_t> acked{-1};
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::thread writer([&] {
    int fd = open(dev.c_str(), O_RDWR | O_DIRECT);
    if (fd < 0) {
      ++errors;
      return;
    }
    AlignedBuffer block(4096);
    for (uint64_t i = 0; i < kBlocks && !stop.load(); ++i) {
      Fill(block.data(), 4096, i + 1000);
      std::memcpy(block.data(), &i, sizeof(i));
      block.data()[8] = 0xA5;  // a written block, whatever i is
      off_t at = static_cast<off_t>((i * kStride) % kBlocks * 4096);
      if (pwrite(fd, block.data(), 4096, at) != 4096) {
        ++errors;
        break;
      }
      acked.store(static_cast<int64_t>(i));
    }
    close(fd);
  });
  auto wait_for = [&](int64_t n) {
    for (int i = 0; i < 600 && acked.load() < n && errors.load() == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    return acked.load() >= n;
  };
  ASSERT_TRUE(wait_for(100)) << "the writer did not get going";

  const int64_t before = acked.load();
  std::string snap = MustSnapshot("busy-snap", vol);
  const int64_t returned = acked.load();
  // It keeps writing with a new generation, not fenced for good.
  bool goes_on = wait_for(returned + 100);
  stop = true;
  writer.join();
  EXPECT_TRUE(goes_on) << "the writer stopped after the snapshot";
  ASSERT_EQ(errors.load(), 0) << "a write failed";
  DetachBlock(a_, "h1", vol);

  v1::CreateVolumeResponse restored;
  grpc::Status r = CreateFrom("busy-restored", snap, false, 0, 0, &restored);
  ASSERT_TRUE(r.ok()) << r.error_message();
  std::string dev2 = AttachBlock(b_, "h2", restored.volume().volume_id());
  int fd = open(dev2.c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0);
  AlignedBuffer buf(1 << 20), want(4096);
  std::set<int64_t> found;
  int bad = 0;
  for (uint64_t at = 0; at < kBlocks * 4096; at += buf.size()) {
    ASSERT_EQ(pread(fd, buf.data(), buf.size(), static_cast<off_t>(at)),
              static_cast<ssize_t>(buf.size()));
    for (size_t off = 0; off < buf.size(); off += 4096) {
      const uint8_t* b = buf.data() + off;
      if (b[8] != 0xA5) continue;
      uint64_t i;
      std::memcpy(&i, b, sizeof(i));
      Fill(want.data(), 4096, i + 1000);
      std::memcpy(want.data(), &i, sizeof(i));
      want.data()[8] = 0xA5;
      if (i >= kBlocks || (i * kStride) % kBlocks * 4096 != at + off ||
          std::memcmp(b, want.data(), 4096) != 0) {
        ++bad;
        continue;
      }
      found.insert(static_cast<int64_t>(i));
    }
  }
  close(fd);
  DetachBlock(b_, "h2", restored.volume().volume_id());

  EXPECT_EQ(bad, 0) << "blocks that no write wrote";
  ASSERT_FALSE(found.empty());
  const int64_t last = *found.rbegin();
  RecordProperty("acknowledgedBefore", static_cast<int>(before));
  RecordProperty("lastInSnapshot", static_cast<int>(last));
  RecordProperty("acknowledgedAtReturn", static_cast<int>(returned));
  EXPECT_EQ(static_cast<int64_t>(found.size()), last + 1)
      << "not a prefix of the writes: " << found.size() << " of 0.." << last;
  EXPECT_GE(last, before) << "acknowledged writes are missing";
  EXPECT_LE(last, returned + 1) << "writes issued after the snapshot are in";
}

}  // namespace
}  // namespace juke
