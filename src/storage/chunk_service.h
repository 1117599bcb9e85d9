#pragma once

#include <functional>
#include <utility>

#include "absl/status/status.h"

#include "juke/storage/v1/storage.grpc.pb.h"

#include "src/storage/storage_metrics.h"
#include "src/storage/storage_node.h"

namespace juke::storage {

// The largest payload one WriteChunk or ReadChunk carries; the gRPC server
// must accept messages somewhat larger than this.
inline constexpr uint64_t kMaxTransferBytes = 4ull << 20;

// The gRPC face of a StorageNode: checks every request before it acts,
// turns Status codes into gRPC codes unchanged, logs each call at debug with
// its code and duration, and counts it. Thread-safe; neither the node nor
// the metrics are owned.
class ChunkServiceImpl final : public v1::ChunkService::Service {
 public:
  // Says whether this host may take writes now; OK, or the error to
  // answer writes and deletes with.
  using WriteGate = std::function<absl::Status()>;

  // A null `gate` lets every write through.
  ChunkServiceImpl(StorageNode* node, StorageMetrics* metrics,
                   WriteGate gate = nullptr)
      : node_(node), metrics_(metrics), gate_(std::move(gate)) {}

  grpc::Status WriteChunk(grpc::ServerContext* ctx,
                          const v1::WriteChunkRequest* req,
                          v1::WriteChunkResponse* resp) override;
  grpc::Status ReadChunk(grpc::ServerContext* ctx,
                         const v1::ReadChunkRequest* req,
                         v1::ReadChunkResponse* resp) override;
  grpc::Status DeleteChunk(grpc::ServerContext* ctx,
                           const v1::DeleteChunkRequest* req,
                           v1::DeleteChunkResponse* resp) override;
  grpc::Status ListChunks(grpc::ServerContext* ctx,
                          const v1::ListChunksRequest* req,
                          v1::ListChunksResponse* resp) override;
  grpc::Status GetDisks(grpc::ServerContext* ctx,
                        const v1::GetDisksRequest* req,
                        v1::GetDisksResponse* resp) override;
  grpc::Status FenceVolume(grpc::ServerContext* ctx,
                           const v1::FenceVolumeRequest* req,
                           v1::FenceVolumeResponse* resp) override;
  grpc::Status SnapshotVolume(grpc::ServerContext* ctx,
                              const v1::SnapshotVolumeRequest* req,
                              v1::SnapshotVolumeResponse* resp) override;
  grpc::Status DeleteSnapshot(grpc::ServerContext* ctx,
                              const v1::DeleteSnapshotRequest* req,
                              v1::DeleteSnapshotResponse* resp) override;

 private:
  StorageNode* const node_;
  StorageMetrics* const metrics_;
  const WriteGate gate_;
};

}  // namespace juke::storage
