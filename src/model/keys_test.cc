#include "src/model/keys.h"

#include "gtest/gtest.h"

namespace juke {
namespace {

TEST(KeysTest, PlainIdsStayReadable) {
  EXPECT_EQ(EscapeKeySegment("node-1.eu_west"), "node-1.eu_west");
  EXPECT_EQ(HostKey("node-1"), "/juke/v1/hosts/node-1");
  EXPECT_EQ(AliveKey("node-1"), "/juke/v1/alive/node-1");
}

TEST(KeysTest, SlashesCannotLeaveTheSegment) {
  EXPECT_EQ(EscapeKeySegment("a/b"), "a%2Fb");
  EXPECT_EQ(HostKey("../alive/x"), "/juke/v1/hosts/..%2Falive%2Fx");
  EXPECT_EQ(EscapeKeySegment("/"), "%2F");
}

TEST(KeysTest, DotSegmentsAreEncoded) {
  EXPECT_EQ(EscapeKeySegment("."), "%2E");
  EXPECT_EQ(EscapeKeySegment(".."), "%2E%2E");
  EXPECT_EQ(EscapeKeySegment("..."), "...");
  EXPECT_EQ(EscapeKeySegment("a..b"), "a..b");
}

TEST(KeysTest, PercentAndOtherBytesAreEncoded) {
  EXPECT_EQ(EscapeKeySegment("100%"), "100%25");
  EXPECT_EQ(EscapeKeySegment("%2F"), "%252F");
  EXPECT_EQ(EscapeKeySegment("a b\n"), "a%20b%0A");
  EXPECT_EQ(EscapeKeySegment(std::string("a\0b", 3)), "a%00b");
  // "ü" is two bytes in UTF-8; "日" three.
  EXPECT_EQ(EscapeKeySegment("\xc3\xbc"), "%C3%BC");
  EXPECT_EQ(EscapeKeySegment("\xe6\x97\xa5"), "%E6%97%A5");
}

TEST(KeysTest, UnescapeReversesEscape) {
  for (const std::string& id :
       {std::string("node-1"), std::string("a/b"), std::string(".."),
        std::string("."), std::string("100%"), std::string("%2F"),
        std::string("\xc3\xbc\xe6\x97\xa5"), std::string("a\0b\xff", 4),
        std::string("")}) {
    std::string escaped = EscapeKeySegment(id);
    EXPECT_EQ(escaped.find('/'), std::string::npos) << escaped;
    auto back = UnescapeKeySegment(escaped);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, id);
  }
}

TEST(KeysTest, DistinctIdsGiveDistinctKeys) {
  EXPECT_NE(HostKey("a/b"), HostKey("a%2Fb"));
  EXPECT_NE(HostKey(".."), HostKey("%2E%2E"));
}

TEST(KeysTest, UnescapeRejectsMalformedSegments) {
  EXPECT_TRUE(absl::IsInvalidArgument(UnescapeKeySegment("a%2").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(UnescapeKeySegment("a%zz").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(UnescapeKeySegment("a/b").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(UnescapeKeySegment("%").status()));
}

}  // namespace
}  // namespace juke
