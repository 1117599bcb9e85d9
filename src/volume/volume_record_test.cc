#include "src/volume/volume_record.h"

#include <string>

#include "gtest/gtest.h"

namespace juke {
namespace {

VolumeRecord Valid() {
  VolumeRecord r;
  r.id = "vol-1";
  r.size_bytes = 64ull << 20;
  r.replicas = 3;
  return r;
}

TEST(VolumeRecordTest, HostileIdsAreRejected) {
  for (const std::string& id :
       {std::string(""), std::string("a/b"), std::string(".."),
        std::string("."), std::string("a\0b", 3), std::string("../../tmp/x"),
        std::string(129, 'a'), std::string("caf\xc3\xa9")}) {
    EXPECT_EQ(ValidateVolumeId(id).code(), absl::StatusCode::kInvalidArgument)
        << id;
  }
  EXPECT_TRUE(ValidateVolumeId(std::string(128, 'a')).ok());
  EXPECT_TRUE(ValidateVolumeId("pvc-0f.A_b-9").ok());
}

TEST(VolumeRecordTest, ReplicaCountsOfAMoveRoundTripAndAreChecked) {
  VolumeRecord r = Valid();
  r.replicas = 2;
  EXPECT_EQ(TargetReplicas(r), 2);
  r.wanted_replicas = 3;
  EXPECT_EQ(TargetReplicas(r), 3);
  r.wanted_replicas = 0;
  r.moving_to_epoch = 7;
  r.moving_to_replicas = 4;
  EXPECT_EQ(MovingToReplicas(r), 4);
  EXPECT_EQ(TargetReplicas(r), 4);
  r.wanted_replicas = 1;  // asked for again while moving
  EXPECT_EQ(TargetReplicas(r), 1);
  auto json = EncodeVolumeRecord(r);
  ASSERT_TRUE(json.ok());
  auto back = DecodeVolumeRecord(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);

  r.moving_to_replicas = 6;
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kInvalidArgument);
  r.moving_to_replicas = 0;
  r.wanted_replicas = -1;
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kInvalidArgument);
}

TEST(VolumeRecordTest, SizesMustBePositiveChunkAlignedAndBounded) {
  VolumeRecord r = Valid();
  r.size_bytes = 0;
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kInvalidArgument);
  r.size_bytes = (4ull << 20) + 4096;
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kInvalidArgument);
  r.size_bytes = kMaxVolumeSize + (4ull << 20);
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kOutOfRange);
  r.size_bytes = kMaxVolumeSize;
  EXPECT_TRUE(ValidateVolumeShape(r).ok());
}

TEST(VolumeRecordTest, ReplicasAndChunkSizeAreBounded) {
  VolumeRecord r = Valid();
  r.replicas = 0;
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kInvalidArgument);
  r.replicas = 6;
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kInvalidArgument);
  r = Valid();
  r.chunk_size = 3ull << 20;
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kInvalidArgument);
  r.chunk_size = 32ull << 10;
  EXPECT_EQ(ValidateVolumeShape(r).code(), absl::StatusCode::kInvalidArgument);
}

TEST(VolumeRecordTest, JsonRoundTripKeepsEverything) {
  VolumeRecord r = Valid();
  r.failure_domain = FailureDomain::kZone;
  r.generation = 7;
  r.attachment = Attachment{"h2", false, 7, 1700000000};
  r.state = VolumeState::kDeleting;
  r.placement_epoch = 4;
  r.moving_to_epoch = 9;
  r.leaving_epoch = 2;
  r.source = VolumeSource{VolumeSource::Kind::kVolume, "vol-0"};
  r.populating = true;
  r.barrier = SnapshotBarrier{"snap-1", 8, 1700000060};
  absl::StatusOr<std::string> json = EncodeVolumeRecord(r);
  ASSERT_TRUE(json.ok());
  absl::StatusOr<VolumeRecord> back = DecodeVolumeRecord(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
}

TEST(VolumeRecordTest, BadJsonIsInvalidArgument) {
  for (const char* json :
       {"", "{", "[]", "{\"id\":\"v\"}",
        "{\"id\":\"v\",\"sizeBytes\":\"x\",\"replicas\":3,"
        "\"failureDomain\":\"host\",\"chunkSize\":4194304,\"state\":"
        "\"ready\",\"createdAt\":0,\"generation\":0}",
        "{\"id\":\"a/b\",\"sizeBytes\":4194304,\"replicas\":3,"
        "\"failureDomain\":\"host\",\"chunkSize\":4194304,\"state\":"
        "\"ready\",\"createdAt\":0,\"generation\":0}",
        "{\"id\":\"v\",\"sizeBytes\":4194304,\"replicas\":3,"
        "\"failureDomain\":\"rack\",\"chunkSize\":4194304,\"state\":"
        "\"ready\",\"createdAt\":0,\"generation\":0}"}) {
    EXPECT_EQ(DecodeVolumeRecord(json).status().code(),
              absl::StatusCode::kInvalidArgument)
        << json;
  }
}

TEST(VolumeRecordTest, KeysEscapeIds) {
  EXPECT_EQ(VolumeKey("v1"), "/juke/v1/volumes/v1");
  EXPECT_EQ(StaleKey("v1", 3, "h1.ab"),
            "/juke/v1/stale/v1/00000000000000000003/h1.ab");
}

}  // namespace
}  // namespace juke
