#pragma once

#include <memory>

#include "absl/synchronization/mutex.h"

#include "src/node/block_backend.h"
#include "src/volume/volume_client.h"

namespace juke {

// Serves a replicated volume as the block backend of a node attachment
// (FUSE file, loop device). The kernel's requests are 512-byte aligned;
// the volume moves whole 4 KiB blocks, so a request that is not 4 KiB
// aligned is widened: the partial blocks at its edges are read, merged and
// written back, under a lock so that two such writes cannot interleave.
// Every write is durable when acknowledged, so Flush has nothing to do.
// Thread-safe.
class VolumeBackend final : public node::BlockBackend {
 public:
  explicit VolumeBackend(std::unique_ptr<VolumeClient> client)
      : client_(std::move(client)) {}

  uint64_t size() const override { return client_->size(); }
  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> data) override;
  absl::Status WriteAt(uint64_t offset, std::span<const uint8_t> data) override;
  absl::Status Flush() override { return absl::OkStatus(); }
  // Grows to the size the catalog gave the volume (VolumeClient::Grow()).
  absl::Status Resize(uint64_t new_size) override {
    return client_->Grow(new_size);
  }

  VolumeClient& client() const { return *client_; }

 private:
  const std::unique_ptr<VolumeClient> client_;
  absl::Mutex rmw_mu_;  // serialises widened (read-modify-write) writes
};

}  // namespace juke
