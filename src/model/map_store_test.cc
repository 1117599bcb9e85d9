#include "src/model/map_store.h"

#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "src/model/host_registry.h"
#include "src/model/keys.h"

#include "tests/testing/etcd_process.h"
#include "tests/testing/status_matchers.h"

namespace juke {
namespace {

using ::juke::testing::IsOk;
using ::testing::HasSubstr;

constexpr uint64_t kGiB = uint64_t{1} << 30;

MapDisk Disk(std::string id, const std::string& host, double weight) {
  MapDisk d;
  d.disk_id = std::move(id);
  d.host_id = host;
  d.address = absl::StrCat(host, ":7100");
  d.labels = {"eu", "eu-1a", "c1", host};
  d.weight = weight;
  d.up = true;
  return d;
}

ClusterMap Content(double weight) {
  absl::StatusOr<ClusterMap> map =
      ClusterMap::Create(0, {Disk("d1", "h1", weight), Disk("d2", "h2", 1)});
  EXPECT_TRUE(map.ok()) << map.status();
  return map.ok() ? *map : ClusterMap();
}

HostRecord Record(absl::string_view id, const std::vector<std::string>& disks) {
  HostRecord r;
  r.host_id = std::string(id);
  r.pool_id = "pool-a";
  r.address = absl::StrCat(id, ":7100");
  r.labels = {"eu", "eu-1a", "c1", std::string(id)};
  for (const std::string& d : disks) {
    r.disks.push_back({d, "/mnt/" + d, kDiskHealthy, 10 * kGiB, 0, 0, 0, ""});
  }
  r.version = "test";
  return r;
}

class MapStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    auto client = etcd_->NewClient(absl::Seconds(5));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  // The epochs the history holds, in order.
  std::vector<uint64_t> HistoryEpochs() {
    std::vector<uint64_t> epochs;
    auto kvs = client_->GetPrefix(kMapEpochsPrefix);
    EXPECT_TRUE(kvs.ok()) << kvs.status();
    if (!kvs.ok()) return epochs;
    for (const EtcdKeyValue& kv : *kvs) {
      auto map = DecodeClusterMap(kv.value);
      EXPECT_TRUE(map.ok()) << map.status();
      if (!map.ok()) continue;
      EXPECT_EQ(kv.key, MapEpochKey(map->epoch()));
      epochs.push_back(map->epoch());
    }
    return epochs;
  }

  std::unique_ptr<testing::EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST(MapKeysTest, EpochKeysSortByEpoch) {
  EXPECT_EQ(MapEpochKey(7), "/juke/v1/map/epochs/00000000000000000007");
  EXPECT_EQ(MapEpochKey(UINT64_MAX),
            "/juke/v1/map/epochs/18446744073709551615");
  EXPECT_LT(MapEpochKey(9), MapEpochKey(10));
  EXPECT_EQ(DiskAdminKey("h1/d 1"), "/juke/v1/disk-admin/h1%2Fd%201");
}

TEST_F(MapStoreTest, LoadWithoutMapIsNotFound) {
  MapStore store(client_.get());
  EXPECT_TRUE(absl::IsNotFound(store.Load().status()));
  EXPECT_TRUE(absl::IsNotFound(store.LoadEpoch(1).status()));
}

TEST_F(MapStoreTest, PublishIncrementsEpochOnlyOnChange) {
  MapStore store(client_.get());
  auto first = store.Publish(Content(1).WithEpoch(42));  // Epoch ignored.
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->epoch(), 1u);
  EXPECT_TRUE(first->SameContent(Content(1)));

  auto loaded = store.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, *first);

  // Same content: nothing is written.
  auto kv_before = client_->Get(kMapCurrentKey);
  ASSERT_TRUE(kv_before.ok() && kv_before->has_value());
  auto again = store.Publish(Content(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->epoch(), 1u);
  auto kv_after = client_->Get(kMapCurrentKey);
  ASSERT_TRUE(kv_after.ok() && kv_after->has_value());
  EXPECT_EQ((*kv_after)->mod_revision, (*kv_before)->mod_revision);

  auto second = store.Publish(Content(2));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->epoch(), 2u);
  EXPECT_EQ(*store.Load(), *second);

  // The history has both epochs.
  auto one = store.LoadEpoch(1);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, *first);
  EXPECT_THAT(HistoryEpochs(), ::testing::ElementsAre(1, 2));
}

TEST_F(MapStoreTest, HistoryKeepsTheLatestEpochs) {
  MapStore store(client_.get(), {.history = 5});
  for (int i = 1; i <= 12; ++i) {
    auto map = store.Publish(Content(i));
    ASSERT_TRUE(map.ok()) << map.status();
    ASSERT_EQ(map->epoch(), static_cast<uint64_t>(i));
  }
  EXPECT_THAT(HistoryEpochs(), ::testing::ElementsAre(8, 9, 10, 11, 12));
  EXPECT_TRUE(absl::IsNotFound(store.LoadEpoch(7).status()));
  auto kept = store.LoadEpoch(8);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(kept->SameContent(Content(8)));
}

TEST_F(MapStoreTest, PinnedEpochsStayInTheHistory) {
  MapStore store(client_.get(), {.history = 3});
  ASSERT_TRUE(store.Publish(Content(1)).ok());
  ASSERT_TRUE(store.Publish(Content(2)).ok());
  ASSERT_TRUE(client_->Put(MapPinKey(2, "vol/1"), "").ok());
  for (int i = 3; i <= 8; ++i) ASSERT_TRUE(store.Publish(Content(i)).ok());
  EXPECT_THAT(HistoryEpochs(), ::testing::ElementsAre(2, 6, 7, 8));
  auto pinned = store.LoadEpoch(2);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_TRUE(pinned->SameContent(Content(2)));
}

TEST(ClusterMapTest, SamePlacementIgnoresAddressesAndStates) {
  ClusterMap a = Content(1);
  std::vector<MapDisk> disks = a.disks();
  disks[0].address = "elsewhere:1";
  disks[1].up = false;
  auto moved = ClusterMap::Create(9, disks);
  ASSERT_TRUE(moved.ok());
  EXPECT_TRUE(a.SamePlacement(*moved));
  disks[1].in = false;
  auto out = ClusterMap::Create(9, disks);
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE(a.SamePlacement(*out));
  EXPECT_FALSE(a.SamePlacement(Content(2)));
}

TEST_F(MapStoreTest, ConcurrentPublishersGetDistinctEpochsAndLoseNothing) {
  constexpr int kThreads = 2;
  constexpr int kEach = 25;
  // Each publish has its own content, so none is a no-op.
  std::vector<std::vector<ClusterMap>> published(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = etcd_->NewClient(absl::Seconds(5));
      ASSERT_TRUE(client.ok()) << client.status();
      MapStore store(client->get(), {.history = 1000, .max_attempts = 1000});
      for (int i = 0; i < kEach; ++i) {
        auto map = store.Publish(Content(1000 * (t + 1) + i));
        ASSERT_TRUE(map.ok()) << map.status();
        published[t].push_back(*map);
      }
    });
  }
  for (std::thread& t : threads) t.join();

  MapStore store(client_.get());
  std::set<uint64_t> epochs;
  for (const auto& maps : published) {
    ASSERT_EQ(maps.size(), static_cast<size_t>(kEach));
    for (const ClusterMap& map : maps) {
      EXPECT_TRUE(epochs.insert(map.epoch()).second)
          << "epoch " << map.epoch() << " published twice";
      // What each publisher was told it published is what the history
      // holds for that epoch.
      auto stored = store.LoadEpoch(map.epoch());
      ASSERT_TRUE(stored.ok()) << stored.status();
      EXPECT_EQ(*stored, map);
    }
  }
  // Every epoch from 1 to the last was taken by exactly one publish.
  EXPECT_EQ(epochs.size(), size_t{kThreads} * kEach);
  EXPECT_EQ(*epochs.begin(), 1u);
  EXPECT_EQ(*epochs.rbegin(), uint64_t{kThreads} * kEach);
  auto current = store.Load();
  ASSERT_TRUE(current.ok());
  EXPECT_EQ(current->epoch(), uint64_t{kThreads} * kEach);
}

TEST_F(MapStoreTest, RefreshFollowsHostsAndOverrides) {
  HostRegistry h1(client_.get());
  HostRegistry h2(client_.get());
  ASSERT_THAT(h1.Register(Record("h1", {"h1.a", "h1.b"}), 10), IsOk());
  ASSERT_THAT(h2.Register(Record("h2", {"h2.a"}), 10), IsOk());

  auto map = RefreshMap(*client_);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 1u);
  ASSERT_EQ(map->disks().size(), 3u);
  for (const MapDisk& d : map->disks()) {
    EXPECT_TRUE(d.up) << d.disk_id;
    EXPECT_TRUE(d.in) << d.disk_id;
    EXPECT_EQ(d.weight, 10.0);
  }

  // Nothing changed: same epoch.
  map = RefreshMap(*client_);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 1u);

  // A host goes down: its disk stays, down.
  ASSERT_THAT(h2.Deregister(), IsOk());
  map = RefreshMap(*client_);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 2u);
  ASSERT_NE(map->FindDisk("h2.a"), nullptr);
  EXPECT_FALSE(map->FindDisk("h2.a")->up);

  // A disk vanishes from its host's record: it stays, down.
  ASSERT_THAT(h1.Update(Record("h1", {"h1.a"})), IsOk());
  map = RefreshMap(*client_);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 3u);
  ASSERT_NE(map->FindDisk("h1.b"), nullptr);
  EXPECT_FALSE(map->FindDisk("h1.b")->up);

  // The admin marks a disk out, then sets a weight.
  ASSERT_THAT(SetDiskIn(*client_, "h1.a", false), IsOk());
  ASSERT_THAT(SetDiskWeight(*client_, "h1.a", 3.5), IsOk());
  map = RefreshMap(*client_);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 4u);
  EXPECT_FALSE(map->FindDisk("h1.a")->in);
  EXPECT_EQ(map->FindDisk("h1.a")->weight, 3.5);
  auto overrides = LoadDiskOverrides(*client_);
  ASSERT_TRUE(overrides.ok()) << overrides.status();
  EXPECT_EQ(overrides->at("h1.a"), (DiskOverride{false, 3.5, false}));

  // And back in, with its capacity as weight.
  ASSERT_THAT(SetDiskIn(*client_, "h1.a", true), IsOk());
  ASSERT_THAT(SetDiskWeight(*client_, "h1.a", std::nullopt), IsOk());
  map = RefreshMap(*client_);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 5u);
  EXPECT_TRUE(map->FindDisk("h1.a")->in);
  EXPECT_EQ(map->FindDisk("h1.a")->weight, 10.0);

  // Removing the vanished disk drops it from the map.
  ASSERT_THAT(RemoveDisk(*client_, "h1.b"), IsOk());
  map = RefreshMap(*client_);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 6u);
  EXPECT_EQ(map->FindDisk("h1.b"), nullptr);
  EXPECT_EQ(map->disks().size(), 2u);
}

TEST_F(MapStoreTest, OverridesNeedADiskOfTheMap) {
  absl::Status s = SetDiskIn(*client_, "d1", false);
  EXPECT_TRUE(absl::IsNotFound(s)) << s;  // No map yet.

  MapStore store(client_.get());
  ASSERT_THAT(store.Publish(Content(1)), IsOk());
  s = SetDiskIn(*client_, "nope", false);
  EXPECT_TRUE(absl::IsNotFound(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("nope"));
  EXPECT_TRUE(absl::IsInvalidArgument(SetDiskWeight(*client_, "d1", -1)));
  EXPECT_THAT(SetDiskIn(*client_, "d1", false), IsOk());
  auto kvs = client_->GetPrefix(kDiskAdminPrefix);
  ASSERT_TRUE(kvs.ok());
  EXPECT_EQ(kvs->size(), 1u);
}

TEST_F(MapStoreTest, UnreadableOverrideStopsRefresh) {
  ASSERT_THAT(client_->Put(DiskAdminKey("d1"), "{\"in\":\"no\""), IsOk());
  auto map = RefreshMap(*client_);
  EXPECT_TRUE(absl::IsInvalidArgument(map.status())) << map.status();
  EXPECT_THAT(map.status().message(), HasSubstr(DiskAdminKey("d1")));
}

TEST_F(MapStoreTest, UnreadableCurrentMapIsReported) {
  ASSERT_THAT(client_->Put(kMapCurrentKey, "garbage"), IsOk());
  MapStore store(client_.get());
  EXPECT_TRUE(absl::IsInvalidArgument(store.Load().status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store.Publish(Content(1)).status()));
}

}  // namespace
}  // namespace juke
