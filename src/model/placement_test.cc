#include "src/model/placement.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace juke {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr FailureDomain kAllLevels[] = {
    FailureDomain::kHost, FailureDomain::kCluster, FailureDomain::kZone,
    FailureDomain::kRegion};

MapDisk Disk(std::string id, const std::string& host, double weight,
             HostLabels labels = {}) {
  MapDisk d;
  d.disk_id = std::move(id);
  d.host_id = host;
  d.address = absl::StrCat(host, ":7100");
  d.labels = std::move(labels);
  if (d.labels.host.empty()) d.labels.host = host;
  d.weight = weight;
  d.up = true;
  return d;
}

ClusterMap Map(std::vector<MapDisk> disks) {
  absl::StatusOr<ClusterMap> map = ClusterMap::Create(1, std::move(disks));
  EXPECT_TRUE(map.ok()) << map.status();
  return map.ok() ? *map : ClusterMap();
}

// `n` disks of weight 1, each on its own host.
std::vector<MapDisk> OneDiskPerHost(int n) {
  std::vector<MapDisk> disks;
  disks.reserve(n);
  for (int i = 0; i < n; ++i) {
    disks.push_back(Disk(absl::StrCat("d", i), absl::StrCat("h", i), 1));
  }
  return disks;
}

std::vector<std::string> Place(const ChunkPlacer& placer, uint64_t chunk,
                               int replicas, absl::string_view volume = "vol") {
  absl::StatusOr<std::vector<std::string>> disks =
      placer.Place(volume, chunk, replicas);
  EXPECT_TRUE(disks.ok()) << disks.status();
  return disks.ok() ? *disks : std::vector<std::string>{};
}

std::set<std::string> AsSet(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

TEST(FixedLog2Test, ReferenceMatchesTheRealLogarithm) {
  using placement_internal::kLogFractionBits;
  using placement_internal::Log2BitByBit;
  const double scale = std::ldexp(1.0, kLogFractionBits);
  EXPECT_EQ(Log2BitByBit(1), 0u);
  EXPECT_EQ(Log2BitByBit(2), uint64_t{1} << kLogFractionBits);
  EXPECT_EQ(Log2BitByBit(uint64_t{1} << 52), uint64_t{52} << kLogFractionBits);
  EXPECT_EQ(Log2BitByBit(uint64_t{1} << 63), uint64_t{63} << kLogFractionBits);
  for (uint64_t x : {uint64_t{3}, uint64_t{5}, uint64_t{7}, uint64_t{1000},
                     uint64_t{123456789}, (uint64_t{1} << 52) - 1,
                     uint64_t{0xfffffffffffffff1}}) {
    const double got = static_cast<double>(Log2BitByBit(x)) / scale;
    EXPECT_NEAR(got, std::log2(static_cast<double>(x)), 1e-12) << x;
  }
}

TEST(FixedLog2Test, AgreesWithTheReference) {
  using placement_internal::FixedLog2;
  using placement_internal::Log2BitByBit;
  std::vector<uint64_t> xs = {1,
                              2,
                              3,
                              4095,
                              4096,
                              4097,
                              8191,
                              uint64_t{1} << 52,
                              (uint64_t{1} << 52) - 1,
                              ~uint64_t{0}};
  // Spread over the whole range, and dense near 2^52, where the best
  // draws come from.
  uint64_t v = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < 100000; ++i) {
    v = v * 6364136223846793005u + 1442695040888963407u;
    xs.push_back((v >> (i % 64)) | 1);
    xs.push_back((uint64_t{1} << 52) - static_cast<uint64_t>(i));
  }
  uint64_t worst = 0;
  for (uint64_t x : xs) {
    const uint64_t a = FixedLog2(x);
    const uint64_t b = Log2BitByBit(x);
    const uint64_t diff = a > b ? a - b : b - a;
    worst = std::max(worst, diff);
    ASSERT_LE(diff, 4u) << x;
  }
  // Exact where the table is.
  for (uint64_t i = 4096; i < 8192; i += 37) {
    EXPECT_EQ(FixedLog2(i << 20), Log2BitByBit(i << 20)) << i;
  }
  std::printf("fixed-point log2: worst difference %lu units of 2^-48\n",
              static_cast<unsigned long>(worst));
}

// Golden values: these must never change, or every chunk of every pool
// moves. A change here needs a new placement version and a migration.
TEST(PlacementGoldenTest, HashAndLogAreFixed) {
  using placement_internal::FixedLog2;
  using placement_internal::PlacementHash;
  EXPECT_EQ(PlacementHash("vol", 0, "d1"), uint64_t{0xce91c017571f850e});
  EXPECT_EQ(PlacementHash("vol", 1, "d1"), uint64_t{0xedabfcf7772943a9});
  EXPECT_EQ(PlacementHash("", 0, ""), uint64_t{0x121ee5bbc72be4b8});
  // log2(3) * 2^48.
  EXPECT_EQ(FixedLog2(3), uint64_t{0x195c01a39fbd6});
}

ClusterMap GoldenMap() {
  HostLabels a = {"eu", "eu-1", "c1", "node-a"};
  HostLabels b = {"eu", "eu-1", "c1", "node-b"};
  HostLabels c = {"eu", "eu-2", "c2", "node-c"};
  HostLabels d = {"us", "us-1", "c3", "node-d"};
  return Map({Disk("a0", "node-a", 1, a), Disk("a1", "node-a", 2, a),
              Disk("b0", "node-b", 1.5, b), Disk("c0", "node-c", 1, c),
              Disk("c1", "node-c", 1, c), Disk("d0", "node-d", 4, d)});
}

TEST(PlacementGoldenTest, PlacementsAreFixed) {
  ClusterMap map = GoldenMap();
  struct Case {
    const char* volume;
    uint64_t chunk;
    int replicas;
    FailureDomain level;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"vol", 0, 3, FailureDomain::kHost, {"a1", "c0", "b0"}},
      {"vol", 1, 3, FailureDomain::kHost, {"a1", "d0", "c1"}},
      {"vol", 2, 3, FailureDomain::kHost, {"b0", "c0", "a1"}},
      {"vol", 3, 3, FailureDomain::kHost, {"a1", "d0", "c1"}},
      {"pvc-1f2e", 0, 4, FailureDomain::kHost, {"c0", "d0", "b0", "a1"}},
      {"pvc-1f2e", 1, 1, FailureDomain::kHost, {"d0"}},
      {"pvc-1f2e", 1000000007, 2, FailureDomain::kHost, {"a1", "c1"}},
      {"vol", 0, 3, FailureDomain::kCluster, {"a1", "c0", "d0"}},
      {"vol", 1, 3, FailureDomain::kZone, {"a1", "d0", "c1"}},
      {"vol", 2, 2, FailureDomain::kRegion, {"b0", "d0"}},
      {"", 0, 2, FailureDomain::kRegion, {"d0", "a0"}},
  };
  for (const Case& c : cases) {
    auto got = PlaceChunk(map, c.volume, c.chunk, c.replicas, c.level);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, c.want)
        << c.volume << " " << c.chunk << " " << FailureDomainName(c.level);
  }
}

TEST(PlacementTest, FirstReplicaSpreadsByWeight) {
  // Weights 1, 1, 2, 2, ..., 6, 6: 42 in all.
  std::vector<MapDisk> disks;
  double total = 0;
  for (int i = 0; i < 12; ++i) {
    const int w = 1 + i / 2;
    disks.push_back(Disk(absl::StrCat("d", i), absl::StrCat("h", i), w));
    total += w;
  }
  ClusterMap map = Map(disks);
  ChunkPlacer placer(map, FailureDomain::kHost);

  constexpr int kChunks = 400000;
  std::map<std::string, int> count;
  for (int c = 0; c < kChunks; ++c) ++count[Place(placer, c, 1)[0]];

  double worst = 0;
  for (const MapDisk& d : map.disks()) {
    const double want = kChunks * d.weight / total;
    const double deviation = std::abs(count[d.disk_id] - want) / want;
    worst = std::max(worst, deviation);
    EXPECT_LT(deviation, 0.03)
        << d.disk_id << " weight " << d.weight << " got " << count[d.disk_id];
  }
  std::printf("first replica, %d chunks: worst relative deviation %.4f\n",
              kChunks, worst);
}

TEST(PlacementTest, ReplicasSpreadByHostWeight) {
  // Six hosts of weight 6 each, made up differently.
  const std::vector<std::vector<double>> hosts = {
      {6}, {3, 3}, {1, 2, 3}, {2, 2, 2}, {1, 1, 4}, {1, 5}};
  std::vector<MapDisk> disks;
  for (size_t h = 0; h < hosts.size(); ++h) {
    for (size_t i = 0; i < hosts[h].size(); ++i) {
      disks.push_back(Disk(absl::StrCat("h", h, "d", i), absl::StrCat("h", h),
                           hosts[h][i]));
    }
  }
  ClusterMap map = Map(disks);
  ChunkPlacer placer(map, FailureDomain::kHost);

  constexpr int kChunks = 100000;
  constexpr int kReplicas = 3;
  std::map<std::string, int> per_host;
  std::map<std::string, int> per_disk;
  for (int c = 0; c < kChunks; ++c) {
    for (const std::string& id : Place(placer, c, kReplicas)) {
      ++per_disk[id];
      ++per_host[map.FindDisk(id)->host_id];
    }
  }

  // Every host holds half the chunks; within a host, the disks share by
  // weight.
  const double host_share = static_cast<double>(kReplicas) / hosts.size();
  double worst_host = 0;
  double worst_disk = 0;
  for (const auto& [host, n] : per_host) {
    const double want = kChunks * host_share;
    const double deviation = std::abs(n - want) / want;
    worst_host = std::max(worst_host, deviation);
    EXPECT_LT(deviation, 0.02) << host << " got " << n;
  }
  EXPECT_EQ(per_host.size(), hosts.size());
  for (const MapDisk& d : map.disks()) {
    const double want = kChunks * host_share * d.weight / 6;
    const double deviation = std::abs(per_disk[d.disk_id] - want) / want;
    worst_disk = std::max(worst_disk, deviation);
    EXPECT_LT(deviation, 0.04) << d.disk_id << " got " << per_disk[d.disk_id];
  }
  std::printf(
      "3 replicas on 6 balanced hosts, %d chunks: worst relative deviation "
      "host %.4f, disk %.4f\n",
      kChunks, worst_host, worst_disk);
}

// Two regions; zones, clusters and hosts of uneven sizes, and host names
// that repeat in different zones.
ClusterMap UnevenMap() {
  struct Host {
    HostLabels labels;
    int disks;
    double weight;
  };
  const Host hosts[] = {
      {{"r1", "z1", "c1", "h1"}, 3, 1},   {{"r1", "z1", "c1", "h2"}, 1, 4},
      {{"r1", "z1", "c2", "h3"}, 2, 2},   {{"r1", "z2", "c1", "h1"}, 2, 1},
      {{"r1", "z2", "c3", "h4"}, 1, 0.5}, {{"r2", "z1", "c1", "h1"}, 4, 1},
      {{"r2", "z3", "c4", "h5"}, 1, 8},
  };
  std::vector<MapDisk> disks;
  int n = 0;
  for (const Host& h : hosts) {
    const std::string host_id =
        absl::StrCat(h.labels.region, ".", h.labels.zone, ".", h.labels.host);
    for (int i = 0; i < h.disks; ++i) {
      disks.push_back(
          Disk(absl::StrCat("disk", n++), host_id, h.weight, h.labels));
    }
  }
  return Map(disks);
}

TEST(PlacementTest, NoTwoReplicasShareADomainAtAnyLevel) {
  ClusterMap map = UnevenMap();
  // Domains at each level: 7 hosts, 6 clusters, 4 zones, 2 regions.
  const std::map<FailureDomain, int> domains = {{FailureDomain::kHost, 7},
                                                {FailureDomain::kCluster, 6},
                                                {FailureDomain::kZone, 4},
                                                {FailureDomain::kRegion, 2}};
  for (FailureDomain level : kAllLevels) {
    const int most = std::min(domains.at(level), kMaxReplicas);
    ChunkPlacer placer(map, level);
    for (int replicas = 1; replicas <= most; ++replicas) {
      for (uint64_t c = 0; c < 3000; ++c) {
        std::vector<std::string> ids = Place(placer, c, replicas);
        ASSERT_EQ(ids.size(), static_cast<size_t>(replicas));
        std::set<std::string> keys;
        for (const std::string& id : ids) {
          keys.insert(FailureDomainKey(*map.FindDisk(id), level));
        }
        ASSERT_EQ(keys.size(), ids.size())
            << FailureDomainName(level) << " chunk " << c;
      }
    }
    if (domains.at(level) < kMaxReplicas) {
      EXPECT_TRUE(absl::IsFailedPrecondition(
          placer.Place("vol", 0, domains.at(level) + 1).status()));
    }
  }
}

TEST(PlacementTest, AddingADiskMovesOnlyWhatItTakes) {
  constexpr int kDisks = 20;
  constexpr int kReplicas = 3;
  constexpr int kChunks = 50000;
  ClusterMap before = Map(OneDiskPerHost(kDisks));
  std::vector<MapDisk> grown = OneDiskPerHost(kDisks);
  grown.push_back(Disk("new", "new-host", 1));
  ClusterMap after = Map(grown);
  ChunkPlacer old_placer(before, FailureDomain::kHost);
  ChunkPlacer new_placer(after, FailureDomain::kHost);

  int changed = 0;
  int moved_slots = 0;
  for (int c = 0; c < kChunks; ++c) {
    std::vector<std::string> a = Place(old_placer, c, kReplicas);
    std::vector<std::string> b = Place(new_placer, c, kReplicas);
    std::set<std::string> sa = AsSet(a);
    std::set<std::string> sb = AsSet(b);
    if (sa == sb) {
      EXPECT_EQ(a, b);
      continue;
    }
    ++changed;
    // Exactly one replica moved, and it moved to the new disk.
    std::vector<std::string> added;
    std::set_difference(sb.begin(), sb.end(), sa.begin(), sa.end(),
                        std::back_inserter(added));
    ASSERT_THAT(added, ElementsAre("new")) << "chunk " << c;
    moved_slots += 1;
  }
  const double fraction = static_cast<double>(changed) / kChunks;
  const double want = static_cast<double>(kReplicas) / (kDisks + 1);
  const double slot_fraction =
      static_cast<double>(moved_slots) / (kChunks * kReplicas);
  std::printf(
      "adding 1 disk to %d: %.4f of chunks changed (expected %.4f), %.4f of "
      "replica slots moved (expected %.4f)\n",
      kDisks, fraction, want, slot_fraction, 1.0 / (kDisks + 1));
  EXPECT_NEAR(fraction, want, want * 0.05);
}

TEST(PlacementTest, MarkingADiskOutMovesOnlyItsReplicas) {
  constexpr int kDisks = 20;
  constexpr int kReplicas = 3;
  constexpr int kChunks = 50000;
  std::vector<MapDisk> disks = OneDiskPerHost(kDisks);
  ClusterMap before = Map(disks);
  disks[7].in = false;
  ClusterMap after = Map(disks);
  ChunkPlacer old_placer(before, FailureDomain::kHost);
  ChunkPlacer new_placer(after, FailureDomain::kHost);

  int changed = 0;
  for (int c = 0; c < kChunks; ++c) {
    std::vector<std::string> a = Place(old_placer, c, kReplicas);
    std::vector<std::string> b = Place(new_placer, c, kReplicas);
    EXPECT_EQ(std::count(b.begin(), b.end(), "d7"), 0);
    if (std::find(a.begin(), a.end(), "d7") == a.end()) {
      ASSERT_EQ(a, b) << "chunk " << c;
      continue;
    }
    ++changed;
    // The others stay, in their order; one disk takes d7's place.
    std::vector<std::string> survivors = a;
    survivors.erase(std::find(survivors.begin(), survivors.end(), "d7"));
    std::vector<std::string> kept;
    for (const std::string& id : b) {
      if (AsSet(survivors).count(id) > 0) kept.push_back(id);
    }
    EXPECT_EQ(kept, survivors) << "chunk " << c;
    EXPECT_EQ(b.size(), a.size());
  }
  const double fraction = static_cast<double>(changed) / kChunks;
  const double want = static_cast<double>(kReplicas) / kDisks;
  std::printf(
      "marking 1 of %d disks out: %.4f of chunks changed (expected "
      "%.4f)\n",
      kDisks, fraction, want);
  EXPECT_NEAR(fraction, want, want * 0.05);
}

TEST(PlacementTest, DownDisksKeepPlacementOutDisksGetNone) {
  std::vector<MapDisk> disks = OneDiskPerHost(10);
  ClusterMap all_up = Map(disks);
  disks[2].up = false;
  disks[5].up = false;
  ClusterMap some_down = Map(disks);
  disks[3].in = false;
  disks[4].weight = 0;
  ClusterMap some_out = Map(disks);

  ChunkPlacer up_placer(all_up, FailureDomain::kHost);
  ChunkPlacer down_placer(some_down, FailureDomain::kHost);
  ChunkPlacer out_placer(some_out, FailureDomain::kHost);
  std::set<std::string> used_when_down;
  for (int c = 0; c < 5000; ++c) {
    std::vector<std::string> down = Place(down_placer, c, 3);
    EXPECT_EQ(Place(up_placer, c, 3), down);
    used_when_down.insert(down.begin(), down.end());
    for (const std::string& id : Place(out_placer, c, 3)) {
      EXPECT_NE(id, "d3");
      EXPECT_NE(id, "d4");
    }
  }
  // Down disks still receive their share.
  EXPECT_EQ(used_when_down.count("d2"), 1u);
  EXPECT_EQ(used_when_down.count("d5"), 1u);
}

TEST(PlacementTest, DependsOnlyOnItsInputs) {
  ClusterMap map = UnevenMap();
  std::vector<MapDisk> reversed = map.disks();
  std::reverse(reversed.begin(), reversed.end());
  ClusterMap same = Map(reversed).WithEpoch(99);
  for (uint64_t c = 0; c < 200; ++c) {
    auto a = PlaceChunk(map, "v", c, 3, FailureDomain::kZone);
    auto b = PlaceChunk(same, "v", c, 3, FailureDomain::kZone);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(*a, Place(ChunkPlacer(map, FailureDomain::kZone), c, 3, "v"));
  }

  // Volume id and chunk index are hashed apart: ("ab", n) and ("a", ...)
  // differ, and so do neighbouring chunks.
  using placement_internal::PlacementHash;
  EXPECT_NE(PlacementHash("ab", 0, "d"), PlacementHash("a", 0, "d"));
  EXPECT_NE(PlacementHash("v", 1, "d"), PlacementHash("v", 2, "d"));
  EXPECT_NE(PlacementHash("v", 1, "d1"), PlacementHash("v", 1, "d2"));
}

TEST(PlacementTest, UnsatisfiableRequestsFail) {
  ClusterMap two_hosts =
      Map({Disk("a0", "a", 1), Disk("a1", "a", 1), Disk("b0", "b", 1)});
  absl::Status s = CheckPlaceable(two_hosts, 3, FailureDomain::kHost);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_EQ(s.message(),
            "3 replicas need 3 distinct hosts; the map has 2 hosts with "
            "disks in");
  auto placed = PlaceChunk(two_hosts, "v", 0, 3, FailureDomain::kHost);
  EXPECT_TRUE(absl::IsFailedPrecondition(placed.status()));
  EXPECT_TRUE(CheckPlaceable(two_hosts, 2, FailureDomain::kHost).ok());
  EXPECT_THAT(CheckPlaceable(two_hosts, 2, FailureDomain::kZone).message(),
              "2 replicas need 2 distinct zones; the map has 1 zone with "
              "disks in");

  for (int bad : {0, -1, 6, 100}) {
    EXPECT_TRUE(absl::IsInvalidArgument(
        CheckPlaceable(two_hosts, bad, FailureDomain::kHost)))
        << bad;
    EXPECT_TRUE(absl::IsInvalidArgument(
        PlaceChunk(two_hosts, "v", 0, bad, FailureDomain::kHost).status()))
        << bad;
  }

  ClusterMap empty;
  s = CheckPlaceable(empty, 1, FailureDomain::kHost);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("the map has 0 hosts with disks in"));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      PlaceChunk(empty, "v", 0, 1, FailureDomain::kRegion).status()));

  // Out disks and disks without weight do not count.
  std::vector<MapDisk> disks = {Disk("a0", "a", 1), Disk("b0", "b", 0),
                                Disk("c0", "c", 1)};
  disks[2].in = false;
  EXPECT_THAT(CheckPlaceable(Map(disks), 2, FailureDomain::kHost).message(),
              HasSubstr("the map has 1 host with disks in"));
}

TEST(PlacementTest, PlacingIsCheapOnAHundredDisks) {
  std::vector<MapDisk> disks;
  disks.reserve(100);
  for (int i = 0; i < 100; ++i) {
    disks.push_back(Disk(absl::StrCat("host", i / 5, ".disk", i),
                         absl::StrCat("host", i / 5), 1 + i % 3));
  }
  ClusterMap map = Map(disks);
  ChunkPlacer placer(map, FailureDomain::kHost);
  constexpr int kChunks = 20000;
  size_t sink = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int c = 0; c < kChunks; ++c) sink += Place(placer, c, 3).size();
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(sink, size_t{kChunks} * 3);
  std::printf(
      "placing 3 replicas over 100 disks: %.2f us per chunk\n",
      std::chrono::duration<double, std::micro>(elapsed).count() / kChunks);
}

}  // namespace
}  // namespace juke
