#include "src/common/logging.h"

#include "gtest/gtest.h"

namespace juke {
namespace {

TEST(LoggingTest, SameNameGivesSameLogger) {
  EXPECT_EQ(GetLogger("alpha").get(), GetLogger("alpha").get());
}

TEST(LoggingTest, LevelsApplyPerComponent) {
  Logger a = GetLogger("levels-a");
  Logger b = GetLogger("levels-b");
  ASSERT_TRUE(SetLogLevels("warn,levels-b=debug").ok());
  EXPECT_EQ(a->level(), spdlog::level::warn);
  EXPECT_EQ(b->level(), spdlog::level::debug);
  // A logger made later picks up its override too.
  ASSERT_TRUE(SetLogLevels("info,levels-c=error").ok());
  EXPECT_EQ(GetLogger("levels-c")->level(), spdlog::level::err);
  EXPECT_EQ(b->level(), spdlog::level::info);
}

TEST(LoggingTest, MalformedSpecIsRejectedAndChangesNothing) {
  ASSERT_TRUE(SetLogLevels("info").ok());
  Logger a = GetLogger("levels-d");
  EXPECT_EQ(SetLogLevels("debug,levels-d=loud").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetLogLevels("=debug").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->level(), spdlog::level::info);
}

}  // namespace
}  // namespace juke
