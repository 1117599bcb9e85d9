#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

// CRC32C (Castagnoli), the checksum every 4 KiB block of Juke data carries
// from the writer to the disk and back. Computed with ISA-L.
namespace juke {

// The unit of checksumming, alignment and I/O in the data path.
inline constexpr size_t kBlockSize = 4096;

// Standard CRC32C of `data` ("123456789" gives 0xE3069283).
uint32_t Crc32c(std::span<const uint8_t> data);

// Checksums of each kBlockSize block of `data`.
// REQUIRES: data.size() is a multiple of kBlockSize.
std::vector<uint32_t> BlockChecksums(std::span<const uint8_t> data);

// CRC32C of a block of kBlockSize zero bytes: the checksum of a block that
// was never written, which reads as zeros.
uint32_t ZeroBlockChecksum();

}  // namespace juke
