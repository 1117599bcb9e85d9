#include "src/operator/membership.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace juke {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

NodeInfo Node(const char* name, bool ready, const char* zone = "") {
  NodeInfo n;
  n.name = name;
  n.uid = std::string("uid-") + name;
  n.ready = ready;
  n.zone = zone;
  return n;
}

MembershipInput Input() {
  MembershipInput in;
  in.cluster = {"aws-1", "us-east", "us-east-1a"};
  in.now = kNow;
  in.not_ready_grace = absl::Minutes(2);
  return in;
}

const MemberRecord* Put(const MembershipPlan& plan, const std::string& host) {
  for (const MemberRecord& m : plan.put) {
    if (m.host_id == host) return &m;
  }
  return nullptr;
}

bool HasEvent(const MembershipPlan& plan, const std::string& reason) {
  return std::any_of(plan.events.begin(), plan.events.end(),
                     [&](const PlannedEvent& e) { return e.reason == reason; });
}

TEST(PlanMembershipTest, NewNodesJoinWithTheirTopology) {
  MembershipInput in = Input();
  in.nodes = {Node("n1", true, "us-east-1b"), Node("n2", true)};
  MembershipPlan plan = PlanMembership(in);
  ASSERT_EQ(plan.put.size(), 2u);
  const MemberRecord* n1 = Put(plan, "n1");
  ASSERT_NE(n1, nullptr);
  EXPECT_EQ(n1->cluster, "aws-1");
  EXPECT_EQ(n1->region, "us-east");   // The cluster's default.
  EXPECT_EQ(n1->zone, "us-east-1b");  // The Node's label.
  EXPECT_EQ(n1->state, MemberState::kActive);
  EXPECT_FALSE(n1->down);
  EXPECT_EQ(Put(plan, "n2")->zone, "us-east-1a");
  EXPECT_TRUE(HasEvent(plan, "JoinedPool"));
  EXPECT_TRUE(plan.remove.empty());

  // Applied, the same input plans nothing.
  for (const MemberRecord& m : plan.put) in.members[m.host_id] = m;
  MembershipPlan again = PlanMembership(in);
  EXPECT_TRUE(again.put.empty());
  EXPECT_TRUE(again.events.empty());
}

TEST(PlanMembershipTest, NotReadyIsDownOnlyAfterTheGracePeriod) {
  MembershipInput in = Input();
  in.nodes = {Node("n1", false)};
  in.not_ready_since["n1"] = kNow - absl::Seconds(119);
  MembershipPlan early = PlanMembership(in);
  ASSERT_NE(Put(early, "n1"), nullptr);
  EXPECT_FALSE(Put(early, "n1")->down);
  in.members["n1"] = *Put(early, "n1");

  in.not_ready_since["n1"] = kNow - absl::Seconds(120);
  MembershipPlan late = PlanMembership(in);
  ASSERT_NE(Put(late, "n1"), nullptr);
  EXPECT_TRUE(Put(late, "n1")->down);
  EXPECT_TRUE(HasEvent(late, "HostDown"));
  in.members["n1"] = *Put(late, "n1");

  in.nodes = {Node("n1", true)};
  in.not_ready_since.clear();
  MembershipPlan back = PlanMembership(in);
  ASSERT_NE(Put(back, "n1"), nullptr);
  EXPECT_FALSE(Put(back, "n1")->down);
  EXPECT_TRUE(HasEvent(back, "HostUp"));
}

TEST(PlanMembershipTest, DownPastDownOutAfterGoesOutUntilReady) {
  MembershipInput in = Input();
  in.down_out_after = absl::Minutes(10);
  in.nodes = {Node("n1", false)};
  in.not_ready_since["n1"] = kNow - absl::Minutes(12) + absl::Seconds(1);
  MembershipPlan down = PlanMembership(in);
  ASSERT_NE(Put(down, "n1"), nullptr);
  EXPECT_TRUE(Put(down, "n1")->down);
  EXPECT_EQ(Put(down, "n1")->state, MemberState::kActive);
  in.members["n1"] = *Put(down, "n1");

  // Grace (2 min) plus down_out_after (10 min) have passed.
  in.not_ready_since["n1"] = kNow - absl::Minutes(12);
  MembershipPlan out = PlanMembership(in);
  ASSERT_NE(Put(out, "n1"), nullptr);
  EXPECT_TRUE(Put(out, "n1")->down);
  EXPECT_EQ(Put(out, "n1")->state, MemberState::kDraining);
  EXPECT_NE(Put(out, "n1")->reason.find("12m"), std::string::npos)
      << Put(out, "n1")->reason;
  EXPECT_TRUE(HasEvent(out, "DownOut"));
  EXPECT_FALSE(HasEvent(out, "Draining"));
  in.members["n1"] = *Put(out, "n1");
  EXPECT_TRUE(PlanMembership(in).put.empty());  // Stable.
  // Out is not leaving: the host stays a member while nothing uses it.
  EXPECT_TRUE(PlanMembership(in).remove.empty());

  // Ready again: up and in.
  in.nodes = {Node("n1", true)};
  in.not_ready_since.clear();
  MembershipPlan back = PlanMembership(in);
  ASSERT_NE(Put(back, "n1"), nullptr);
  EXPECT_FALSE(Put(back, "n1")->down);
  EXPECT_EQ(Put(back, "n1")->state, MemberState::kActive);
  EXPECT_TRUE(HasEvent(back, "HostUp"));
  EXPECT_TRUE(HasEvent(back, "Active"));
}

TEST(PlanMembershipTest, DownOutAfterZeroNeverTakesDisksOut) {
  MembershipInput in = Input();
  in.nodes = {Node("n1", false)};
  in.not_ready_since["n1"] = kNow - absl::Hours(24 * 30);
  MembershipPlan plan = PlanMembership(in);
  ASSERT_NE(Put(plan, "n1"), nullptr);
  EXPECT_TRUE(Put(plan, "n1")->down);
  EXPECT_EQ(Put(plan, "n1")->state, MemberState::kActive);
}

TEST(PlanMembershipTest, JukeNodeDiskListGoesIntoTheMember) {
  MembershipInput in = Input();
  in.nodes = {Node("n1", true)};
  in.members["n1"] = *Put(PlanMembership(in), "n1");
  EXPECT_FALSE(in.members["n1"].disks.has_value());

  in.disks["n1"] = {{"/mnt/a", 2.0}};
  MembershipPlan listed = PlanMembership(in);
  ASSERT_NE(Put(listed, "n1"), nullptr);
  ASSERT_TRUE(Put(listed, "n1")->disks.has_value());
  EXPECT_EQ(*Put(listed, "n1")->disks,
            (std::vector<MemberDisk>{{"/mnt/a", 2.0}}));
  EXPECT_TRUE(HasEvent(listed, "DisksChanged"));
  in.members["n1"] = *Put(listed, "n1");
  EXPECT_TRUE(PlanMembership(in).put.empty());

  in.disks.clear();  // The JukeNode no longer lists disks: every disk.
  MembershipPlan all = PlanMembership(in);
  ASSERT_NE(Put(all, "n1"), nullptr);
  EXPECT_FALSE(Put(all, "n1")->disks.has_value());
  EXPECT_TRUE(HasEvent(all, "DisksChanged"));
}

TEST(PlanMembershipTest, DrainingAndBack) {
  MembershipInput in = Input();
  in.nodes = {Node("n1", true)};
  in.draining = {"n1"};
  MembershipPlan plan = PlanMembership(in);
  EXPECT_EQ(Put(plan, "n1")->state, MemberState::kDraining);
  in.members["n1"] = *Put(plan, "n1");
  in.depended = {};  // Drained: a draining node stays a member anyway.
  EXPECT_TRUE(PlanMembership(in).remove.empty());
  in.draining.clear();
  MembershipPlan back = PlanMembership(in);
  EXPECT_EQ(Put(back, "n1")->state, MemberState::kActive);
  EXPECT_TRUE(HasEvent(back, "Active"));
}

TEST(PlanMembershipTest, DeletedNodeLeavesOnceNothingDependsOnIt) {
  MembershipInput in = Input();
  in.nodes = {Node("n1", true)};
  in.members["n1"] = *Put(PlanMembership(in), "n1");
  in.nodes.clear();  // Deleted.

  MembershipPlan leave = PlanMembership(in);
  ASSERT_NE(Put(leave, "n1"), nullptr);
  EXPECT_EQ(Put(leave, "n1")->state, MemberState::kLeaving);
  EXPECT_TRUE(leave.remove.empty());
  EXPECT_TRUE(HasEvent(leave, "HostLeaving"));
  in.members["n1"] = *Put(leave, "n1");

  // A volume still depends on it.
  in.depended = {"n1"};
  EXPECT_TRUE(PlanMembership(in).remove.empty());
  // Nothing depends on it, but its daemon still runs.
  in.depended.clear();
  HostStatus h;
  h.record.host_id = "n1";
  h.up = true;
  in.hosts = {h};
  EXPECT_TRUE(PlanMembership(in).remove.empty());
  // Both over: removed.
  in.hosts[0].up = false;
  MembershipPlan gone = PlanMembership(in);
  EXPECT_EQ(gone.remove, std::vector<std::string>{"n1"});
  EXPECT_TRUE(HasEvent(gone, "HostRemoved"));
}

TEST(PlanMembershipTest, OtherClustersAreNotTouched) {
  MembershipInput in = Input();
  MemberRecord other;
  other.host_id = "g1";
  other.cluster = "gcp-1";
  in.members["g1"] = other;
  other.host_id = "shared-name";
  in.members["shared-name"] = other;
  in.nodes = {Node("shared-name", true)};
  MembershipPlan plan = PlanMembership(in);
  EXPECT_TRUE(plan.put.empty());  // Neither g1 nor the clash is written.
  EXPECT_TRUE(plan.remove.empty());
  EXPECT_TRUE(HasEvent(plan, "HostNameTaken"));
}

HostStatus Host(const char* id, bool up, uint64_t chunks) {
  HostStatus h;
  h.record.host_id = id;
  h.up = up;
  DiskRecord d;
  d.disk_id = std::string(id) + ".d0";
  d.chunk_count = chunks;
  h.record.disks = {d};
  return h;
}

MapDisk Disk(const char* id, const char* host, double weight) {
  MapDisk d;
  d.disk_id = id;
  d.host_id = host;
  d.weight = weight;
  d.up = true;
  return d;
}

TEST(DependedHostsTest, PinnedEpochsAndLiveChunks) {
  MapDisk a = Disk("a.d0", "a", 1);
  MapDisk b = Disk("b.d0", "b", 1);
  MapDisk c = Disk("c.d0", "c", 0);
  b.in = false;  // Out in the pinned epoch: no data placed there.
  auto map = ClusterMap::Create(3, {a, b, c});
  ASSERT_TRUE(map.ok());
  std::set<std::string> depended = DependedHosts(
      {*map}, {Host("a", true, 0), Host("b", true, 0), Host("c", true, 0),
               Host("d", true, 4), Host("e", false, 4)});
  // a: in a pinned map; d: its live daemon reports chunks. b is out, c has
  // weight 0, e is down (what it reports is stale).
  EXPECT_EQ(depended, (std::set<std::string>{"a", "d"}));
}

TEST(SummarizeTest, CountsTheWholePool) {
  MapDisk a = Disk("a.d0", "a", 1);
  a.labels.cluster = "aws-1";
  MapDisk b = a;
  b.disk_id = "a.d1";
  b.up = false;
  MapDisk c = Disk("g.d0", "g", 1);
  c.labels.cluster = "gcp-1";
  c.in = false;
  auto map = ClusterMap::Create(9, {a, b, c});
  ASSERT_TRUE(map.ok());
  HostStatus ha = Host("a", true, 0);
  ha.record.disks[0].capacity_bytes = 100;
  ha.record.disks[0].available_bytes = 60;
  HostStatus gone = Host("x", true, 0);  // Not in the map: not counted.
  gone.record.disks[0].capacity_bytes = 1000;
  PoolSummary s = Summarize(*map, {ha, gone});
  EXPECT_EQ(s.map_epoch, 9u);
  EXPECT_EQ(s.clusters, (std::set<std::string>{"aws-1", "gcp-1"}));
  EXPECT_EQ(s.hosts, 2);
  EXPECT_EQ(s.hosts_up, 2);
  EXPECT_EQ(s.disks, 3);
  EXPECT_EQ(s.disks_down, 1);
  EXPECT_EQ(s.disks_out, 1);
  EXPECT_EQ(s.capacity_bytes, 100u);
  EXPECT_EQ(s.available_bytes, 60u);
}

}  // namespace
}  // namespace juke
