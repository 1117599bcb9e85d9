#include "src/volume/snapshot_record.h"

#include <string>

#include "gtest/gtest.h"

namespace juke {
namespace {

TEST(SnapshotRecordTest, JsonRoundTripKeepsEverything) {
  SnapshotRecord r;
  r.id = "snap-0123";
  r.source_volume_id = "csi-abc";
  r.size_bytes = 64ull << 20;
  r.replicas = 2;
  r.failure_domain = FailureDomain::kZone;
  r.chunk_size = 4ull << 20;
  r.state = SnapshotState::kReady;
  r.created_at = 1700000000;
  r.epoch = 12;
  r.placement_epoch = 3;
  r.stale = {{4, "h1.0a"}, {9, "h2.\xff"}};
  r.absent_disks = {"h3.01"};
  absl::StatusOr<std::string> json = EncodeSnapshotRecord(r);
  ASSERT_TRUE(json.ok());
  absl::StatusOr<SnapshotRecord> back = DecodeSnapshotRecord(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  // A disk id that is not UTF-8 cannot survive JSON unchanged; the rest
  // does.
  r.stale.erase({9, "h2.\xff"});
  back->stale.erase(std::pair<uint64_t, std::string>(9, "h2.\xef\xbf\xbd"));
  EXPECT_EQ(*back, r);
  EXPECT_TRUE(back->Holds(4, "h2.00"));
  EXPECT_FALSE(back->Holds(4, "h1.0a"));
  EXPECT_FALSE(back->Holds(0, "h3.01"));
}

TEST(SnapshotRecordTest, BadRecordsAreInvalidArgument) {
  for (const char* json :
       {"", "{", "{\"id\":\"s\"}",
        "{\"id\":\"../x\",\"sourceVolumeId\":\"v\",\"sizeBytes\":1,"
        "\"replicas\":3,\"failureDomain\":\"host\",\"chunkSize\":4096,"
        "\"state\":\"ready\",\"createdAt\":0}",
        "{\"id\":\"s\",\"sourceVolumeId\":\"v\",\"sizeBytes\":1,"
        "\"replicas\":3,\"failureDomain\":\"host\",\"chunkSize\":4096,"
        "\"state\":\"gone\",\"createdAt\":0}"}) {
    EXPECT_EQ(DecodeSnapshotRecord(json).status().code(),
              absl::StatusCode::kInvalidArgument)
        << json;
  }
}

TEST(SnapshotRecordTest, KeysEscapeIdsAndPinsNeverLookLikeVolumes) {
  EXPECT_EQ(SnapshotKey("snap-1"), "/juke/v1/snapshots/snap-1");
  EXPECT_EQ(SnapshotPinName("snap-1"), "snapshot/snap-1");
}

}  // namespace
}  // namespace juke
