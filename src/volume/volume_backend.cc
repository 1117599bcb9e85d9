#include "src/volume/volume_backend.h"

#include <cstring>
#include <vector>

#include "src/common/checksum.h"

namespace juke {
namespace {

uint64_t AlignDown(uint64_t x) { return x / kBlockSize * kBlockSize; }
uint64_t AlignUp(uint64_t x) { return AlignDown(x + kBlockSize - 1); }

bool Aligned(uint64_t offset, size_t length) {
  return offset % kBlockSize == 0 && length % kBlockSize == 0;
}

}  // namespace

absl::Status VolumeBackend::ReadAt(uint64_t offset, std::span<uint8_t> data) {
  if (Aligned(offset, data.size())) return client_->Read(offset, data);
  uint64_t start = AlignDown(offset);
  std::vector<uint8_t> wide(AlignUp(offset + data.size()) - start);
  if (absl::Status s = client_->Read(start, wide); !s.ok()) return s;
  std::memcpy(data.data(), wide.data() + (offset - start), data.size());
  return absl::OkStatus();
}

absl::Status VolumeBackend::WriteAt(uint64_t offset,
                                    std::span<const uint8_t> data) {
  if (Aligned(offset, data.size())) return client_->Write(offset, data);
  absl::MutexLock lock(&rmw_mu_);
  uint64_t start = AlignDown(offset);
  std::vector<uint8_t> wide(AlignUp(offset + data.size()) - start);
  if (absl::Status s = client_->Read(start, wide); !s.ok()) return s;
  std::memcpy(wide.data() + (offset - start), data.data(), data.size());
  return client_->Write(start, wide);
}

}  // namespace juke
