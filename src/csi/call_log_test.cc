#include "src/csi/call_log.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "csi/v1/csi.pb.h"

namespace juke::csi {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RedactedTest, LeavesSecretsOutAtEveryDepth) {
  ::csi::v1::CreateVolumeRequest create;
  create.set_name("vol-1");
  (*create.mutable_secrets())["password"] = "a,b=c$HOME";
  (*create.mutable_parameters())["replicas"] = "3";
  std::string text = Redacted(create);
  EXPECT_THAT(text, HasSubstr("vol-1"));
  EXPECT_THAT(text, HasSubstr("replicas"));
  EXPECT_THAT(text, Not(HasSubstr("a,b=c$HOME")));
  EXPECT_THAT(text, Not(HasSubstr("password")));

  ::csi::v1::NodeStageVolumeRequest stage;
  stage.set_volume_id("v");
  (*stage.mutable_secrets())["key"] = "s3cr3t";
  EXPECT_THAT(Redacted(stage), Not(HasSubstr("s3cr3t")));
  // The original keeps its secrets: only the log's copy loses them.
  EXPECT_EQ(stage.secrets().at("key"), "s3cr3t");
}

}  // namespace
}  // namespace juke::csi
