#include "src/common/checksum.h"

#include <array>
#include <cassert>

#include <isa-l/crc.h>

namespace juke {

uint32_t Crc32c(std::span<const uint8_t> data) {
  // ISA-L leaves the customary pre- and post-inversion to the caller.
  return ~crc32_iscsi(const_cast<uint8_t*>(data.data()),
                      static_cast<int>(data.size()), 0xFFFFFFFFu);
}

std::vector<uint32_t> BlockChecksums(std::span<const uint8_t> data) {
  assert(data.size() % kBlockSize == 0);
  std::vector<uint32_t> sums;
  sums.reserve(data.size() / kBlockSize);
  for (size_t off = 0; off < data.size(); off += kBlockSize) {
    sums.push_back(Crc32c(data.subspan(off, kBlockSize)));
  }
  return sums;
}

uint32_t ZeroBlockChecksum() {
  static const uint32_t sum = [] {
    static const std::array<uint8_t, kBlockSize> zeros{};
    return Crc32c(zeros);
  }();
  return sum;
}

}  // namespace juke
