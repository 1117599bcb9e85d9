#include "src/csi/requests.h"

#include <cstdint>
#include <limits>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "src/volume/volume_record.h"

namespace juke::csi {
namespace {

using ::csi::v1::CapacityRange;
using ::csi::v1::VolumeCapability;

constexpr uint64_t kChunk = 4ull << 20;

absl::StatusOr<uint64_t> Size(int64_t required, int64_t limit) {
  CapacityRange r;
  r.set_required_bytes(required);
  r.set_limit_bytes(limit);
  return SizeForRange(&r, kChunk);
}

TEST(VolumeIdForNameTest, IsAValidIdAndDistinguishesLongNames) {
  std::string a(128, 'A');
  a.replace(0, 6, "Pvc._-");
  std::string b = a;
  b[127] = 'B';  // equal in the first 120 bytes and more
  std::string id_a = VolumeIdForName(a);
  EXPECT_TRUE(ValidateVolumeId(id_a).ok()) << id_a;
  EXPECT_NE(id_a, VolumeIdForName(b));
  EXPECT_EQ(id_a, VolumeIdForName(a));
  // Any bytes at all make a valid id.
  EXPECT_TRUE(
      ValidateVolumeId(VolumeIdForName(std::string("../\0x/", 6))).ok());
}

TEST(SizeForRangeTest, RoundsUpToWholeChunksDeterministically) {
  for (int64_t required :
       {int64_t{1}, int64_t{511}, int64_t{4000000000}, int64_t{1073741825}}) {
    absl::StatusOr<uint64_t> size = Size(required, 0);
    ASSERT_TRUE(size.ok()) << required << ": " << size.status();
    EXPECT_GE(*size, static_cast<uint64_t>(required));
    EXPECT_LT(*size, static_cast<uint64_t>(required) + kChunk);
    EXPECT_EQ(*size % kChunk, 0u);
    EXPECT_EQ(*Size(required, 0), *size);
  }
  EXPECT_EQ(*Size(1073741825, 0), (1ull << 30) + kChunk);
}

absl::StatusOr<uint64_t> Expanded(int64_t required, int64_t limit,
                                  uint64_t current) {
  CapacityRange r;
  r.set_required_bytes(required);
  r.set_limit_bytes(limit);
  return ExpandedSize(r, current, kChunk);
}

TEST(ExpandedSizeTest, GrowsToWholeChunksAndNeverShrinks) {
  EXPECT_EQ(*Expanded(25 * kChunk + 1, 0, 10 * kChunk), 26 * kChunk);
  EXPECT_EQ(*Expanded(10 * kChunk, 0, 10 * kChunk), 10 * kChunk);
  EXPECT_EQ(*Expanded(1, 0, 10 * kChunk), 10 * kChunk);
  // Only a limit the volume is within: nothing to grow.
  EXPECT_EQ(*Expanded(0, 20 * kChunk, 10 * kChunk), 10 * kChunk);
}

TEST(ExpandedSizeTest, BadRangesGetTheSpecsCodes) {
  using absl::StatusCode;
  const uint64_t now = 10 * kChunk;
  EXPECT_EQ(Expanded(0, 0, now).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Expanded(-1, 0, now).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Expanded(0, -1, now).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Expanded(20 * kChunk, 12 * kChunk, now).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Expanded(std::numeric_limits<int64_t>::max(), 0, now).status().code(),
      StatusCode::kOutOfRange);
  EXPECT_EQ(Expanded(0, 5 * kChunk, now).status().code(),
            StatusCode::kOutOfRange);
  EXPECT_EQ(Expanded(11 * kChunk + 1, 11 * kChunk + 4096, now).status().code(),
            StatusCode::kOutOfRange);
}

TEST(SizeForRangeTest, NoRangeOrOnlyALimitGetsADefault) {
  EXPECT_EQ(*SizeForRange(nullptr, kChunk), 1ull << 30);
  EXPECT_EQ(*Size(0, 0), 1ull << 30);
  EXPECT_EQ(*Size(0, 10 * kChunk + 5), 10 * kChunk);
  EXPECT_EQ(*Size(0, int64_t{1} << 40), 1ull << 30);
}

TEST(SizeForRangeTest, BadRangesGetTheSpecsCodes) {
  EXPECT_EQ(Size(-1, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Size(0, -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Size(2 * kChunk, kChunk).status().code(),
            absl::StatusCode::kInvalidArgument);
  // [1, 4095]: no whole chunk fits under the limit.
  EXPECT_EQ(Size(1, 4095).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Size(0, 4095).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(Size(std::numeric_limits<int64_t>::max(), 0).status().code(),
            absl::StatusCode::kOutOfRange);
  // Exactly one chunk fits.
  EXPECT_EQ(*Size(1, kChunk), kChunk);
}

VolumeCapability Mount(const std::string& fstype,
                       std::vector<std::string> flags = {}) {
  VolumeCapability c;
  c.mutable_mount()->set_fs_type(fstype);
  for (std::string& f : flags) c.mutable_mount()->add_mount_flags(std::move(f));
  c.mutable_access_mode()->set_mode(
      VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  return c;
}

TEST(CheckCapabilityTest, AcceptsWhatTheDriverServes) {
  EXPECT_TRUE(CheckCapability(Mount("")).ok());
  EXPECT_TRUE(CheckCapability(Mount("xfs", {"noatime"})).ok());
  VolumeCapability block;
  block.mutable_block();
  block.mutable_access_mode()->set_mode(
      VolumeCapability::AccessMode::MULTI_NODE_READER_ONLY);
  EXPECT_TRUE(CheckCapability(block).ok());
  EXPECT_EQ(FsType(Mount("")), "ext4");
}

TEST(CheckCapabilityTest, RefusesWhatItCannotServe) {
  for (const VolumeCapability& c :
       {Mount("btrfs"), Mount("ext4", {"exec"}), Mount("ext4", {"suid"}),
        Mount("ext4", {"noatime,nobarrier"}), VolumeCapability()}) {
    EXPECT_EQ(CheckCapability(c).code(), absl::StatusCode::kInvalidArgument)
        << c.ShortDebugString();
  }
  VolumeCapability multi = Mount("ext4");
  multi.mutable_access_mode()->set_mode(
      VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
  EXPECT_EQ(CheckCapability(multi).code(), absl::StatusCode::kInvalidArgument);
  VolumeCapability no_type;
  no_type.mutable_access_mode()->set_mode(
      VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  EXPECT_EQ(CheckCapability(no_type).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseParametersTest, KnownKeysOnly) {
  google::protobuf::Map<std::string, std::string> p;
  p["replicas"] = "2";
  p["failureDomain"] = "zone";
  p["csi.storage.k8s.io/pv/name"] = "pv-1";
  absl::StatusOr<VolumeParameters> parsed = ParseParameters(p);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->replicas, 2);
  EXPECT_EQ(parsed->failure_domain, FailureDomain::kZone);

  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{
           {"replicas", "0"},
           {"replicas", "6"},
           {"replicas", "3x"},
           {"failureDomain", "rack"},
           {"color", "blue"}}) {
    google::protobuf::Map<std::string, std::string> bad;
    bad[key] = value;
    EXPECT_EQ(ParseParameters(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << key << "=" << value;
  }
}

TEST(ParseMutableParametersTest, ReplicasOnly) {
  google::protobuf::Map<std::string, std::string> p;
  EXPECT_FALSE(ParseMutableParameters(p)->replicas.has_value());
  p["replicas"] = "4";
  p["csi.storage.k8s.io/pvc/name"] = "data";
  absl::StatusOr<MutableParameters> parsed = ParseMutableParameters(p);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->replicas, 4);

  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{
           {"replicas", ""},
           {"replicas", "0"},
           {"replicas", "6"},
           {"replicas", "two"},
           {"failureDomain", "zone"},  // fixed at creation
           {"XXX_FakeKey", "XXX_FakeValue"}}) {
    google::protobuf::Map<std::string, std::string> bad;
    bad[key] = value;
    EXPECT_EQ(ParseMutableParameters(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << key << "=" << value;
  }
}

TEST(PageTokenTest, RoundTripsAndRefusesForeignTokens) {
  EXPECT_EQ(*DecodePageToken(EncodePageToken("csi-0123")), "csi-0123");
  for (const std::string& token :
       {std::string("invalid-token"), std::string("-1"), std::string("99999"),
        std::string(4096, 'a'), std::string("2e2e"), std::string("ZZ")}) {
    EXPECT_EQ(DecodePageToken(token).status().code(),
              absl::StatusCode::kAborted)
        << token;
  }
}

}  // namespace
}  // namespace juke::csi
