#include "src/common/etcd_lease.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

#include "tests/testing/etcd_process.h"

namespace juke {
namespace {

constexpr int64_t kTtl = 2;

class EtcdLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    auto client = etcd_->NewClient(absl::Seconds(1));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  bool Exists(absl::string_view key) {
    auto kv = client_->Get(key);
    EXPECT_TRUE(kv.ok()) << kv.status();
    return kv.ok() && kv->has_value();
  }

  // Polls until `key` is gone; returns how long that took, or nullopt if it
  // is still there after `limit`.
  std::optional<absl::Duration> WaitUntilGone(absl::string_view key,
                                              absl::Duration limit) {
    absl::Time start = absl::Now();
    while (absl::Now() - start < limit) {
      if (!Exists(key)) return absl::Now() - start;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::nullopt;
  }

  std::unique_ptr<testing::EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdLeaseTest, RevokeDeletesAttachedKeys) {
  auto id = client_->LeaseGrant(30);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(client_->Put("/t/leased", "v", *id).ok());
  auto kv = client_->Get("/t/leased");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->lease, *id);
  auto ttl = client_->LeaseTimeToLive(*id);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(*ttl, 20);

  ASSERT_TRUE(client_->LeaseRevoke(*id).ok());
  EXPECT_FALSE(Exists("/t/leased"));
  EXPECT_TRUE(absl::IsNotFound(client_->LeaseTimeToLive(*id).status()));
  EXPECT_TRUE(absl::IsNotFound(client_->LeaseRevoke(*id)));
}

TEST_F(EtcdLeaseTest, KeeperKeepsKeyAlivePastTwoTtls) {
  auto keeper = EtcdLeaseKeeper::Start(client_.get(), kTtl);
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  ASSERT_TRUE(client_->Put("/t/alive", "v", (*keeper)->id()).ok());

  std::this_thread::sleep_for(
      absl::ToChronoMilliseconds(absl::Seconds(2 * kTtl + 1)));
  EXPECT_TRUE(Exists("/t/alive"));
  EXPECT_TRUE((*keeper)->alive()) << (*keeper)->status();
  EXPECT_GE((*keeper)->ttl_seconds(), kTtl);
}

TEST_F(EtcdLeaseTest, AbandonedLeaseExpiresAfterItsTtl) {
  auto keeper = EtcdLeaseKeeper::Start(client_.get(), kTtl);
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  ASSERT_TRUE(client_->Put("/t/alive", "v", (*keeper)->id()).ok());

  // As if the process died: no more keep-alives, no revoke.
  (*keeper)->Abandon();
  EXPECT_TRUE(absl::IsFailedPrecondition((*keeper)->status()));
  EXPECT_TRUE(Exists("/t/alive"));
  auto took = WaitUntilGone("/t/alive", absl::Seconds(kTtl + 4));
  ASSERT_TRUE(took.has_value()) << "key outlived its lease";
  // etcd checks expiry twice a second, so allow a little past the TTL.
  EXPECT_LE(*took, absl::Seconds((*keeper)->ttl_seconds() + 2));
}

TEST_F(EtcdLeaseTest, StopRevokesAtOnce) {
  auto keeper = EtcdLeaseKeeper::Start(client_.get(), 30);
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  ASSERT_TRUE(client_->Put("/t/alive", "v", (*keeper)->id()).ok());

  ASSERT_TRUE((*keeper)->Stop().ok());
  EXPECT_FALSE(Exists("/t/alive"));
  EXPECT_FALSE((*keeper)->alive());
  EXPECT_TRUE((*keeper)->Stop().ok());  // Idempotent.
}

TEST_F(EtcdLeaseTest, ReportsLossWhenLeaseIsRevokedElsewhere) {
  std::atomic<int> calls{0};
  auto keeper = EtcdLeaseKeeper::Start(client_.get(), kTtl,
                                       [&](const absl::Status&) { ++calls; });
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  ASSERT_TRUE(client_->LeaseRevoke((*keeper)->id()).ok());

  absl::Time deadline = absl::Now() + absl::Seconds(kTtl + 3);
  while ((*keeper)->alive() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(absl::IsNotFound((*keeper)->status())) << (*keeper)->status();
  // The callback runs right after the loss shows; give it that moment.
  while (calls.load() == 0 && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(calls.load(), 1);
  // Stopping a lost lease is fine: it is already gone.
  EXPECT_TRUE((*keeper)->Stop().ok());
}

TEST_F(EtcdLeaseTest, ReportsLossWhenEtcdIsGoneForATtl) {
  std::atomic<int> calls{0};
  auto keeper = EtcdLeaseKeeper::Start(client_.get(), kTtl,
                                       [&](const absl::Status&) { ++calls; });
  ASSERT_TRUE(keeper.ok()) << keeper.status();
  ASSERT_TRUE(etcd_->Kill().ok());

  absl::Time start = absl::Now();
  while ((*keeper)->alive() && absl::Now() - start < absl::Seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE((*keeper)->alive());
  EXPECT_TRUE(absl::IsDeadlineExceeded((*keeper)->status()))
      << (*keeper)->status();
  EXPECT_LT(absl::Now() - start, absl::Seconds((*keeper)->ttl_seconds() + 2));
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace juke
