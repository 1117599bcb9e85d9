#include "tests/testing/etcd_process.h"

#include <filesystem>

#include "gtest/gtest.h"

namespace juke::testing {
namespace {

TEST(EtcdProcessTest, StartsServesAndCleansUp) {
  std::string dir;
  {
    auto etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    dir = (*etcd)->dir();
    EXPECT_TRUE((*etcd)->IsRunning());

    auto client = (*etcd)->NewClient();
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE((*client)->Put("/t/k", "v").ok());
    auto kv = (*client)->Get("/t/k");
    ASSERT_TRUE(kv.ok()) << kv.status();
    ASSERT_TRUE(kv->has_value());
    EXPECT_EQ((*kv)->value, "v");
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(EtcdProcessTest, RestartKeepsData) {
  auto etcd = EtcdProcess::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  auto client = (*etcd)->NewClient(absl::Seconds(2));
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Put("/t/k", "v").ok());

  ASSERT_TRUE((*etcd)->Kill().ok());
  EXPECT_FALSE((*etcd)->IsRunning());
  EXPECT_FALSE((*client)->Get("/t/k").ok());

  ASSERT_TRUE((*etcd)->Restart().ok());
  auto kv = (*etcd)->NewClient().value()->Get("/t/k");
  ASSERT_TRUE(kv.ok()) << kv.status();
  ASSERT_TRUE(kv->has_value());
  EXPECT_EQ((*kv)->value, "v");
}

}  // namespace
}  // namespace juke::testing
