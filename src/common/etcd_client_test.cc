#include "src/common/etcd_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "tests/testing/etcd_process.h"
#include "tests/testing/free_port.h"
#include "tests/testing/status_matchers.h"

namespace juke {
namespace {

using ::juke::testing::IsOkAndHolds;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;

class EtcdClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = testing::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = std::move(*etcd);
    auto client = etcd_->NewClient();
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  std::vector<std::string> Keys(absl::string_view prefix) {
    auto kvs = client_->GetPrefix(prefix);
    EXPECT_TRUE(kvs.ok()) << kvs.status();
    std::vector<std::string> keys;
    if (!kvs.ok()) return keys;
    for (const EtcdKeyValue& kv : *kvs) keys.push_back(kv.key);
    return keys;
  }

  std::unique_ptr<testing::EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdClientTest, PutGetDelete) {
  auto missing = client_->Get("/t/k");
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_FALSE(missing->has_value());

  ASSERT_TRUE(client_->Put("/t/k", "v1").ok());
  auto kv = client_->Get("/t/k");
  ASSERT_TRUE(kv.ok()) << kv.status();
  ASSERT_TRUE(kv->has_value());
  EXPECT_EQ((*kv)->key, "/t/k");
  EXPECT_EQ((*kv)->value, "v1");
  EXPECT_GT((*kv)->mod_revision, 0);
  EXPECT_EQ((*kv)->create_revision, (*kv)->mod_revision);
  EXPECT_EQ((*kv)->version, 1);
  EXPECT_EQ((*kv)->lease, 0);

  ASSERT_TRUE(client_->Put("/t/k", "v2").ok());
  auto kv2 = client_->Get("/t/k");
  ASSERT_TRUE(kv2.ok() && kv2->has_value());
  EXPECT_EQ((*kv2)->value, "v2");
  EXPECT_GT((*kv2)->mod_revision, (*kv)->mod_revision);
  EXPECT_EQ((*kv2)->version, 2);

  EXPECT_THAT(client_->Delete("/t/k"), IsOkAndHolds(true));
  EXPECT_THAT(client_->Delete("/t/k"), IsOkAndHolds(false));
  auto gone = client_->Get("/t/k");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_F(EtcdClientTest, BinaryValuesSurvive) {
  std::string value("a\0b\xff", 4);
  ASSERT_TRUE(client_->Put("/t/bin", value).ok());
  auto kv = client_->Get("/t/bin");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->value, value);
}

TEST_F(EtcdClientTest, GetPrefixReturnsOnlyThePrefixInKeyOrder) {
  for (const char* key : {"/a/3", "/a/1", "/ab", "/a/2", "/b", "/a"}) {
    ASSERT_TRUE(client_->Put(key, std::string("value of ") + key).ok());
  }
  EXPECT_THAT(Keys("/a/"), ElementsAre("/a/1", "/a/2", "/a/3"));

  auto limited = client_->GetPrefix("/a/", 2);
  ASSERT_TRUE(limited.ok()) << limited.status();
  EXPECT_THAT(*limited, ElementsAre(Field(&EtcdKeyValue::key, "/a/1"),
                                    Field(&EtcdKeyValue::key, "/a/2")));
  EXPECT_EQ((*limited)[0].value, "value of /a/1");
}

TEST_F(EtcdClientTest, DeletePrefixLeavesNeighbours) {
  for (const char* key : {"/a/1", "/a/2", "/ab", "/b"}) {
    ASSERT_TRUE(client_->Put(key, "x").ok());
  }
  EXPECT_THAT(client_->DeletePrefix("/a/"), IsOkAndHolds(int64_t{2}));
  EXPECT_THAT(Keys("/"), ElementsAre("/ab", "/b"));
  EXPECT_TRUE(absl::IsInvalidArgument(client_->DeletePrefix("").status()));
}

TEST_F(EtcdClientTest, PutIfModRevisionSwapsOnlyTheExpectedVersion) {
  // 0 means "only if absent".
  EXPECT_THAT(client_->PutIfModRevision("/t/cas", "v1", 0), IsOkAndHolds(true));
  EXPECT_THAT(client_->PutIfModRevision("/t/cas", "again", 0),
              IsOkAndHolds(false));
  auto kv = client_->Get("/t/cas");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->value, "v1");
  int64_t rev = (*kv)->mod_revision;

  EXPECT_THAT(client_->PutIfModRevision("/t/cas", "v2", rev),
              IsOkAndHolds(true));
  // The revision moved on, so the same swap now fails and changes nothing.
  EXPECT_THAT(client_->PutIfModRevision("/t/cas", "v3", rev),
              IsOkAndHolds(false));
  auto after = client_->Get("/t/cas");
  ASSERT_TRUE(after.ok() && after->has_value());
  EXPECT_EQ((*after)->value, "v2");
}

TEST_F(EtcdClientTest, CreateIfAbsentCreatesOnce) {
  EXPECT_THAT(client_->CreateIfAbsent("/t/once", "first"), IsOkAndHolds(true));
  EXPECT_THAT(client_->CreateIfAbsent("/t/once", "second"),
              IsOkAndHolds(false));
  auto kv = client_->Get("/t/once");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  EXPECT_EQ((*kv)->value, "first");
}

TEST_F(EtcdClientTest, TxnRunsThenBranchWhenComparesHold) {
  ASSERT_TRUE(client_->Put("/t/a", "1").ok());
  ASSERT_TRUE(client_->Put("/t/gone", "x").ok());
  EtcdTxn txn;
  txn.IfValue("/t/a", EtcdCompareOp::kEqual, "1")
      .IfAbsent("/t/b")
      .ThenPut("/t/b", "2")
      .ThenDelete("/t/gone")
      .ThenGetPrefix("/t/")
      .ElsePut("/t/else", "ran");
  auto result = client_->Txn(txn);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->succeeded);
  EXPECT_GT(result->revision, 0);
  ASSERT_EQ(result->reads.size(), 3u);
  EXPECT_TRUE(result->reads[0].empty());
  EXPECT_THAT(result->reads[2], ElementsAre(Field(&EtcdKeyValue::key, "/t/a"),
                                            Field(&EtcdKeyValue::key, "/t/b")));
  EXPECT_THAT(Keys("/t/"), ElementsAre("/t/a", "/t/b"));
}

TEST_F(EtcdClientTest, TxnRunsElseBranchWhenACompareFails) {
  ASSERT_TRUE(client_->Put("/t/a", "1").ok());
  EtcdTxn txn;
  txn.IfValue("/t/a", EtcdCompareOp::kEqual, "1")
      .IfVersion("/t/a", EtcdCompareOp::kGreater, 5)
      .ThenPut("/t/then", "ran")
      .ElseGet("/t/a")
      .ElsePut("/t/else", "ran");
  auto result = client_->Txn(txn);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->succeeded);
  ASSERT_EQ(result->reads.size(), 2u);
  ASSERT_EQ(result->reads[0].size(), 1u);
  EXPECT_EQ(result->reads[0][0].value, "1");
  EXPECT_THAT(Keys("/t/"), ElementsAre("/t/a", "/t/else"));
}

TEST_F(EtcdClientTest, TxnComparesCreateRevision) {
  ASSERT_TRUE(client_->Put("/t/a", "1").ok());
  auto kv = client_->Get("/t/a");
  ASSERT_TRUE(kv.ok() && kv->has_value());
  ASSERT_TRUE(client_->Put("/t/a", "2").ok());

  // Rewrites keep the create revision; only delete and re-create change it.
  EtcdTxn same;
  same.IfCreateRevision("/t/a", EtcdCompareOp::kEqual, (*kv)->create_revision);
  EXPECT_TRUE(client_->Txn(same).value().succeeded);

  ASSERT_TRUE(client_->Delete("/t/a").ok());
  ASSERT_TRUE(client_->Put("/t/a", "3").ok());
  EXPECT_FALSE(client_->Txn(same).value().succeeded);
}

TEST_F(EtcdClientTest, SeveralEndpointsSkipADeadOne) {
  auto dead_port = testing::PickFreePort();
  ASSERT_TRUE(dead_port.ok());
  auto client = EtcdClient::Create(
      absl::StrCat("127.0.0.1:", *dead_port, ",", etcd_->endpoint()));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE((*client)->Put("/t/k", "v").ok());
  EXPECT_THAT(Keys("/t/"), ElementsAre("/t/k"));
}

TEST_F(EtcdClientTest, ErrorsNameTheOperationAndKey) {
  ASSERT_TRUE(etcd_->Kill().ok());
  absl::Status s = client_->Put("/juke/v1/x", "v");
  EXPECT_TRUE(absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("etcd put /juke/v1/x: "));
}

TEST(EtcdClientCreateTest, RejectsBadEndpointLists) {
  EXPECT_TRUE(absl::IsInvalidArgument(EtcdClient::Create("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(EtcdClient::Create("nohost").status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(EtcdClient::Create("a:2379,b:2379").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      EtcdClient::Create("127.0.0.1:1,[::1]:2").status()));
  EXPECT_TRUE(absl::IsUnimplemented(
      EtcdClient::Create("https://127.0.0.1:2379").status()));
  EXPECT_TRUE(EtcdClient::Create("etcd.juke.svc:2379").ok());
  EXPECT_TRUE(EtcdClient::Create("http://127.0.0.1:2379/").ok());
  EXPECT_TRUE(EtcdClient::Create("127.0.0.1:1, 127.0.0.1:2").ok());
  EXPECT_TRUE(EtcdClient::Create("[::1]:1,[::1]:2").ok());
}

TEST(EtcdClientCreateTest, UnreachableEndpointFailsQuickly) {
  auto port = testing::PickFreePort();
  ASSERT_TRUE(port.ok());
  auto client = EtcdClient::Create(absl::StrCat("127.0.0.1:", *port));
  ASSERT_TRUE(client.ok());
  absl::Time start = absl::Now();
  absl::Status s = (*client)->Get("/k").status();
  EXPECT_TRUE(absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(6));
}

TEST(EtcdClientCreateTest, SilentServerRunsIntoTheDeadline) {
  // A socket that listens but never accepts: TCP connects, HTTP/2 never
  // starts, so only the deadline ends the call.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  EtcdClientOptions options;
  options.timeout = absl::Seconds(1);
  auto client = EtcdClient::Create(
      absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)), options);
  ASSERT_TRUE(client.ok());
  absl::Time start = absl::Now();
  absl::Status s = (*client)->Put("/k", "v");
  absl::Duration took = absl::Now() - start;
  close(fd);
  EXPECT_TRUE(absl::IsDeadlineExceeded(s) || absl::IsUnavailable(s)) << s;
  EXPECT_GE(took, absl::Milliseconds(900));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST(EtcdPrefixEndTest, IncrementsTheLastByte) {
  EXPECT_EQ(EtcdPrefixEnd("/a/"), "/a0");
  EXPECT_EQ(EtcdPrefixEnd("a\xff"), "b");
  EXPECT_EQ(EtcdPrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(EtcdPrefixEnd("\xff\xff"), std::string(1, '\0'));
}

}  // namespace
}  // namespace juke
