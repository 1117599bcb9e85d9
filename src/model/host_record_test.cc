#include "src/model/host_record.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace juke {
namespace {

using ::testing::HasSubstr;

HostRecord SampleRecord() {
  HostRecord r;
  r.host_id = "node-1";
  r.pool_id = "pool-a";
  r.address = "10.0.0.1:7100";
  r.labels = {"eu-west", "eu-west-1a", "prod-1", "node-1.example"};
  r.disks.push_back(
      {"d1", "/mnt/disk1", kDiskHealthy, 1000, 400, 600, 7, "boot-1:8:1"});
  r.disks.push_back(
      {"d2", "/mnt/disk2", kDiskFailed, uint64_t{1} << 42, 0, 0, 0, ""});
  r.started_at = 1700000000;
  r.version = "0.1.0";
  return r;
}

TEST(HostRecordTest, JsonRoundTrip) {
  HostRecord r = SampleRecord();
  auto json = EncodeHostRecord(r);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"hostId\":\"node-1\""));
  EXPECT_THAT(*json, HasSubstr("\"capacityBytes\":4398046511104"));
  auto back = DecodeHostRecord(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, r);
}

TEST(HostRecordTest, DisksSharingAFileSystemCountItsSpaceOnce) {
  DiskSpaceSum sum;
  sum.Add({"a", "/srv/a", kDiskHealthy, 1000, 10, 600, 1, "boot-1:8:1"});
  sum.Add({"b", "/srv/b", kDiskHealthy, 1000, 20, 600, 2, "boot-1:8:1"});
  sum.Add({"c", "/srv/c", kDiskHealthy, 500, 0, 100, 0, "boot-1:8:2"});
  // The same device number after another boot, or on another machine, is
  // another file system.
  sum.Add({"d", "/srv/d", kDiskHealthy, 1000, 0, 300, 0, "boot-2:8:1"});
  EXPECT_EQ(sum.capacity_bytes(), 2500u);
  EXPECT_EQ(sum.available_bytes(), 1000u);
  EXPECT_EQ(sum.shared_disks(), 1u);
}

TEST(HostRecordTest, DisksOfUnknownFileSystemAreEachCounted) {
  DiskSpaceSum sum;
  sum.Add({"a", "/srv/a", kDiskHealthy, 1000, 0, 600, 0, ""});
  sum.Add({"b", "/srv/b", kDiskHealthy, 1000, 0, 600, 0, ""});
  EXPECT_EQ(sum.capacity_bytes(), 2000u);
  EXPECT_EQ(sum.available_bytes(), 1200u);
  EXPECT_EQ(sum.shared_disks(), 0u);
}

TEST(HostRecordTest, UnicodeIdsRoundTrip) {
  HostRecord r = SampleRecord();
  r.host_id = "n\xc3\xbc/\xe6\x97\xa5";
  auto json = EncodeHostRecord(r);
  ASSERT_TRUE(json.ok()) << json.status();
  auto back = DecodeHostRecord(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->host_id, r.host_id);
}

TEST(HostRecordTest, UnknownFieldsAreIgnoredAndMissingOnesEmpty) {
  auto r = DecodeHostRecord(
      R"({"hostId":"h","futureField":[1,2],"disks":[{"diskId":"d"}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->host_id, "h");
  EXPECT_EQ(r->address, "");
  ASSERT_EQ(r->disks.size(), 1u);
  EXPECT_EQ(r->disks[0].capacity_bytes, 0u);
}

TEST(HostRecordTest, BadJsonIsInvalidArgument) {
  const char* cases[] = {
      "",
      "{",
      "not json",
      "[]",
      "42",
      R"({"address":"x"})",                            // No host id.
      R"({"hostId":7})",                               // Wrong type.
      R"({"hostId":"h","disks":{}})",                  // Not an array.
      R"({"hostId":"h","disks":[7]})",                 // Disk not an object.
      R"({"hostId":"h","disks":[{"usedBytes":-1}]})",  // Negative size.
      R"({"hostId":"h","disks":[{"usedBytes":1.5}]})",
      R"({"hostId":"h","labels":"eu"})",
      R"({"hostId":"h","startedAt":"yesterday"})",
  };
  for (const char* text : cases) {
    auto r = DecodeHostRecord(text);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status()))
        << "input: " << text << " -> " << r.status();
  }
  EXPECT_THAT(DecodeHostRecord(R"({"hostId":"h","disks":[{"usedBytes":-1}]})")
                  .status()
                  .message(),
              HasSubstr("disks[0].usedBytes"));
}

TEST(HostRecordTest, ValidateChecksIdsAndStates) {
  EXPECT_TRUE(ValidateHostRecord(SampleRecord()).ok());

  HostRecord r = SampleRecord();
  r.host_id = "";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateHostRecord(r)));
  r.host_id = std::string(253, 'h');
  EXPECT_TRUE(ValidateHostRecord(r).ok());
  r.host_id = std::string(254, 'h');
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateHostRecord(r)));

  r = SampleRecord();
  r.disks[1].state = "melting";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateHostRecord(r)));

  r = SampleRecord();
  r.disks[1].disk_id = "d1";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateHostRecord(r)));

  r = SampleRecord();
  r.address = "";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateHostRecord(r)));

  r = SampleRecord();
  r.host_id = "bad\xff";
  EXPECT_TRUE(absl::IsInvalidArgument(ValidateHostRecord(r)));
}

TEST(HostRecordTest, EncodeRefusesInvalidUtf8WithoutThrowing) {
  HostRecord r = SampleRecord();
  r.labels.zone = "\xc3";
  EXPECT_TRUE(absl::IsInvalidArgument(EncodeHostRecord(r).status()));
}

}  // namespace
}  // namespace juke
