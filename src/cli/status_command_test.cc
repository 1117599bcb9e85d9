#include "src/cli/status_command.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "tests/testing/etcd_process.h"
#include "tests/testing/free_port.h"

namespace juke::cli {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kGiB = uint64_t{1} << 30;

// Two hosts of one pool, one of them down with a failed disk, and a host
// of a second pool.
std::vector<HostStatus> SamplePool() {
  HostStatus a;
  a.up = true;
  a.record.host_id = "node-a";
  a.record.pool_id = "pool-1";
  a.record.address = "10.0.0.1:7100";
  a.record.labels = {"eu-west", "eu-west-1a", "prod", "node-a"};
  a.record.disks = {
      {"d1", "/mnt/d1", kDiskHealthy, 100 * kGiB, 10 * kGiB, 90 * kGiB, 2560,
       ""},
      {"d2", "/mnt/d2", kDiskDegraded, 100 * kGiB, 50 * kGiB, 50 * kGiB, 12800,
       ""},
  };

  HostStatus b;
  b.up = false;
  b.record.host_id = "node-b";
  b.record.pool_id = "pool-1";
  b.record.address = "10.0.0.2:7100";
  b.record.labels = {"eu-west", "eu-west-1b", "prod", ""};
  b.record.disks = {{"d1", "/mnt/d1", kDiskFailed, 2048 * kGiB, 0, 0, 0, ""}};

  HostStatus c;
  c.up = true;
  c.record.host_id = "node-c";
  c.record.pool_id = "pool-2";
  c.record.address = "10.1.0.1:7100";

  // Out of order on purpose: the report sorts.
  return {c, b, a};
}

TEST(HumanBytesTest, PicksTheLargestFittingBinaryUnit) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(1048575), "1.0 MiB");
  EXPECT_EQ(HumanBytes(50 << 20), "50.0 MiB");
  EXPECT_EQ(HumanBytes(100 * kGiB), "100.0 GiB");
  EXPECT_EQ(HumanBytes(2048 * kGiB), "2.0 TiB");
  EXPECT_EQ(HumanBytes(UINT64_MAX), "16.0 EiB");
}

TEST(FormatStatusTextTest, ShowsEveryHostDiskAndTotals) {
  EXPECT_EQ(
      FormatStatusText(SamplePool()),
      "Pool pool-1: 1/2 hosts up\n"
      "HOST/DISK  STATE     ADDRESS/PATH   CAPACITY   USED      AVAILABLE  "
      "CHUNKS  LABELS\n"
      "node-a     up        10.0.0.1:7100  200.0 GiB  60.0 GiB  140.0 GiB  "
      "15360   region=eu-west zone=eu-west-1a cluster=prod host=node-a\n"
      "  d1       healthy   /mnt/d1        100.0 GiB  10.0 GiB  90.0 GiB   "
      "2560\n"
      "  d2       degraded  /mnt/d2        100.0 GiB  50.0 GiB  50.0 GiB   "
      "12800\n"
      "node-b     down      10.0.0.2:7100  2.0 TiB    0 B       0 B        "
      "0       region=eu-west zone=eu-west-1b cluster=prod\n"
      "  d1       failed    /mnt/d1        2.0 TiB    0 B       0 B        "
      "0\n"
      "\n"
      "Pool pool-2: 1/1 hosts up\n"
      "HOST/DISK  STATE  ADDRESS/PATH   CAPACITY  USED  AVAILABLE  CHUNKS  "
      "LABELS\n"
      "node-c     up     10.1.0.1:7100  0 B       0 B   0 B        0\n"
      "\n"
      "Total: 3 hosts (2 up, 1 down), 3 disks (1 healthy, 1 degraded, 1 "
      "failed), capacity 2.2 TiB, used 60.0 GiB, available 140.0 GiB, 15360 "
      "chunks\n");
}

TEST(FormatStatusTextTest, CountsTheSpaceOfASharedFileSystemOnce) {
  // Two daemons of a test pool whose disks are directories of one file
  // system, and a third disk on a file system of its own.
  HostStatus a;
  a.up = true;
  a.record.host_id = "h1";
  a.record.disks = {
      {"a1", "/tmp/p/h1/d1", kDiskHealthy, 100 * kGiB, kGiB, 40 * kGiB, 1,
       "boot:8:1"},
      {"a2", "/srv/d2", kDiskHealthy, 10 * kGiB, 0, 10 * kGiB, 0, "boot:8:2"},
  };
  HostStatus b;
  b.up = true;
  b.record.host_id = "h2";
  b.record.disks = {{"b1", "/tmp/p/h2/d1", kDiskHealthy, 100 * kGiB, kGiB,
                     40 * kGiB, 1, "boot:8:1"}};
  std::string text = FormatStatusText({a, b});
  EXPECT_THAT(text, HasSubstr("capacity 110.0 GiB, used 2.0 GiB, available "
                              "50.0 GiB, 2 chunks\n(1 disk shares a file "
                              "system with another disk; its space is "
                              "counted once)\n"));
  // Each disk still shows the space of its file system.
  EXPECT_THAT(text, HasSubstr("  b1       healthy  /tmp/p/h2/d1  100.0 GiB"));

  nlohmann::json report = nlohmann::json::parse(FormatStatusJson({a, b}));
  EXPECT_EQ(report["totals"]["capacityBytes"], 110 * kGiB);
  EXPECT_EQ(report["totals"]["availableBytes"], 50 * kGiB);
  EXPECT_EQ(report["totals"]["disksSharingAFileSystem"], 1);
  EXPECT_EQ(report["hosts"][0]["disks"][0]["filesystem"], "boot:8:1");
}

TEST(FormatStatusTextTest, DisksTakenOutSayOut) {
  DiskOverrides overrides;
  overrides["d2"].in = false;
  overrides["d1"].weight = 3;
  std::string text = FormatStatusText(SamplePool(), overrides);
  EXPECT_THAT(text, HasSubstr("  d2       degraded,out  /mnt/d2"));
  EXPECT_THAT(text, HasSubstr("  d1       healthy       /mnt/d1"));
}

TEST(FormatStatusTextTest, EmptyPool) {
  EXPECT_EQ(FormatStatusText({}), "No hosts registered.\n");
}

TEST(FormatStatusTextTest, ShowsUnreadableRecords) {
  HostStatus bad;
  bad.record.host_id = "broken";
  bad.error = "host record is not valid JSON";
  std::string text = FormatStatusText({bad});
  EXPECT_THAT(text, HasSubstr("broken     down"));
  EXPECT_THAT(text,
              HasSubstr("(unreadable record: host record is not valid JSON)"));
}

TEST(FormatStatusJsonTest, HasHostsWithUpFlagAndTotals) {
  nlohmann::json report = nlohmann::json::parse(FormatStatusJson(SamplePool()));
  ASSERT_EQ(report["hosts"].size(), 3u);
  const nlohmann::json& a = report["hosts"][0];
  EXPECT_EQ(a["hostId"], "node-a");
  EXPECT_EQ(a["up"], true);
  EXPECT_EQ(a["address"], "10.0.0.1:7100");
  EXPECT_EQ(a["labels"]["zone"], "eu-west-1a");
  EXPECT_EQ(a["disks"][1]["state"], "degraded");
  EXPECT_EQ(a["disks"][1]["usedBytes"], 50 * kGiB);
  EXPECT_EQ(report["hosts"][1]["up"], false);
  EXPECT_EQ(report["totals"]["hosts"], 3);
  EXPECT_EQ(report["totals"]["hostsDown"], 1);
  EXPECT_EQ(report["totals"]["disksFailed"], 1);
  EXPECT_EQ(report["totals"]["capacityBytes"], 2248 * kGiB);
  EXPECT_EQ(report["totals"]["chunkCount"], 15360);
}

TEST(RunStatusTest, ReportsThePoolInEtcd) {
  auto etcd = testing::EtcdProcess::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  auto client = (*etcd)->NewClient();
  ASSERT_TRUE(client.ok());

  HostRecord up_host = SamplePool()[2].record;
  HostRecord down_host = SamplePool()[1].record;
  HostRegistry up_registry(client->get());
  HostRegistry down_registry(client->get());
  ASSERT_TRUE(up_registry.Register(up_host, 30).ok());
  ASSERT_TRUE(down_registry.Register(down_host, 30).ok());
  ASSERT_TRUE(down_registry.Deregister().ok());

  StatusOptions options;
  options.etcd_endpoints = (*etcd)->endpoint();
  std::ostringstream out, err;
  ASSERT_EQ(RunStatus(options, out, err), 0) << err.str();
  EXPECT_EQ(err.str(), "");
  EXPECT_THAT(out.str(), HasSubstr("Pool pool-1: 1/2 hosts up\n"));
  EXPECT_THAT(out.str(),
              HasSubstr("node-a     up        10.0.0.1:7100  200.0 GiB"));
  EXPECT_THAT(out.str(), HasSubstr("node-b     down      10.0.0.2:7100"));
  EXPECT_THAT(out.str(), HasSubstr("  d2       degraded  /mnt/d2"));
  EXPECT_THAT(out.str(), HasSubstr("Total: 2 hosts (1 up, 1 down)"));

  options.json = true;
  std::ostringstream json_out;
  ASSERT_EQ(RunStatus(options, json_out, err), 0) << err.str();
  nlohmann::json report = nlohmann::json::parse(json_out.str());
  EXPECT_EQ(report["totals"]["hostsUp"], 1);
}

TEST(RunStatusTest, UnreachableEtcdIsExitCodeOne) {
  auto port = testing::PickFreePort();
  ASSERT_TRUE(port.ok());
  StatusOptions options;
  options.etcd_endpoints = absl::StrCat("127.0.0.1:", *port);
  std::ostringstream out, err;
  absl::Time start = absl::Now();
  EXPECT_EQ(RunStatus(options, out, err), 1);
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
  EXPECT_EQ(out.str(), "");
  EXPECT_THAT(err.str(),
              HasSubstr(absl::StrCat(
                  "juke: cannot reach etcd at 127.0.0.1:", *port, ": ")));
}

}  // namespace
}  // namespace juke::cli
