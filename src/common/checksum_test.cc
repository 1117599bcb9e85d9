#include "src/common/checksum.h"

#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace juke {
namespace {

std::span<const uint8_t> Bytes(absl::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ChecksumTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c(Bytes("123456789")), 0xE3069283u);
}

TEST(ChecksumTest, EmptyInputIsZero) { EXPECT_EQ(Crc32c({}), 0u); }

TEST(ChecksumTest, BlockChecksumsCoverEachBlock) {
  std::vector<uint8_t> data(3 * kBlockSize, 0);
  data[kBlockSize + 5] = 1;
  std::vector<uint32_t> sums = BlockChecksums(data);
  ASSERT_EQ(sums.size(), 3u);
  EXPECT_EQ(sums[0], ZeroBlockChecksum());
  EXPECT_NE(sums[1], ZeroBlockChecksum());
  EXPECT_EQ(sums[2], ZeroBlockChecksum());
}

TEST(ChecksumTest, SingleBitFlipChangesTheChecksum) {
  std::vector<uint8_t> data(kBlockSize, 0xAB);
  uint32_t before = Crc32c(data);
  data[100] ^= 0x01;
  EXPECT_NE(Crc32c(data), before);
}

}  // namespace
}  // namespace juke
