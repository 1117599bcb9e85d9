// Volumes over a real pool: etcd plus three storage daemons as separate
// processes, the catalog in etcd and replicated I/O through VolumeClient.

#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

#include "src/common/checksum.h"
#include "src/model/map_store.h"
#include "src/model/placement.h"
#include "src/volume/mover.h"
#include "src/volume/recovery.h"
#include "src/volume/snapshot_mover.h"
#include "src/volume/snapshots.h"
#include "src/volume/volume_catalog.h"
#include "src/volume/volume_client.h"

#include "tests/testing/test_pool.h"

namespace juke {
namespace {

namespace v1 = storage::v1;
using testing::TestPool;

constexpr uint64_t kChunk = 4ull << 20;

std::vector<uint8_t> Random(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> data(size);
  for (uint8_t& b : data) b = static_cast<uint8_t>(rng());
  return data;
}

// Writes random 64 KiB pieces at random aligned offsets of the volume's
// first `size` bytes until stopped, and applies each acknowledged piece to
// `data`, which so stays what the volume must hold.
class BackgroundWriter {
 public:
  BackgroundWriter(VolumeClient* client, std::vector<uint8_t>* data,
                   uint64_t size, uint64_t rng_seed, uint64_t first_seed)
      : thread_([=, this] {
          std::mt19937_64 rng(rng_seed);
          uint64_t seed = first_seed;
          while (!stop_.load()) {
            uint64_t offset = (rng() % (size / 65536)) * 65536;
            std::vector<uint8_t> piece = Random(65536, seed++);
            if (client->Write(offset, piece).ok()) {
              std::copy(piece.begin(), piece.end(), data->begin() + offset);
              ++writes_;
            } else {
              ++failures_;
            }
          }
        }) {}
  ~BackgroundWriter() { Stop(); }
  BackgroundWriter(const BackgroundWriter&) = delete;
  BackgroundWriter& operator=(const BackgroundWriter&) = delete;

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // Waits until `total` writes have been acknowledged since the start.
  void WaitForWrites(int total) const {
    while (writes_.load() < total) absl::SleepFor(absl::Milliseconds(10));
  }
  int writes() const { return writes_.load(); }
  int failures() const { return failures_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> writes_{0};
  std::atomic<int> failures_{0};
  std::thread thread_;  // Last: it starts once the counters exist.
};

class VolumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pool = TestPool::Start();
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    catalog_ = std::make_unique<VolumeCatalog>(&pool_->client());
    ASSERT_TRUE(RefreshMap(pool_->client()).ok());
  }

  VolumeRecord Shape(const std::string& id, uint64_t size, int replicas = 3) {
    VolumeRecord r;
    r.id = id;
    r.size_bytes = size;
    r.replicas = replicas;
    return r;
  }

  ClusterMap Map() {
    auto map = RefreshMap(pool_->client());
    EXPECT_TRUE(map.ok()) << map.status();
    return map.ok() ? *map : ClusterMap();
  }

  // Attaches `id` on `node` (taking it over if held elsewhere), fences the
  // pool at the new generation and opens a client as that writer.
  std::unique_ptr<VolumeClient> AttachWriter(const std::string& id,
                                             const std::string& node,
                                             bool take_over = false) {
    auto record = catalog_->Attach(id, node, false, take_over);
    EXPECT_TRUE(record.ok()) << record.status();
    if (!record.ok()) return nullptr;
    ClusterMap map = Map();
    absl::Status fenced = FenceVolumeEverywhere(
        &pool_->client(), &clients_, map, id, record->attachment->generation);
    EXPECT_TRUE(fenced.ok()) << fenced;
    auto client = VolumeClient::Open(catalog_.get(), &clients_, *record, map);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // The bytes one replica holds, read straight from its daemon.
  absl::StatusOr<std::string> ReadReplica(const ClusterMap& map,
                                          const std::string& disk_id,
                                          const std::string& volume,
                                          uint64_t chunk, uint64_t offset,
                                          uint64_t length, uint64_t epoch = 0) {
    const MapDisk* disk = map.FindDisk(disk_id);
    v1::ReadChunkRequest req;
    req.set_disk_id(disk_id);
    req.mutable_chunk()->set_volume_id(volume);
    req.mutable_chunk()->set_index(chunk);
    req.mutable_chunk()->set_epoch(epoch);
    req.set_offset(offset);
    req.set_length(length);
    v1::ReadChunkResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = clients_.For(disk->address)->ReadChunk(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          s.error_message());
    }
    return resp.data();
  }

  // Checks that every replica of chunks [0, chunks) holds `expected`: of
  // the live volume, or with `epoch` of that snapshot of it.
  void ExpectReplicasHold(const std::string& volume, uint64_t chunks,
                          const std::vector<uint8_t>& expected,
                          uint64_t epoch = 0) {
    ClusterMap map = Map();
    for (uint64_t c = 0; c < chunks; ++c) {
      auto disks = PlaceChunk(map, volume, c, 3, FailureDomain::kHost);
      ASSERT_TRUE(disks.ok());
      for (const std::string& d : *disks) {
        auto replica = ReadReplica(map, d, volume, c, 0, kChunk, epoch);
        ASSERT_TRUE(replica.ok()) << d << ": " << replica.status();
        ASSERT_EQ(replica->size(), kChunk);
        EXPECT_EQ(
            std::memcmp(replica->data(), expected.data() + c * kChunk, kChunk),
            0)
            << "chunk " << c << " differs on " << d;
      }
    }
  }

  void WaitDown(const std::string& host) {
    absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (absl::Now() < deadline) {
      auto hosts = ListHosts(pool_->client());
      ASSERT_TRUE(hosts.ok());
      for (const HostStatus& h : *hosts) {
        if (h.record.host_id == host && !h.up) return;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    FAIL() << host << " never went down";
  }

  std::unique_ptr<TestPool> pool_;
  // Runs the writer's move passes until one finishes the move, for at most
  // 90 s, adding up the copies each pass made into `copied`.
  MoveProgress MoveUntilDone(VolumeClient* client, uint64_t* copied = nullptr) {
    RateLimiter paced(64ull << 20);
    MoveProgress progress;
    absl::Time deadline = absl::Now() + absl::Seconds(90);
    while (progress.phase != "done" && absl::Now() < deadline) {
      auto p = client->Move(&paced);
      EXPECT_TRUE(p.ok()) << p.status();
      if (!p.ok()) break;
      progress = *p;
      if (copied != nullptr) *copied += p->copied;
    }
    EXPECT_EQ(progress.phase, "done") << progress.reason;
    return progress;
  }

  std::unique_ptr<VolumeCatalog> catalog_;
  ChunkClientPool clients_;
};

TEST_F(VolumeTest, CreateIsIdempotentAndRejectsBadRequests) {
  auto v = catalog_->Create(Shape("vol-a", 16 * kChunk));
  ASSERT_TRUE(v.ok()) << v.status();
  auto again = catalog_->Create(Shape("vol-a", 16 * kChunk));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->created_at, v->created_at);
  EXPECT_EQ(catalog_->Create(Shape("vol-a", 32 * kChunk)).status().code(),
            absl::StatusCode::kAlreadyExists);

  EXPECT_EQ(catalog_->Create(Shape("vol-b", 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->Create(Shape("vol-b", kChunk + 4096)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->Create(Shape("vol-b", 1ull << 62)).status().code(),
            absl::StatusCode::kOutOfRange);
  for (const std::string& id :
       {std::string("a/b"), std::string(".."), std::string("x\0y", 3)}) {
    EXPECT_EQ(catalog_->Create(Shape(id, kChunk)).status().code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(catalog_->Get(id).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  // Four replicas need four hosts; the pool has three. Nothing is created.
  EXPECT_EQ(catalog_->Create(Shape("vol-c", kChunk, 4)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(catalog_->Get("vol-c").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(catalog_->Get("no-such-volume").status().code(),
            absl::StatusCode::kNotFound);

  auto all = catalog_->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].id, "vol-a");
}

TEST_F(VolumeTest, WritesReachEveryReplicaByteForByte) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-r", 8 * kChunk)).ok());
  auto client = AttachWriter("vol-r", "h1");
  ASSERT_NE(client, nullptr);

  // 6 MiB from the middle of chunk 1 into chunk 3.
  uint64_t offset = kChunk + uint64_t{512} * 1024;
  std::vector<uint8_t> data = Random(6 << 20, 1);
  ASSERT_TRUE(client->Write(offset, data).ok());
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(client->Read(offset, back).ok());
  EXPECT_EQ(back, data);

  // Never-written space reads as zeros.
  std::vector<uint8_t> zeros(8192, 1);
  ASSERT_TRUE(client->Read(7 * kChunk, zeros).ok());
  EXPECT_EQ(zeros, std::vector<uint8_t>(8192, 0));

  // Every replica of chunk 2 holds the same bytes, each on another host.
  ClusterMap map = Map();
  auto disks = PlaceChunk(map, "vol-r", 2, 3, FailureDomain::kHost);
  ASSERT_TRUE(disks.ok());
  std::set<std::string> hosts;
  // The write covers the first 2.5 MiB of chunk 2.
  uint64_t in_chunk2 = offset + data.size() - 2 * kChunk;
  std::string expected(
      reinterpret_cast<const char*>(data.data()) + (2 * kChunk - offset),
      in_chunk2);
  for (const std::string& d : *disks) {
    hosts.insert(map.FindDisk(d)->host_id);
    auto replica = ReadReplica(map, d, "vol-r", 2, 0, in_chunk2);
    ASSERT_TRUE(replica.ok()) << replica.status();
    EXPECT_TRUE(*replica == expected) << "replica on " << d << " differs";
  }
  EXPECT_EQ(hosts.size(), 3u);

  // Ranges past the end and unaligned ones are refused.
  EXPECT_EQ(client->Write(8 * kChunk, std::vector<uint8_t>(4096)).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(client->Write(100, std::vector<uint8_t>(4096)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(VolumeTest, KilledHostGoesStaleAndWritesGoOn) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-k", 4 * kChunk)).ok());
  auto client = AttachWriter("vol-k", "h1");
  ASSERT_NE(client, nullptr);
  std::vector<uint8_t> first = Random(4 * kChunk, 2);
  ASSERT_TRUE(client->Write(0, first).ok());

  // h2 dies; the map still says it is up, so its writes fail and its
  // replicas are recorded stale before each write is acknowledged.
  ASSERT_TRUE(pool_->host(1).process->Kill(SIGKILL).ok());
  std::vector<uint8_t> second = Random(4 * kChunk, 3);
  ASSERT_TRUE(client->Write(0, second).ok());
  auto marks = catalog_->StaleMarks("vol-k");
  ASSERT_TRUE(marks.ok());
  EXPECT_EQ(marks->size(), 4u) << "each chunk has one replica on h2";
  for (const auto& [chunk, disk] : *marks) {
    EXPECT_EQ(disk.rfind("h2.", 0), 0u) << disk;
  }

  std::vector<uint8_t> back(second.size());
  ASSERT_TRUE(client->Read(0, back).ok());
  EXPECT_EQ(back, second);

  // Once the pool sees h2 down, a new client skips it outright.
  WaitDown("h2");
  auto record = catalog_->Get("vol-k");
  ASSERT_TRUE(record.ok());
  auto fresh = VolumeClient::Open(catalog_.get(), &clients_, *record, Map());
  ASSERT_TRUE(fresh.ok());
  std::vector<uint8_t> third = Random(kChunk, 4);
  ASSERT_TRUE((*fresh)->Write(kChunk, third).ok());
  std::vector<uint8_t> one(kChunk);
  ASSERT_TRUE((*fresh)->Read(kChunk, one).ok());
  EXPECT_EQ(one, third);

  // Back up, h2 still holds the old data; the stale marks keep reads away
  // from it until recovery catches it up.
  ASSERT_TRUE(pool_->StartHost(pool_->host(1)).ok());
  auto after = VolumeClient::Open(catalog_.get(), &clients_, *record, Map());
  ASSERT_TRUE(after.ok());
  ASSERT_TRUE((*after)->Read(kChunk, one).ok());
  EXPECT_EQ(one, third);

  // The writer recovers h2's replicas: every mark goes, and every replica
  // holds the same bytes again.
  RateLimiter unlimited(0);
  auto progress = (*after)->RecoverStale(&unlimited);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->marks, 4u);
  EXPECT_EQ(progress->recovered, 4u);
  EXPECT_EQ(progress->bytes, 4 * kChunk);
  marks = catalog_->StaleMarks("vol-k");
  ASSERT_TRUE(marks.ok());
  EXPECT_TRUE(marks->empty());
  std::vector<uint8_t> expected = second;
  std::copy(third.begin(), third.end(), expected.begin() + kChunk);
  ExpectReplicasHold("vol-k", 4, expected);
  // Nothing left to do: a second pass copies nothing.
  progress = (*after)->RecoverStale(&unlimited);
  ASSERT_TRUE(progress.ok());
  EXPECT_EQ(progress->marks, 0u);
  EXPECT_EQ(progress->bytes, 0u);
}

TEST_F(VolumeTest, DetachedVolumeIsRecoveredUntilAWriterAttaches) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-s", 2 * kChunk)).ok());
  std::vector<uint8_t> data = Random(2 * kChunk, 12);
  {
    auto client = AttachWriter("vol-s", "h1");
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->Write(0, Random(2 * kChunk, 13)).ok());
    ASSERT_TRUE(pool_->host(2).process->Kill(SIGKILL).ok());
    ASSERT_TRUE(client->Write(0, data).ok());
  }
  auto marks = catalog_->StaleMarks("vol-s");
  ASSERT_TRUE(marks.ok());
  ASSERT_EQ(marks->size(), 2u);

  ClusterMap map = Map();
  RateLimiter unlimited(0);
  auto all = [](absl::string_view) { return true; };
  // Still attached: the writer recovers it, not a bystander.
  auto held = RecoverDetachedVolume(catalog_.get(), &clients_, map, "vol-s",
                                    all, &unlimited);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->marks, 2u);
  EXPECT_EQ(held->waiting, 2u);
  EXPECT_EQ(held->bytes, 0u);

  // Detached, but h3 is down: nothing can be done yet.
  ASSERT_TRUE(catalog_->Detach("vol-s", "h1").ok());
  auto down = RecoverDetachedVolume(catalog_.get(), &clients_, map, "vol-s",
                                    all, &unlimited);
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(down->waiting, 2u);

  // h3 is back: its replicas are copied and the marks cleared.
  ASSERT_TRUE(pool_->StartHost(pool_->host(2)).ok());
  auto back = RecoverDetachedVolume(catalog_.get(), &clients_, Map(), "vol-s",
                                    all, &unlimited);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->recovered, 2u);
  EXPECT_EQ(back->waiting, 0u);
  marks = catalog_->StaleMarks("vol-s");
  ASSERT_TRUE(marks.ok());
  EXPECT_TRUE(marks->empty());
  ExpectReplicasHold("vol-s", 2, data);
}

TEST_F(VolumeTest, KillDuringSustainedWritesLosesNoAcknowledgedWrite) {
  constexpr uint64_t kChunks = 6;
  constexpr uint64_t kBlock = 64 << 10;
  ASSERT_TRUE(catalog_->Create(Shape("vol-w", kChunks * kChunk)).ok());
  auto client = AttachWriter("vol-w", "h1");
  ASSERT_NE(client, nullptr);

  // A writer sweeps the volume in 64 KiB writes, round after round, and
  // keeps what every acknowledged write put where.
  std::vector<uint8_t> expected(kChunks * kChunk, 0);
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::atomic<int> failed{0};
  std::thread writer([&] {
    for (uint64_t seed = 100; !stop; ++seed) {
      uint64_t offset = (seed * 7919 * kBlock) % (kChunks * kChunk);
      std::vector<uint8_t> data = Random(kBlock, seed);
      if (client->Write(offset, data).ok()) {
        std::copy(data.begin(), data.end(), expected.begin() + offset);
        ++acked;
      } else {
        ++failed;
      }
    }
  });
  auto wait_acked = [&](int n) {
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (acked < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
  };
  wait_acked(50);
  ASSERT_TRUE(pool_->host(2).process->Kill(SIGKILL).ok());
  int at_kill = acked;
  wait_acked(at_kill + 100);
  EXPECT_GE(acked, at_kill + 100) << "writes stopped with one host down";
  ASSERT_TRUE(pool_->StartHost(pool_->host(2)).ok());
  client->UpdateLiveMap(Map());
  wait_acked(acked + 50);
  stop = true;
  writer.join();
  EXPECT_EQ(failed, 0) << "two replicas were always up";

  // h3 missed writes while down; now every acknowledged byte reads back.
  auto marks = catalog_->StaleMarks("vol-w");
  ASSERT_TRUE(marks.ok());
  EXPECT_FALSE(marks->empty());
  std::vector<uint8_t> back(expected.size());
  ASSERT_TRUE(client->Read(0, back).ok());
  EXPECT_TRUE(back == expected) << "an acknowledged write was lost";

  // Recovery brings h3 back, and every replica is byte-identical.
  RateLimiter limiter(0);
  auto progress = client->RecoverStale(&limiter);
  ASSERT_TRUE(progress.ok()) << progress.status();
  EXPECT_EQ(progress->recovered, marks->size());
  marks = catalog_->StaleMarks("vol-w");
  ASSERT_TRUE(marks.ok());
  EXPECT_TRUE(marks->empty());
  ExpectReplicasHold("vol-w", kChunks, expected);
}

TEST_F(VolumeTest, DaemonsRecoverDetachedVolumesByThemselves) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-auto", 2 * kChunk)).ok());
  std::vector<uint8_t> data = Random(2 * kChunk, 14);
  {
    auto client = AttachWriter("vol-auto", "h1");
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(pool_->host(1).process->Kill(SIGKILL).ok());
    ASSERT_TRUE(client->Write(0, data).ok());
  }
  ASSERT_TRUE(catalog_->Detach("vol-auto", "h1").ok());
  ASSERT_EQ(catalog_->StaleMarks("vol-auto")->size(), 2u);

  // h2's daemon finds its stale replicas on its own after it restarts.
  ASSERT_TRUE(pool_->StartHost(pool_->host(1)).ok());
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!catalog_->StaleMarks("vol-auto")->empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(catalog_->StaleMarks("vol-auto")->empty());
  ExpectReplicasHold("vol-auto", 2, data);
}

TEST_F(VolumeTest, MapChangesNeverSendReadsToDisksWithoutTheData) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-p", 8 * kChunk)).ok());
  std::vector<uint8_t> data = Random(8 * kChunk, 15);
  {
    auto client = AttachWriter("vol-p", "h1");
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->Write(0, data).ok());
  }
  ASSERT_TRUE(catalog_->Detach("vol-p", "h1").ok());
  ClusterMap before = Map();
  auto record = catalog_->Get("vol-p");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->placement_epoch, before.epoch());

  // Take one of h1's disks out: in the new map some chunks would be
  // placed on h1's other disk, which does not hold them.
  ASSERT_TRUE(
      SetDiskIn(pool_->client(), before.disks()[0].disk_id, false).ok());
  ClusterMap after = Map();
  ASSERT_GT(after.epoch(), before.epoch());
  int moved = 0;
  for (uint64_t c = 0; c < 8; ++c) {
    moved += *PlaceChunk(before, "vol-p", c, 3, FailureDomain::kHost) !=
             *PlaceChunk(after, "vol-p", c, 3, FailureDomain::kHost);
  }
  ASSERT_GT(moved, 0);

  // The volume still reads its data: it is placed with its pinned map.
  auto client = AttachWriter("vol-p", "h2");
  ASSERT_NE(client, nullptr);
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(client->Read(0, back).ok());
  EXPECT_TRUE(back == data);
  // A new volume is placed with the current map.
  ASSERT_TRUE(catalog_->Create(Shape("vol-q", kChunk)).ok());
  EXPECT_EQ(catalog_->Get("vol-q")->placement_epoch, after.epoch());
}

// The indexes of the volume's chunks on one disk (with `epoch`, those of
// that snapshot of it).
std::vector<uint64_t> ChunksOn(ChunkClientPool* clients, const ClusterMap& map,
                               const std::string& disk_id,
                               const std::string& volume, uint64_t epoch = 0) {
  const MapDisk* disk = map.FindDisk(disk_id);
  auto chunks = ListChunkIndexes(clients->For(disk->address), disk_id, volume,
                                 absl::Seconds(10), epoch);
  EXPECT_TRUE(chunks.ok()) << chunks.status();
  return chunks.ok() ? *chunks : std::vector<uint64_t>{};
}

// A disk that holds some of the volume's first `chunks` chunks.
std::string DiskHolding(const ClusterMap& map, const std::string& volume,
                        uint64_t chunks) {
  std::map<std::string, int> held;
  for (uint64_t c = 0; c < chunks; ++c) {
    auto disks = PlaceChunk(map, volume, c, 3, FailureDomain::kHost);
    EXPECT_TRUE(disks.ok()) << disks.status();
    if (!disks.ok()) continue;
    for (const std::string& d : *disks) ++held[d];
  }
  return held.begin()->first;
}

TEST_F(VolumeTest, DiskOutMovesADetachedVolumesChunksElsewhere) {
  constexpr uint64_t kChunks = 8;
  ASSERT_TRUE(catalog_->Create(Shape("vol-out", kChunks * kChunk)).ok());
  std::vector<uint8_t> data = Random(kChunks * kChunk, 21);
  {
    auto client = AttachWriter("vol-out", "h1");
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->Write(0, data).ok());
  }
  ASSERT_TRUE(catalog_->Detach("vol-out", "h1").ok());
  ClusterMap before = Map();
  std::string out = DiskHolding(before, "vol-out", kChunks);
  ASSERT_FALSE(ChunksOn(&clients_, before, out, "vol-out").empty());

  ASSERT_TRUE(SetDiskIn(pool_->client(), out, false).ok());
  ClusterMap after = Map();
  ASSERT_GT(after.epoch(), before.epoch());

  // The daemons move the volume by themselves: copies first, then the
  // switch, then the old copies go.
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  VolumeRecord record;
  while (absl::Now() < deadline) {
    record = *catalog_->Get("vol-out");
    if (record.placement_epoch == after.epoch() &&
        record.moving_to_epoch == 0 && record.leaving_epoch == 0) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_EQ(record.placement_epoch, after.epoch());
  EXPECT_EQ(record.moving_to_epoch, 0u);
  EXPECT_EQ(record.leaving_epoch, 0u);

  EXPECT_TRUE(ChunksOn(&clients_, after, out, "vol-out").empty());
  EXPECT_TRUE(catalog_->StaleMarks("vol-out")->empty());
  for (uint64_t c = 0; c < kChunks; ++c) {
    auto disks = PlaceChunk(after, "vol-out", c, 3, FailureDomain::kHost);
    ASSERT_TRUE(disks.ok());
    std::set<std::string> hosts;
    for (const std::string& d : *disks) {
      EXPECT_NE(d, out);
      hosts.insert(after.FindDisk(d)->host_id);
    }
    EXPECT_EQ(hosts.size(), 3u) << "chunk " << c;
  }
  // Every replica under the new placement is byte-identical to the data.
  ExpectReplicasHold("vol-out", kChunks, data);
  // Nothing is left anywhere but on the chunks' replicas.
  for (const MapDisk& d : after.disks()) {
    for (uint64_t c : ChunksOn(&clients_, after, d.disk_id, "vol-out")) {
      auto disks = PlaceChunk(after, "vol-out", c, 3, FailureDomain::kHost);
      EXPECT_NE(std::find(disks->begin(), disks->end(), d.disk_id),
                disks->end())
          << "chunk " << c << " left behind on " << d.disk_id;
    }
  }
}

// A snapshot follows the map like its volume: when a disk that holds some
// of its chunks goes out, the daemons copy them to the disks the new
// placement gives them, switch the record, and drop the old copies. The
// live volume has moved on since, so the copies must come from the
// snapshot's entries, not the volume's chunks.
TEST_F(VolumeTest, DiskOutMovesASnapshotsChunksToo) {
  constexpr uint64_t kChunks = 8;
  ASSERT_TRUE(catalog_->Create(Shape("vol-sm", kChunks * kChunk)).ok());
  std::vector<uint8_t> taken = Random(kChunks * kChunk, 51);
  {
    auto client = AttachWriter("vol-sm", "h1");
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->Write(0, taken).ok());
    auto snap = CreateSnapshot(catalog_.get(), &pool_->client(), &clients_,
                               "snap-sm", "vol-sm");
    ASSERT_TRUE(snap.ok()) << snap.status();
    ASSERT_TRUE(client->Write(0, Random(kChunks * kChunk, 52)).ok());
  }
  ASSERT_TRUE(catalog_->Detach("vol-sm", "h1").ok());
  SnapshotCatalog snapshots(&pool_->client());
  SnapshotRecord before = *snapshots.Get("snap-sm");
  ClusterMap map_before = Map();
  std::string out = DiskHolding(map_before, "vol-sm", kChunks);
  ASSERT_FALSE(
      ChunksOn(&clients_, map_before, out, "vol-sm", before.epoch).empty());

  ASSERT_TRUE(SetDiskIn(pool_->client(), out, false).ok());
  ClusterMap after = Map();
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  SnapshotRecord record = before;
  while (record.placement_epoch != after.epoch() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    record = *snapshots.Get("snap-sm");
  }
  ASSERT_EQ(record.placement_epoch, after.epoch());
  EXPECT_TRUE(record.stale.empty());
  EXPECT_TRUE(record.absent_disks.empty());
  EXPECT_EQ(record.epoch, before.epoch);
  // The pin went with the placement.
  auto new_pin =
      pool_->client().Get(MapPinKey(after.epoch(), SnapshotPinName("snap-sm")));
  auto old_pin = pool_->client().Get(
      MapPinKey(before.placement_epoch, SnapshotPinName("snap-sm")));
  ASSERT_TRUE(new_pin.ok() && old_pin.ok());
  EXPECT_TRUE(new_pin->has_value());
  EXPECT_FALSE(old_pin->has_value());

  // Every replica of the new placement holds the snapshot byte for byte,
  // the out disk none of it, and no other disk a copy it should not have.
  ExpectReplicasHold("vol-sm", kChunks, taken, record.epoch);
  EXPECT_TRUE(ChunksOn(&clients_, after, out, "vol-sm", record.epoch).empty());
  for (const MapDisk& d : after.disks()) {
    for (uint64_t c :
         ChunksOn(&clients_, after, d.disk_id, "vol-sm", record.epoch)) {
      auto disks = PlaceChunk(after, "vol-sm", c, 3, FailureDomain::kHost);
      EXPECT_NE(std::find(disks->begin(), disks->end(), d.disk_id),
                disks->end())
          << "snapshot chunk " << c << " left behind on " << d.disk_id;
    }
  }
  // Nothing more is due; another pass changes nothing.
  auto again = MoveSnapshot(&pool_->client(), catalog_.get(), &clients_, after,
                            "snap-sm", nullptr, absl::Seconds(10));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->phase, "");

  ASSERT_TRUE(DeleteSnapshot(&pool_->client(), &clients_, "snap-sm").ok());
  for (const MapDisk& d : after.disks()) {
    EXPECT_TRUE(
        ChunksOn(&clients_, after, d.disk_id, "vol-sm", record.epoch).empty())
        << d.disk_id;
  }
}

// A snapshot taken while a host is down lacks that host's replicas; once
// the host is back, the daemons copy them in, so the snapshot survives
// losing any other host afterwards.
TEST_F(VolumeTest, SnapshotReplicasMissedWhileAHostWasDownAreCopiedBack) {
  constexpr uint64_t kChunks = 4;
  ASSERT_TRUE(catalog_->Create(Shape("vol-sd", kChunks * kChunk)).ok());
  std::vector<uint8_t> taken = Random(kChunks * kChunk, 53);
  auto client = AttachWriter("vol-sd", "h1");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Write(0, Random(kChunks * kChunk, 54)).ok());
  ASSERT_TRUE(pool_->host(2).process->Kill(SIGKILL).ok());
  WaitDown("h3");
  client->UpdateLiveMap(Map());
  ASSERT_TRUE(client->Write(0, taken).ok());
  auto snap = CreateSnapshot(catalog_.get(), &pool_->client(), &clients_,
                             "snap-sd", "vol-sd");
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(snap->absent_disks.size(), 2u) << "both of h3's disks";
  client.reset();
  ASSERT_TRUE(catalog_->Detach("vol-sd", "h1").ok());

  ASSERT_TRUE(pool_->StartHost(pool_->host(2)).ok());
  SnapshotCatalog snapshots(&pool_->client());
  absl::Time deadline = absl::Now() + absl::Seconds(90);
  SnapshotRecord record = *snap;
  while (!(record.absent_disks.empty() && record.stale.empty()) &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    record = *snapshots.Get("snap-sd");
  }
  EXPECT_TRUE(record.absent_disks.empty());
  EXPECT_TRUE(record.stale.empty());
  // h3's replicas now hold the snapshot, not the older data h3 had.
  ExpectReplicasHold("vol-sd", kChunks, taken, record.epoch);
  EXPECT_TRUE(DeleteSnapshot(&pool_->client(), &clients_, "snap-sd").ok());
}

TEST_F(VolumeTest, WriterMovesItsVolumeWhileWriting) {
  constexpr uint64_t kChunks = 8;
  ASSERT_TRUE(catalog_->Create(Shape("vol-mv", kChunks * kChunk)).ok());
  std::vector<uint8_t> data = Random(kChunks * kChunk, 22);
  auto client = AttachWriter("vol-mv", "h1");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Write(0, data).ok());

  ClusterMap before = Map();
  std::string out = DiskHolding(before, "vol-mv", kChunks);
  ASSERT_TRUE(SetDiskIn(pool_->client(), out, false).ok());
  ClusterMap after = Map();
  client->UpdateLiveMap(after);

  // Writes go on through the whole move; each lands in `data` once
  // acknowledged.
  BackgroundWriter writer(client.get(), &data, kChunks * kChunk, 23, 100);
  // Let writes flow before, during and after the copies.
  writer.WaitForWrites(20);
  uint64_t copied = 0;
  MoveProgress progress = MoveUntilDone(client.get(), &copied);
  int during = writer.writes();
  absl::SleepFor(absl::Milliseconds(300));
  writer.Stop();
  EXPECT_EQ(progress.phase, "done") << progress.reason;
  EXPECT_GT(copied, 0u);
  EXPECT_GT(writer.writes(), during);
  EXPECT_EQ(writer.failures(), 0);

  VolumeRecord record = *catalog_->Get("vol-mv");
  EXPECT_EQ(record.placement_epoch, after.epoch());
  EXPECT_EQ(record.moving_to_epoch, 0u);
  EXPECT_EQ(record.leaving_epoch, 0u);
  EXPECT_TRUE(ChunksOn(&clients_, after, out, "vol-mv").empty());
  EXPECT_TRUE(catalog_->StaleMarks("vol-mv")->empty());
  ExpectReplicasHold("vol-mv", kChunks, data);
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(client->Read(0, back).ok());
  EXPECT_TRUE(back == data);
}

// A snapshot raises the volume's generation behind its barrier; a writer
// that writes nothing meanwhile learns it only from its next move, which
// must go on with a renewed generation rather than stop as fenced.
TEST_F(VolumeTest, WriterMovesItsVolumeAfterASnapshotFencedIt) {
  constexpr uint64_t kChunks = 4;
  ASSERT_TRUE(catalog_->Create(Shape("vol-sm", kChunks * kChunk)).ok());
  std::vector<uint8_t> data = Random(kChunks * kChunk, 31);
  auto client = AttachWriter("vol-sm", "h1");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Write(0, data).ok());
  const uint64_t before_snapshot = client->generation();

  auto snapshot = CreateSnapshot(catalog_.get(), &pool_->client(), &clients_,
                                 "snap-sm", "vol-sm");
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();

  ClusterMap before = Map();
  std::string out = DiskHolding(before, "vol-sm", kChunks);
  ASSERT_TRUE(SetDiskIn(pool_->client(), out, false).ok());
  ClusterMap after = Map();
  client->UpdateLiveMap(after);
  // Anyone but the writer sees the move due and leaves it to the writer.
  RateLimiter unused(1 << 20);
  auto seen = MoveVolume(catalog_.get(), &clients_, after, "vol-sm", nullptr,
                         &unused, absl::Seconds(10));
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->phase, "pending");
  EXPECT_TRUE(seen->left_to_writer);
  EXPECT_EQ(seen->from_epoch, before.epoch());
  EXPECT_EQ(seen->to_epoch, after.epoch());
  EXPECT_EQ(seen->copied, 0u);
  MoveUntilDone(client.get());
  EXPECT_GT(client->generation(), before_snapshot);
  EXPECT_TRUE(ChunksOn(&clients_, after, out, "vol-sm").empty());
  ExpectReplicasHold("vol-sm", kChunks, data);
  // The writer still writes.
  std::vector<uint8_t> piece = Random(65536, 32);
  ASSERT_TRUE(client->Write(0, piece).ok());
  EXPECT_TRUE(DeleteSnapshot(&pool_->client(), &clients_, "snap-sm").ok());
}

// Two calls for one snapshot at once: one takes it, the other is told to
// retry and then finds it taken; a snapshot left creating by a call that
// died is taken over once no taker can still be at work.
TEST_F(VolumeTest, OneSnapshotNameIsTakenOnceAtATime) {
  constexpr uint64_t kChunks = 4;
  ASSERT_TRUE(catalog_->Create(Shape("vol-ss", kChunks * kChunk)).ok());
  auto client = AttachWriter("vol-ss", "h1");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Write(0, Random(kChunks * kChunk, 41)).ok());

  // While a call is taking it (its record is creating and fresh).
  SnapshotRecord taking;
  taking.id = "snap-ss";
  taking.source_volume_id = "vol-ss";
  taking.size_bytes = kChunks * kChunk;
  taking.replicas = 3;
  taking.chunk_size = kChunk;
  taking.state = SnapshotState::kCreating;
  taking.created_at = absl::ToUnixSeconds(absl::Now());
  ASSERT_TRUE(pool_->client()
                  .Put(SnapshotKey("snap-ss"), *EncodeSnapshotRecord(taking))
                  .ok());
  auto second = CreateSnapshot(catalog_.get(), &pool_->client(), &clients_,
                               "snap-ss", "vol-ss");
  EXPECT_TRUE(absl::IsAborted(second.status())) << second.status();
  EXPECT_FALSE(catalog_->Get("vol-ss")->barrier.has_value());

  // The taker died long ago: the next call takes the snapshot over.
  taking.created_at = absl::ToUnixSeconds(absl::Now() - absl::Minutes(5));
  ASSERT_TRUE(pool_->client()
                  .Put(SnapshotKey("snap-ss"), *EncodeSnapshotRecord(taking))
                  .ok());
  auto taken = CreateSnapshot(catalog_.get(), &pool_->client(), &clients_,
                              "snap-ss", "vol-ss");
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->state, SnapshotState::kReady);
  EXPECT_GT(taken->created_at, taking.created_at);

  // Two calls at once for a new name: each ends with the snapshot or is
  // told to retry, and a retry finds the one snapshot.
  absl::StatusOr<SnapshotRecord> a, b;
  std::thread ta([&] {
    a = CreateSnapshot(catalog_.get(), &pool_->client(), &clients_, "snap-2",
                       "vol-ss");
  });
  std::thread tb([&] {
    b = CreateSnapshot(catalog_.get(), &pool_->client(), &clients_, "snap-2",
                       "vol-ss");
  });
  ta.join();
  tb.join();
  EXPECT_TRUE(a.ok() || absl::IsAborted(a.status())) << a.status();
  EXPECT_TRUE(b.ok() || absl::IsAborted(b.status())) << b.status();
  EXPECT_TRUE(a.ok() || b.ok()) << a.status() << " / " << b.status();
  auto again = CreateSnapshot(catalog_.get(), &pool_->client(), &clients_,
                              "snap-2", "vol-ss");
  ASSERT_TRUE(again.ok()) << again.status();
  if (a.ok()) {
    EXPECT_EQ(again->epoch, a->epoch);
  }
  if (b.ok()) {
    EXPECT_EQ(again->epoch, b->epoch);
  }
  // The writer goes on.
  ASSERT_TRUE(client->Write(0, Random(65536, 42)).ok());
  EXPECT_TRUE(DeleteSnapshot(&pool_->client(), &clients_, "snap-ss").ok());
  EXPECT_TRUE(DeleteSnapshot(&pool_->client(), &clients_, "snap-2").ok());
}

TEST_F(VolumeTest, WriterChangesItsReplicaCountWhileWriting) {
  constexpr uint64_t kChunks = 6;
  ASSERT_TRUE(catalog_->Create(Shape("vol-rc", kChunks * kChunk, 2)).ok());
  std::vector<uint8_t> data = Random(kChunks * kChunk, 31);
  auto client = AttachWriter("vol-rc", "h1");
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Write(0, data).ok());
  // Four replicas cannot be kept on three hosts: refused, nothing asked.
  EXPECT_EQ(catalog_->SetReplicas("vol-rc", 4).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(catalog_->Get("vol-rc")->wanted_replicas, 0);

  // Writes go on through both moves; each lands in `data` once
  // acknowledged.
  BackgroundWriter writer(client.get(), &data, kChunks * kChunk, 32, 200);
  auto move_to = [&](int replicas) {
    ASSERT_TRUE(catalog_->SetReplicas("vol-rc", replicas).ok());
    writer.WaitForWrites(20);
    MoveUntilDone(client.get());
    VolumeRecord record = *catalog_->Get("vol-rc");
    EXPECT_EQ(record.replicas, replicas);
    EXPECT_EQ(record.moving_to_epoch, 0u);
    EXPECT_EQ(record.leaving_epoch, 0u);
  };
  move_to(3);
  writer.WaitForWrites(writer.writes() + 20);
  writer.Stop();
  EXPECT_EQ(writer.failures(), 0);
  EXPECT_TRUE(catalog_->StaleMarks("vol-rc")->empty());
  ExpectReplicasHold("vol-rc", kChunks, data);

  // Down to two: the third copy of every chunk goes, the data stays.
  move_to(2);
  ClusterMap map = Map();
  for (uint64_t c = 0; c < kChunks; ++c) {
    auto three = PlaceChunk(map, "vol-rc", c, 3, FailureDomain::kHost);
    ASSERT_TRUE(three.ok());
    std::vector<uint64_t> on_third =
        ChunksOn(&clients_, map, (*three)[2], "vol-rc");
    EXPECT_EQ(std::count(on_third.begin(), on_third.end(), c), 0)
        << "chunk " << c << " kept on " << (*three)[2];
  }
  std::vector<uint8_t> back(data.size());
  ASSERT_TRUE(client->Read(0, back).ok());
  EXPECT_TRUE(back == data);
}

TEST_F(VolumeTest, MovingTheVolumeFencesTheOldWriter) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-m", 2 * kChunk)).ok());
  auto old_writer = AttachWriter("vol-m", "h1");
  ASSERT_NE(old_writer, nullptr);
  ASSERT_TRUE(old_writer->Write(0, Random(65536, 5)).ok());

  // Another node cannot simply attach it read-write...
  EXPECT_EQ(catalog_->Attach("vol-m", "h2", false, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // ...but it can take it over, and the pool is fenced before it writes.
  auto new_writer = AttachWriter("vol-m", "h2", /*take_over=*/true);
  ASSERT_NE(new_writer, nullptr);
  EXPECT_GT(new_writer->record().attachment->generation,
            old_writer->record().attachment->generation);
  std::vector<uint8_t> mine = Random(65536, 6);
  ASSERT_TRUE(new_writer->Write(0, mine).ok());

  // The old writer, still running, is refused and changes nothing.
  absl::Status late = old_writer->Write(0, Random(65536, 7));
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition) << late;
  EXPECT_EQ(old_writer->Write(kChunk, Random(4096, 8)).code(),
            absl::StatusCode::kFailedPrecondition);
  std::vector<uint8_t> back(mine.size());
  ASSERT_TRUE(new_writer->Read(0, back).ok());
  EXPECT_EQ(back, mine);
}

// A writer that dies after its write reached one replica of a chunk and
// not the others leaves them disagreeing, with no stale mark: reads would
// depend on which replica answers. The chunk is marked dirty, so the next
// writer settles it: the first current replica stays as it is (the write
// happened, or did not, for everyone), the replicas that differ from it
// are marked stale, and recovery copies it over them. The dead writer,
// still running, can settle nothing.
TEST_F(VolumeTest, WriteThatReachedOneReplicaIsSettledByTheNextWriter) {
  // Which replica, in placement order, took the half-done write: not the
  // first (it is rolled back) or the first (it is rolled forward).
  for (size_t took : {size_t{1}, size_t{0}}) {
    SCOPED_TRACE(absl::StrCat("replica ", took, " took the write"));
    const std::string id = absl::StrCat("vol-dirty-", took);
    ASSERT_TRUE(catalog_->Create(Shape(id, kChunk)).ok());
    auto old_writer = AttachWriter(id, "h1");
    ASSERT_NE(old_writer, nullptr);
    std::vector<uint8_t> before = Random(kChunk, 61 + took);
    ASSERT_TRUE(old_writer->Write(0, before).ok());
    auto dirty = catalog_->ListDirty(id);
    ASSERT_TRUE(dirty.ok()) << dirty.status();
    ASSERT_EQ(dirty->size(), 1u) << "chunk 0, written a moment ago";

    // The half-done write: one replica only, with the writer's generation.
    ClusterMap map = Map();
    auto replicas = PlaceChunk(map, id, 0, 3, FailureDomain::kHost);
    ASSERT_TRUE(replicas.ok());
    std::vector<uint8_t> half = Random(kChunk, 71 + took);
    v1::WriteChunkRequest req;
    req.set_disk_id((*replicas)[took]);
    req.mutable_chunk()->set_volume_id(id);
    req.set_data(half.data(), half.size());
    for (uint32_t c : BlockChecksums(half)) req.add_checksums(c);
    req.set_generation(old_writer->generation());
    v1::WriteChunkResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(clients_.For(map.FindDisk((*replicas)[took])->address)
                    ->WriteChunk(&ctx, req, &resp)
                    .ok());

    auto new_writer = AttachWriter(id, "h2", /*take_over=*/true);
    ASSERT_NE(new_writer, nullptr);
    const std::vector<uint8_t>& kept = took == 0 ? half : before;
    auto marks = catalog_->StaleMarks(id);
    ASSERT_TRUE(marks.ok());
    // The replicas that differ from the first: the one that took the
    // write, or, when the first took it, the two others.
    std::set<std::pair<uint64_t, std::string>> expected;
    for (size_t i = 1; i < replicas->size(); ++i) {
      if (took == 0 || i == took) expected.emplace(0, (*replicas)[i]);
    }
    EXPECT_EQ(*marks, expected);
    EXPECT_TRUE(catalog_->ListDirty(id)->empty());
    std::vector<uint8_t> back(kChunk);
    ASSERT_TRUE(new_writer->Read(0, back).ok());
    EXPECT_TRUE(back == kept);

    // The old writer, fenced, settles nothing.
    EXPECT_FALSE(old_writer->SettleDirty(absl::ZeroDuration()).ok());
    EXPECT_EQ(*catalog_->StaleMarks(id), expected);

    RateLimiter unlimited(0);
    auto recovered = new_writer->RecoverStale(&unlimited);
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    EXPECT_EQ(recovered->recovered, expected.size());
    ExpectReplicasHold(id, 1, kept);

    // A writer's own marks go once its chunks are idle.
    ASSERT_TRUE(new_writer->Write(0, Random(4096, 81)).ok());
    EXPECT_EQ(catalog_->ListDirty(id)->size(), 1u);
    ASSERT_TRUE(new_writer->SettleDirty(absl::ZeroDuration()).ok());
    EXPECT_TRUE(catalog_->ListDirty(id)->empty());
    EXPECT_TRUE(catalog_->StaleMarks(id)->empty());
  }
}

TEST_F(VolumeTest, CorruptReplicaIsReadAroundAndRepaired) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-c", kChunk)).ok());
  auto client = AttachWriter("vol-c", "h1");
  ASSERT_NE(client, nullptr);
  std::vector<uint8_t> data = Random(kChunk, 9);
  ASSERT_TRUE(client->Write(0, data).ok());

  // Flip a byte in the primary replica's chunk file, behind the daemon.
  ClusterMap map = Map();
  auto disks = PlaceChunk(map, "vol-c", 0, 3, FailureDomain::kHost);
  ASSERT_TRUE(disks.ok());
  const MapDisk* primary = map.FindDisk((*disks)[0]);
  int host_index = primary->host_id[1] - '1';
  std::string disk_dir;
  for (const std::string& d : pool_->host(host_index).disks) {
    auto label = std::ifstream(d + "/LABEL");
    std::string text((std::istreambuf_iterator<char>(label)),
                     std::istreambuf_iterator<char>());
    if (text.find("disk_id=" + primary->disk_id) != std::string::npos) {
      disk_dir = d;
    }
  }
  ASSERT_FALSE(disk_dir.empty());
  std::string file;
  DIR* dir = opendir((disk_dir + "/chunks").c_str());
  ASSERT_NE(dir, nullptr);
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') file = disk_dir + "/chunks/" + e->d_name;
  }
  closedir(dir);
  ASSERT_FALSE(file.empty());
  int fd = open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t byte = 0;
  ASSERT_EQ(pread(fd, &byte, 1, 8192), 1);
  byte ^= 0xFF;
  ASSERT_EQ(pwrite(fd, &byte, 1, 8192), 1);
  fsync(fd);
  close(fd);
  EXPECT_EQ(
      ReadReplica(map, primary->disk_id, "vol-c", 0, 0, kChunk).status().code(),
      absl::StatusCode::kDataLoss);

  // The volume still reads right, from another replica, and the bad copy
  // is rewritten.
  std::vector<uint8_t> back(kChunk);
  ASSERT_TRUE(client->Read(0, back).ok());
  EXPECT_EQ(back, data);
  auto repaired = ReadReplica(map, primary->disk_id, "vol-c", 0, 0, kChunk);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  ASSERT_EQ(repaired->size(), data.size());
  EXPECT_EQ(std::memcmp(repaired->data(), data.data(), data.size()), 0);
}

TEST_F(VolumeTest, DeleteRemovesEveryChunkEverywhere) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-d", 4 * kChunk)).ok());
  ASSERT_TRUE(catalog_->Create(Shape("vol-keep", kChunk)).ok());
  {
    auto client = AttachWriter("vol-d", "h1");
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(client->Write(0, Random(4 * kChunk, 10)).ok());
    auto keep = AttachWriter("vol-keep", "h1");
    ASSERT_TRUE(keep->Write(0, Random(kChunk, 11)).ok());
  }
  // Attached volumes cannot be deleted.
  EXPECT_EQ(catalog_->MarkDeleting("vol-d").status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(catalog_->Detach("vol-d", "h1").ok());
  ASSERT_TRUE(catalog_->Detach("vol-d", "h1").ok()) << "detach is idempotent";
  auto record = catalog_->MarkDeleting("vol-d");
  ASSERT_TRUE(record.ok());
  ClusterMap map = Map();
  ASSERT_TRUE(
      DeleteVolumeChunks(&clients_, map, "vol-d", record->generation).ok());
  ASSERT_TRUE(catalog_->Remove("vol-d").ok());
  EXPECT_EQ(catalog_->Get("vol-d").status().code(),
            absl::StatusCode::kNotFound);

  int kept = 0;
  for (const MapDisk& d : map.disks()) {
    for (const char* vol : {"vol-d", "vol-keep"}) {
      v1::ListChunksRequest req;
      req.set_disk_id(d.disk_id);
      req.set_volume_id(vol);
      v1::ListChunksResponse resp;
      grpc::ClientContext ctx;
      ASSERT_TRUE(clients_.For(d.address)->ListChunks(&ctx, req, &resp).ok());
      if (std::string(vol) == "vol-d") {
        EXPECT_EQ(resp.chunks_size(), 0) << d.disk_id;
      } else {
        kept += resp.chunks_size();
      }
    }
  }
  EXPECT_EQ(kept, 3) << "the other volume keeps its three replicas";
}

TEST_F(VolumeTest, AttachedVolumeGrowsOnlyAsFarAsTheCatalog) {
  ASSERT_TRUE(catalog_->Create(Shape("vol-grow", 2 * kChunk)).ok());
  auto client = AttachWriter("vol-grow", "h1");
  ASSERT_NE(client, nullptr);
  std::vector<uint8_t> head = Random(kChunk, 41);
  ASSERT_TRUE(client->Write(0, head).ok());
  std::vector<uint8_t> tail = Random(kChunk, 42);
  EXPECT_EQ(client->Write(3 * kChunk, tail).code(),
            absl::StatusCode::kOutOfRange);

  // The device never leads the catalog.
  EXPECT_EQ(client->Grow(4 * kChunk).code(),
            absl::StatusCode::kFailedPrecondition);
  auto grown = catalog_->Grow("vol-grow", 4 * kChunk);
  ASSERT_TRUE(grown.ok()) << grown.status();
  EXPECT_EQ(grown->size_bytes, 4 * kChunk);
  // Growing the catalog again, or to less, changes nothing.
  EXPECT_EQ(catalog_->Grow("vol-grow", 4 * kChunk)->size_bytes, 4 * kChunk);
  EXPECT_EQ(catalog_->Grow("vol-grow", kChunk)->size_bytes, 4 * kChunk);
  EXPECT_EQ(catalog_->Grow("vol-grow", kChunk * 4 + 4096).status().code(),
            absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(client->Grow(4 * kChunk).ok());
  EXPECT_EQ(client->size(), 4 * kChunk);
  EXPECT_TRUE(client->Grow(4 * kChunk).ok());
  EXPECT_EQ(client->Grow(2 * kChunk).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(client->Write(3 * kChunk, tail).ok());
  std::vector<uint8_t> back(kChunk);
  ASSERT_TRUE(client->Read(0, back).ok());
  EXPECT_TRUE(back == head);
  ASSERT_TRUE(client->Read(3 * kChunk, back).ok());
  EXPECT_TRUE(back == tail);
}

}  // namespace
}  // namespace juke
