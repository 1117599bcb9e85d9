#include "src/storage/daemon_config.h"

#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace juke::storage {
namespace {

class DaemonConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/juke-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_.host_id = "node-1";
    config_.disks = {dir_};
    config_.etcd_endpoints = {"127.0.0.1:2379"};
  }
  void TearDown() override { rmdir(dir_.c_str()); }

  // The error for `config_`, which must be InvalidArgument.
  std::string ErrorOf() {
    absl::Status s = ValidateConfig(config_);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    return std::string(s.message());
  }

  std::string dir_;
  DaemonConfig config_;
};

TEST_F(DaemonConfigTest, MinimalConfigIsValid) {
  EXPECT_TRUE(ValidateConfig(config_).ok());
}

TEST_F(DaemonConfigTest, MissingHostIdSaysWhichFlag) {
  config_.host_id = "";
  EXPECT_NE(ErrorOf().find("--host_id: missing"), std::string::npos);
}

TEST_F(DaemonConfigTest, HostIdWithSlashIsRejected) {
  config_.host_id = "a/b";
  EXPECT_NE(ErrorOf().find("--host_id"), std::string::npos);
  config_.host_id = "..";
  EXPECT_NE(ErrorOf().find("--host_id"), std::string::npos);
  config_.host_id = std::string(64, 'a');
  EXPECT_NE(ErrorOf().find("--host_id"), std::string::npos);
}

TEST_F(DaemonConfigTest, BadLabelIsRejected) {
  config_.zone = "zone a";
  EXPECT_NE(ErrorOf().find("--zone"), std::string::npos);
}

TEST_F(DaemonConfigTest, DisksMustBeGivenAbsoluteExistingAndDistinct) {
  config_.disks = {};
  EXPECT_NE(ErrorOf().find("no disks given"), std::string::npos);
  config_.disks = {"relative/dir"};
  EXPECT_NE(ErrorOf().find("not an absolute path"), std::string::npos);
  config_.disks = {dir_ + "/missing"};
  EXPECT_NE(ErrorOf().find("does not exist"), std::string::npos);
  config_.disks = {dir_, dir_ + "/"};
  EXPECT_NE(ErrorOf().find("listed twice"), std::string::npos);
}

TEST_F(DaemonConfigTest, AddressesMustBeHostPort) {
  config_.listen = "7420";
  EXPECT_NE(ErrorOf().find("--listen"), std::string::npos);
  config_.listen = "127.0.0.1:99999";
  EXPECT_NE(ErrorOf().find("--listen"), std::string::npos);
  config_.listen = "127.0.0.1:0";
  config_.etcd_endpoints = {"localhost"};
  EXPECT_NE(ErrorOf().find("--etcd"), std::string::npos);
  config_.etcd_endpoints = {};
  EXPECT_NE(ErrorOf().find("--etcd: no endpoints"), std::string::npos);
}

TEST_F(DaemonConfigTest, LeaseTtlAndChunkSizeAreBounded) {
  config_.lease_ttl_seconds = 1;
  EXPECT_NE(ErrorOf().find("--lease_ttl"), std::string::npos);
  config_.lease_ttl_seconds = 10;
  config_.max_chunk_size = 4097;
  EXPECT_NE(ErrorOf().find("--max_chunk_size"), std::string::npos);
}

TEST(IsValidNameTest, AcceptsAndRejects) {
  EXPECT_TRUE(IsValidName("us-east-1"));
  EXPECT_TRUE(IsValidName("node_1.example"));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("-lead"));
  EXPECT_FALSE(IsValidName("has space"));
  EXPECT_FALSE(IsValidName(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace juke::storage
