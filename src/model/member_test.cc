#include "src/model/member.h"

#include "gtest/gtest.h"

namespace juke {
namespace {

TEST(MemberTest, RoundTrips) {
  MemberRecord m;
  m.host_id = "node/1";
  m.cluster = "prod-1";
  m.region = "eu-west";
  m.zone = "eu-west-1a";
  m.state = MemberState::kDraining;
  m.down = true;
  m.reason = "JukeNode node-1 is draining";
  m.disks = std::vector<MemberDisk>{{"/mnt/a", std::nullopt}, {"/mnt/b", 2.5}};
  auto json = EncodeMember(m);
  ASSERT_TRUE(json.ok()) << json.status();
  auto back = DecodeMember(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, m);
  EXPECT_EQ(MemberKey("node/1"), "/juke/v1/members/node%2F1");

  // No list and an empty list differ: every disk, and none.
  m.disks.reset();
  EXPECT_FALSE(DecodeMember(*EncodeMember(m))->disks.has_value());
  m.disks.emplace();
  ASSERT_TRUE(DecodeMember(*EncodeMember(m))->disks.has_value());
  EXPECT_TRUE(DecodeMember(*EncodeMember(m))->disks->empty());
}

TEST(MemberTest, StatesByName) {
  for (MemberState s :
       {MemberState::kActive, MemberState::kDraining, MemberState::kLeaving}) {
    auto parsed = ParseMemberState(MemberStateName(s));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_TRUE(absl::IsInvalidArgument(ParseMemberState("gone").status()));
}

TEST(MemberTest, MissingFieldsAreEmptyAndUnknownOnesIgnored) {
  auto m = DecodeMember(R"({"hostId":"h1","cluster":"c","future":1})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->state, MemberState::kActive);
  EXPECT_FALSE(m->down);
  EXPECT_EQ(m->zone, "");
}

TEST(MemberTest, RefusesBadRecords) {
  for (const char* bad :
       {"", "[]", "{", R"({"cluster":"c"})", R"({"hostId":7})",
        R"({"hostId":"h","state":"gone"})", R"({"hostId":"h","zone":[]})",
        R"({"hostId":"h","down":"yes"})", R"({"hostId":"h","disks":{}})",
        R"({"hostId":"h","disks":["/mnt/a"]})",
        R"({"hostId":"h","disks":[{"path":"/a","weight":-1}]})",
        R"({"hostId":"h","disks":[{"path":"/a","weight":"x"}]})"}) {
    EXPECT_TRUE(absl::IsInvalidArgument(DecodeMember(bad).status())) << bad;
  }
  MemberRecord m;
  m.host_id = "h";
  EXPECT_TRUE(
      absl::IsInvalidArgument(EncodeMember(m).status()));  // No cluster.
  m.cluster = "c";
  m.zone = "\xff";
  EXPECT_TRUE(absl::IsInvalidArgument(EncodeMember(m).status()));
}

}  // namespace
}  // namespace juke
