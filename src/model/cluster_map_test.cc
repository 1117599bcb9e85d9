#include "src/model/cluster_map.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace juke {
namespace {

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

HostStatus Host(const std::string& id, bool up, std::vector<DiskRecord> disks) {
  HostStatus h;
  h.up = up;
  h.record.host_id = id;
  h.record.address = absl::StrCat(id, ":7100");
  h.record.labels = {"eu", "eu-1a", "c1", id};
  h.record.disks = std::move(disks);
  return h;
}

DiskRecord DiskRec(std::string id, uint64_t capacity,
                   const char* state = kDiskHealthy) {
  DiskRecord d;
  d.disk_id = std::move(id);
  d.path = "/mnt/" + d.disk_id;
  d.state = state;
  d.capacity_bytes = capacity;
  return d;
}

TEST(ClusterMapTest, CreateSortsAndFindsDisks) {
  auto map = ClusterMap::Create(
      3, {Disk("d3", "h1", 1), Disk("d1", "h1", 1), Disk("d2", "h2", 2)});
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 3u);
  ASSERT_EQ(map->disks().size(), 3u);
  EXPECT_EQ(map->disks()[0].disk_id, "d1");
  EXPECT_EQ(map->disks()[2].disk_id, "d3");
  ASSERT_NE(map->FindDisk("d2"), nullptr);
  EXPECT_EQ(map->FindDisk("d2")->host_id, "h2");
  EXPECT_EQ(map->FindDisk("d4"), nullptr);
  EXPECT_EQ(map->FindDisk(""), nullptr);
}

TEST(ClusterMapTest, CreateRejectsBadDisks) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      ClusterMap::Create(1, {Disk("d1", "h1", 1), Disk("d1", "h2", 1)})
          .status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ClusterMap::Create(1, {Disk("", "h1", 1)}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ClusterMap::Create(1, {Disk("d1", "", 1)}).status()));
  for (double w :
       {-1.0, kMaxDiskWeight * 2, std::numeric_limits<double>::quiet_NaN(),
        std::numeric_limits<double>::infinity()}) {
    EXPECT_TRUE(absl::IsInvalidArgument(
        ClusterMap::Create(1, {Disk("d1", "h1", w)}).status()))
        << w;
  }
}

TEST(ClusterMapTest, SameContentIgnoresEpoch) {
  auto a = ClusterMap::Create(1, {Disk("d1", "h1", 1)});
  ASSERT_TRUE(a.ok());
  ClusterMap b = a->WithEpoch(9);
  EXPECT_TRUE(a->SameContent(b));
  EXPECT_FALSE(*a == b);
  auto c = ClusterMap::Create(1, {Disk("d1", "h1", 1.5)});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(a->SameContent(*c));
}

TEST(ClusterMapTest, JsonRoundTrip) {
  MapDisk odd = Disk("n\xc3\xbc/d\"1", "h/2", 0.1 + 0.2);
  odd.up = false;
  odd.in = false;
  odd.labels = {"", "z\xe6\x97\xa5", "", "h/2"};
  auto map = ClusterMap::Create(uint64_t{1} << 60,
                                {Disk("d1", "h1", 931.3225746154785), odd});
  ASSERT_TRUE(map.ok()) << map.status();
  auto json = EncodeClusterMap(*map);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"diskId\":\"d1\""));
  auto back = DecodeClusterMap(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  // Weights come back bit for bit.
  EXPECT_EQ(*back, *map);

  auto empty = DecodeClusterMap(*EncodeClusterMap(ClusterMap()));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, ClusterMap());
}

TEST(ClusterMapTest, BadJsonIsInvalidArgument) {
  const char* cases[] = {
      "",
      "{",
      "[]",
      R"({"epoch":-1})",
      R"({"epoch":1.5})",
      R"({"epoch":1,"disks":{}})",
      R"({"epoch":1,"disks":[7]})",
      R"({"epoch":1,"disks":[{"hostId":"h"}]})",  // No disk id.
      R"({"epoch":1,"disks":[{"diskId":"d","hostId":"h","weight":"1"}]})",
      R"({"epoch":1,"disks":[{"diskId":"d","hostId":"h","weight":-2}]})",
      R"({"epoch":1,"disks":[{"diskId":"d","hostId":"h","up":1}]})",
      R"({"epoch":1,"disks":[{"diskId":"d","hostId":"h","labels":[]}]})",
      R"({"disks":[{"diskId":"d","hostId":"h","labels":{"zone":3}}]})",
      R"({"disks":[{"diskId":"d","hostId":"h"},{"diskId":"d","hostId":"g"}]})",
  };
  for (const char* text : cases) {
    EXPECT_TRUE(absl::IsInvalidArgument(DecodeClusterMap(text).status()))
        << text;
  }
  EXPECT_THAT(DecodeClusterMap(R"({"disks":[{"diskId":"d","up":"yes"}]})")
                  .status()
                  .message(),
              HasSubstr("disks[0].up"));
}

TEST(ClusterMapTest, EncodeRefusesInvalidUtf8WithoutThrowing) {
  auto map = ClusterMap::Create(1, {Disk("d\xff", "h1", 1)});
  ASSERT_TRUE(map.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(EncodeClusterMap(*map).status()));
}

TEST(ClusterMapTest, FailureDomainNamesRoundTrip) {
  for (FailureDomain level : {FailureDomain::kHost, FailureDomain::kCluster,
                              FailureDomain::kZone, FailureDomain::kRegion}) {
    auto parsed = ParseFailureDomain(FailureDomainName(level));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, level);
  }
  EXPECT_EQ(FailureDomainName(FailureDomain::kZone), "zone");
  for (const char* bad : {"", "Host", "disk", "rack", "host "}) {
    EXPECT_TRUE(absl::IsInvalidArgument(ParseFailureDomain(bad).status()))
        << bad;
  }
}

TEST(ClusterMapTest, FailureDomainKeyIsThePathFromTheTop) {
  MapDisk a = Disk("a", "h1", 1);
  MapDisk b = Disk("b", "h1", 1);
  b.labels.zone = "eu-1b";  // Same host name, another zone.
  EXPECT_EQ(FailureDomainKey(a, FailureDomain::kRegion),
            FailureDomainKey(b, FailureDomain::kRegion));
  EXPECT_NE(FailureDomainKey(a, FailureDomain::kZone),
            FailureDomainKey(b, FailureDomain::kZone));
  EXPECT_NE(FailureDomainKey(a, FailureDomain::kCluster),
            FailureDomainKey(b, FailureDomain::kCluster));
  EXPECT_NE(FailureDomainKey(a, FailureDomain::kHost),
            FailureDomainKey(b, FailureDomain::kHost));

  // Labels that concatenate alike are still different domains.
  MapDisk c = Disk("c", "h", 1);
  MapDisk d = Disk("d", "h", 1);
  c.labels = {"ab", "c", "x", "h"};
  d.labels = {"a", "bc", "x", "h"};
  EXPECT_NE(FailureDomainKey(c, FailureDomain::kZone),
            FailureDomainKey(d, FailureDomain::kZone));
}

TEST(ClusterMapTest, DiskOverrideRoundTripAndBadInput) {
  DiskOverride o;
  o.in = false;
  o.weight = 2.5;
  auto json = EncodeDiskOverride(o);
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(*json, R"({"in":false,"weight":2.5})");
  auto back = DecodeDiskOverride(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, o);

  auto empty = DecodeDiskOverride("{}");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, DiskOverride());

  for (const char* bad : {"", "[]", R"({"in":"no"})", R"({"weight":-1})",
                          R"({"weight":true})", R"({"removed":1})"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(DecodeDiskOverride(bad).status()))
        << bad;
  }
}

TEST(BuildMapTest, TakesDisksFromHosts) {
  std::vector<HostStatus> hosts = {
      Host("h1", true,
           {DiskRec("d1", 100 * kGiB), DiskRec("d2", 50 * kGiB, kDiskFailed)}),
      Host("h2", false, {DiskRec("d3", 10 * kGiB, kDiskDegraded)}),
  };
  hosts[1].record.labels.host = "";  // Falls back to the host id.
  auto map = BuildMap(hosts, {}, nullptr);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->epoch(), 0u);
  ASSERT_EQ(map->disks().size(), 3u);

  const MapDisk* d1 = map->FindDisk("d1");
  ASSERT_NE(d1, nullptr);
  EXPECT_EQ(d1->host_id, "h1");
  EXPECT_EQ(d1->address, "h1:7100");
  EXPECT_EQ(d1->labels, (HostLabels{"eu", "eu-1a", "c1", "h1"}));
  EXPECT_EQ(d1->weight, 100.0);
  EXPECT_TRUE(d1->up);
  EXPECT_TRUE(d1->in);

  EXPECT_FALSE(map->FindDisk("d2")->up);  // Failed disk on a live host.
  EXPECT_TRUE(map->FindDisk("d2")->in);
  EXPECT_FALSE(map->FindDisk("d3")->up);  // Host down.
  EXPECT_EQ(map->FindDisk("d3")->labels.host, "h2");
}

TEST(BuildMapTest, DisksSharingAFileSystemShareItsWeight) {
  std::vector<HostStatus> hosts = {
      Host("h1", true, {DiskRec("a", 90 * kGiB), DiskRec("b", 90 * kGiB)}),
      Host("h2", true, {DiskRec("c", 90 * kGiB), DiskRec("d", 60 * kGiB)}),
  };
  // a, b and c are directories of one file system; d has its own.
  hosts[0].record.disks[0].filesystem = "boot:8:1";
  hosts[0].record.disks[1].filesystem = "boot:8:1";
  hosts[1].record.disks[0].filesystem = "boot:8:1";
  hosts[1].record.disks[1].filesystem = "boot:8:2";
  auto map = BuildMap(hosts, {}, nullptr);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ(map->FindDisk("a")->weight, 30.0);
  EXPECT_EQ(map->FindDisk("b")->weight, 30.0);
  EXPECT_EQ(map->FindDisk("c")->weight, 30.0);
  EXPECT_EQ(map->FindDisk("d")->weight, 60.0);
}

TEST(BuildMapTest, OverridesSetInAndWeight) {
  std::vector<HostStatus> hosts = {
      Host("h1", true,
           {DiskRec("d1", 100 * kGiB), DiskRec("d2", 100 * kGiB),
            DiskRec("d3", 100 * kGiB)}),
  };
  DiskOverrides overrides;
  overrides["d1"].in = false;
  overrides["d2"].weight = 7;
  overrides["d3"].removed = true;  // Still listed by its host: kept, out.
  overrides["gone"].in = false;    // Not in any map: no effect.
  auto map = BuildMap(hosts, overrides, nullptr);
  ASSERT_TRUE(map.ok()) << map.status();
  ASSERT_EQ(map->disks().size(), 3u);
  EXPECT_FALSE(map->FindDisk("d1")->in);
  EXPECT_EQ(map->FindDisk("d1")->weight, 100.0);
  EXPECT_TRUE(map->FindDisk("d2")->in);
  EXPECT_EQ(map->FindDisk("d2")->weight, 7.0);
  EXPECT_FALSE(map->FindDisk("d3")->in);
}

TEST(BuildMapTest, KeepsVanishedDisksAsDown) {
  std::vector<HostStatus> hosts = {
      Host("h1", true, {DiskRec("d1", 100 * kGiB), DiskRec("d2", 20 * kGiB)}),
      Host("h2", true, {DiskRec("d3", 100 * kGiB)}),
  };
  auto first = BuildMap(hosts, {}, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  ClusterMap previous = first->WithEpoch(4);

  // h1 lost d2; h2's record cannot be read any more.
  hosts[0].record.disks.pop_back();
  hosts[1].record.disks.clear();
  hosts[1].error = "host record is not valid JSON";
  auto next = BuildMap(hosts, {}, &previous);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->disks().size(), 3u);
  EXPECT_TRUE(next->FindDisk("d1")->up);
  const MapDisk* d2 = next->FindDisk("d2");
  ASSERT_NE(d2, nullptr);
  EXPECT_FALSE(d2->up);
  EXPECT_TRUE(d2->in);
  EXPECT_EQ(d2->weight, 20.0);
  EXPECT_EQ(d2->host_id, "h1");
  EXPECT_FALSE(next->FindDisk("d3")->up);

  // Host list empty altogether: still nothing is dropped.
  auto none = BuildMap({}, {}, &previous);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->disks().size(), 3u);

  // Only an explicit removal drops a vanished disk.
  DiskOverrides overrides;
  overrides["d2"].removed = true;
  auto removed = BuildMap(hosts, overrides, &previous);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->FindDisk("d2"), nullptr);
  EXPECT_EQ(removed->disks().size(), 2u);

  // A disk that comes back takes its host's state again.
  hosts[0].record.disks.push_back(DiskRec("d2", 20 * kGiB));
  auto back = BuildMap(hosts, {}, &*next);
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->FindDisk("d2")->up);
}

TEST(BuildMapTest, MembersSetLabelsDownAndOut) {
  std::vector<HostStatus> hosts = {
      Host("h1", true, {DiskRec("d1", 10 * kGiB)}),
      Host("h2", true, {DiskRec("d2", 10 * kGiB)}),
      Host("h3", true, {DiskRec("d3", 10 * kGiB)}),
      Host("h4", true, {DiskRec("d4", 10 * kGiB)}),
      Host("h5", true, {DiskRec("d5", 10 * kGiB)}),
  };
  auto member = [](const char* host, const char* cluster, MemberState state) {
    MemberRecord m;
    m.host_id = host;
    m.cluster = cluster;
    m.state = state;
    return m;
  };
  Members members;
  members["h1"] = member("h1", "aws-1", MemberState::kActive);
  members["h1"].region = "us";
  members["h2"] = member("h2", "gcp-1", MemberState::kActive);
  members["h2"].down = true;
  members["h3"] = member("h3", "gcp-1", MemberState::kDraining);
  members["h4"] = member("h4", "gcp-1", MemberState::kLeaving);
  DiskOverrides overrides;
  overrides["d3"].in = true;  // Draining wins over the admin's "in".
  auto map = BuildMap(hosts, overrides, nullptr, members);
  ASSERT_TRUE(map.ok()) << map.status();

  const MapDisk* d1 = map->FindDisk("d1");
  EXPECT_EQ(d1->labels, (HostLabels{"us", "eu-1a", "aws-1", "h1"}));
  EXPECT_TRUE(d1->up);
  EXPECT_TRUE(d1->in);
  EXPECT_EQ(map->FindDisk("d2")->labels.cluster, "gcp-1");
  EXPECT_EQ(map->FindDisk("d2")->labels.region, "eu");  // Not set: kept.
  EXPECT_FALSE(map->FindDisk("d2")->up);  // Alive daemon, NotReady node.
  EXPECT_TRUE(map->FindDisk("d2")->in);
  EXPECT_TRUE(map->FindDisk("d3")->up);
  EXPECT_FALSE(map->FindDisk("d3")->in);
  EXPECT_FALSE(map->FindDisk("d4")->in);
  // No member record: as its daemon says.
  EXPECT_EQ(map->FindDisk("d5")->labels.cluster, "c1");
  EXPECT_TRUE(map->FindDisk("d5")->in);
}

TEST(BuildMapTest, MemberDiskListKeepsOnlyListedDisksIn) {
  std::vector<HostStatus> hosts = {
      Host("h1", true,
           {DiskRec("d1", 10 * kGiB), DiskRec("d2", 10 * kGiB),
            DiskRec("d3", 10 * kGiB)}),
      Host("h2", true, {DiskRec("d4", 10 * kGiB)}),
  };
  Members members;
  members["h1"].host_id = "h1";
  members["h1"].cluster = "c1";
  // d1 with its own weight, d2 by capacity, d3 not listed; a path no disk
  // has changes nothing.
  members["h1"].disks = std::vector<MemberDisk>{
      {"/mnt/d1", 4.0}, {"/mnt/d2", std::nullopt}, {"/mnt/none", 1.0}};
  members["h2"].host_id = "h2";
  members["h2"].cluster = "c1";
  members["h2"].disks = std::vector<MemberDisk>{};  // Gives no disk.
  DiskOverrides overrides;
  overrides["d2"].weight = 7.0;  // The admin's weight wins.
  auto map = BuildMap(hosts, overrides, nullptr, members);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_TRUE(map->FindDisk("d1")->in);
  EXPECT_EQ(map->FindDisk("d1")->weight, 4.0);
  EXPECT_TRUE(map->FindDisk("d2")->in);
  EXPECT_EQ(map->FindDisk("d2")->weight, 7.0);
  EXPECT_FALSE(map->FindDisk("d3")->in);
  EXPECT_TRUE(map->FindDisk("d3")->up);
  EXPECT_FALSE(map->FindDisk("d4")->in);

  // Without a list, every disk is in.
  members["h1"].disks.reset();
  map = BuildMap(hosts, overrides, nullptr, members);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_TRUE(map->FindDisk("d3")->in);
  EXPECT_EQ(map->FindDisk("d1")->weight, 10.0);
}

TEST(BuildMapTest, DiskListedTwiceGoesToTheLiveHost) {
  std::vector<HostStatus> hosts = {
      Host("a", false, {DiskRec("d1", 10 * kGiB)}),
      Host("b", true, {DiskRec("d1", 10 * kGiB)}),
      Host("c", true, {DiskRec("d1", 10 * kGiB)}),
  };
  auto map = BuildMap(hosts, {}, nullptr);
  ASSERT_TRUE(map.ok()) << map.status();
  ASSERT_EQ(map->disks().size(), 1u);
  EXPECT_EQ(map->disks()[0].host_id, "b");
  EXPECT_TRUE(map->disks()[0].up);
}

TEST(BuildMapTest, WeightIsCapacityInGiB) {
  EXPECT_EQ(WeightFromCapacity(0), 0.0);
  EXPECT_EQ(WeightFromCapacity(kGiB), 1.0);
  EXPECT_EQ(WeightFromCapacity(kGiB / 2), 0.5);
  EXPECT_NEAR(WeightFromCapacity(uint64_t{1000204886016}), 931.5, 0.1);
}

}  // namespace
}  // namespace juke
