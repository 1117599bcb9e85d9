#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

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

}  // namespace juke
