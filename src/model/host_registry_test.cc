#include "src/model/host_registry.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "src/model/keys.h"

#include "tests/testing/etcd_process.h"

namespace juke {
namespace {

constexpr int64_t kTtl = 2;

HostRecord Record(absl::string_view id) {
  HostRecord r;
  r.host_id = std::string(id);
  r.pool_id = "pool-a";
  r.address = "127.0.0.1:7100";
  r.labels = {"eu", "eu-1a", "c1", "node"};
  r.disks.push_back({"d1", "/mnt/d1", kDiskHealthy, 1000, 100, 900, 3, ""});
  r.started_at = 1700000000;
  r.version = "test";
  return r;
}

class HostRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    auto client = etcd_->NewClient(absl::Seconds(2));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  std::vector<HostStatus> Hosts() {
    auto hosts = ListHosts(*client_);
    EXPECT_TRUE(hosts.ok()) << hosts.status();
    return hosts.ok() ? *hosts : std::vector<HostStatus>{};
  }

  // The single host listed; fails the test if there is not exactly one.
  HostStatus OnlyHost() {
    std::vector<HostStatus> hosts = Hosts();
    EXPECT_EQ(hosts.size(), 1u);
    return hosts.empty() ? HostStatus{} : hosts[0];
  }

  std::unique_ptr<testing::EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(HostRegistryTest, RegisteredHostIsUpThenDownAfterDeregister) {
  EXPECT_TRUE(Hosts().empty());
  HostRegistry registry(client_.get());
  ASSERT_TRUE(registry.Register(Record("node-1"), kTtl).ok());

  HostStatus up = OnlyHost();
  EXPECT_TRUE(up.up);
  EXPECT_EQ(up.record, Record("node-1"));
  EXPECT_EQ(up.error, "");

  ASSERT_TRUE(registry.Deregister().ok());
  HostStatus down = OnlyHost();
  EXPECT_FALSE(down.up);
  // The pool remembers the host while it is down.
  EXPECT_EQ(down.record, Record("node-1"));
  EXPECT_TRUE(registry.Deregister().ok());
}

TEST_F(HostRegistryTest, HostIsDownOnceItsLeaseIsRevoked) {
  HostRegistry registry(client_.get());
  ASSERT_TRUE(registry.Register(Record("node-1"), 30).ok());
  EXPECT_TRUE(OnlyHost().up);
  ASSERT_TRUE(client_->LeaseRevoke(registry.lease_id()).ok());
  EXPECT_FALSE(OnlyHost().up);
}

TEST_F(HostRegistryTest, CrashedDaemonShowsDownAfterTtl) {
  HostRegistry registry(client_.get());
  ASSERT_TRUE(registry.Register(Record("node-1"), kTtl).ok());
  registry.Abandon();
  EXPECT_TRUE(OnlyHost().up);

  absl::Time start = absl::Now();
  while (OnlyHost().up && absl::Now() - start < absl::Seconds(kTtl + 5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(OnlyHost().up);
  EXPECT_LE(absl::Now() - start, absl::Seconds(kTtl + 3));
}

TEST_F(HostRegistryTest, StaysUpWhileKeptAlive) {
  HostRegistry registry(client_.get());
  ASSERT_TRUE(registry.Register(Record("node-1"), kTtl).ok());
  std::this_thread::sleep_for(std::chrono::seconds(2 * kTtl + 1));
  EXPECT_TRUE(OnlyHost().up);
}

TEST_F(HostRegistryTest, UpdateRewritesTheRecord) {
  HostRegistry registry(client_.get());
  HostRecord r = Record("node-1");
  ASSERT_TRUE(registry.Register(r, kTtl).ok());
  r.disks[0].used_bytes = 500;
  r.disks[0].chunk_count = 9;
  ASSERT_TRUE(registry.Update(r).ok());
  EXPECT_EQ(OnlyHost().record, r);

  EXPECT_TRUE(absl::IsInvalidArgument(registry.Update(Record("other"))));
}

TEST_F(HostRegistryTest, UpdateAfterLostLeaseRegistersAgain) {
  HostRegistry registry(client_.get());
  ASSERT_TRUE(registry.Register(Record("node-1"), kTtl).ok());
  int64_t first_lease = registry.lease_id();
  ASSERT_TRUE(client_->LeaseRevoke(first_lease).ok());
  EXPECT_FALSE(OnlyHost().up);

  ASSERT_TRUE(registry.Update(Record("node-1")).ok());
  EXPECT_TRUE(OnlyHost().up);
  EXPECT_NE(registry.lease_id(), first_lease);
}

TEST_F(HostRegistryTest, SecondLiveDaemonWithTheSameIdIsRefused) {
  HostRegistry first(client_.get());
  ASSERT_TRUE(first.Register(Record("node-1"), kTtl).ok());
  HostRecord impostor = Record("node-1");
  impostor.address = "127.0.0.1:9999";

  HostRegistry second(client_.get());
  absl::Status s = second.Register(impostor, kTtl);
  EXPECT_TRUE(absl::IsAlreadyExists(s)) << s;
  EXPECT_EQ(OnlyHost().record.address, "127.0.0.1:7100");

  ASSERT_TRUE(first.Deregister().ok());
  ASSERT_TRUE(second.Register(impostor, kTtl).ok());
  EXPECT_EQ(OnlyHost().record.address, "127.0.0.1:9999");
  EXPECT_TRUE(OnlyHost().up);
}

TEST_F(HostRegistryTest, AwkwardIdsKeepTheirOwnKeys) {
  std::vector<std::string> ids = {"a", "a/b", "..", "100%", "n\xc3\xbc"};
  std::vector<std::unique_ptr<HostRegistry>> registries;
  for (const std::string& id : ids) {
    registries.push_back(std::make_unique<HostRegistry>(client_.get()));
    ASSERT_TRUE(registries.back()->Register(Record(id), 30).ok()) << id;
  }
  auto keys = client_->GetPrefix(kKeyRoot);
  ASSERT_TRUE(keys.ok());
  std::vector<std::string> names;
  for (const EtcdKeyValue& kv : *keys) names.push_back(kv.key);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre(
                         "/juke/v1/hosts/a", "/juke/v1/hosts/a%2Fb",
                         "/juke/v1/hosts/%2E%2E", "/juke/v1/hosts/100%25",
                         "/juke/v1/hosts/n%C3%BC", "/juke/v1/alive/a",
                         "/juke/v1/alive/a%2Fb", "/juke/v1/alive/%2E%2E",
                         "/juke/v1/alive/100%25", "/juke/v1/alive/n%C3%BC"));

  std::vector<std::string> listed;
  for (const HostStatus& h : Hosts()) {
    EXPECT_TRUE(h.up) << h.record.host_id;
    listed.push_back(h.record.host_id);
  }
  EXPECT_THAT(listed, ::testing::UnorderedElementsAreArray(ids));
}

TEST_F(HostRegistryTest, InvalidRecordWritesNothing) {
  HostRegistry registry(client_.get());
  HostRecord r = Record("");
  EXPECT_TRUE(absl::IsInvalidArgument(registry.Register(r, kTtl)));
  EXPECT_TRUE(absl::IsInvalidArgument(
      registry.Register(Record(std::string(254, 'x')), kTtl)));
  EXPECT_TRUE(Hosts().empty());
}

TEST_F(HostRegistryTest, UnreadableRecordIsListedWithItsError) {
  ASSERT_TRUE(client_->Put(HostKey("bad/host"), "{not json").ok());
  HostStatus h = OnlyHost();
  EXPECT_EQ(h.record.host_id, "bad/host");
  EXPECT_FALSE(h.up);
  EXPECT_THAT(h.error, ::testing::HasSubstr("not valid JSON"));
}

}  // namespace
}  // namespace juke
