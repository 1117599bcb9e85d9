#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "juke/storage/v1/storage.grpc.pb.h"

namespace juke {

// One gRPC channel and stub per storage daemon address, made on first use
// and kept. Thread-safe; stubs live as long as the pool.
class ChunkClientPool {
 public:
  storage::v1::ChunkService::Stub* For(const std::string& address);

 private:
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<storage::v1::ChunkService::Stub>> stubs_
      ABSL_GUARDED_BY(mu_);
};

// The indexes of the volume's chunks on one disk, all pages, in order:
// its live chunks, or with `epoch` those of that snapshot.
absl::StatusOr<std::vector<uint64_t>> ListChunkIndexes(
    storage::v1::ChunkService::Stub* stub, absl::string_view disk_id,
    absl::string_view volume_id, absl::Duration rpc_timeout,
    uint64_t epoch = 0);

}  // namespace juke
