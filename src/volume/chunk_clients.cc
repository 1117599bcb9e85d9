#include "src/volume/chunk_clients.h"

#include <grpcpp/grpcpp.h>

#include "src/common/grpc_status.h"
#include "src/common/status.h"

namespace juke {

storage::v1::ChunkService::Stub* ChunkClientPool::For(
    const std::string& address) {
  absl::MutexLock lock(&mu_);
  auto it = stubs_.find(address);
  if (it != stubs_.end()) return it->second.get();
  grpc::ChannelArguments args;
  // A full 4 MiB transfer plus checksums and framing.
  args.SetMaxReceiveMessageSize(8 << 20);
  args.SetMaxSendMessageSize(8 << 20);
  auto stub = storage::v1::ChunkService::NewStub(grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args));
  auto* raw = stub.get();
  stubs_.emplace(address, std::move(stub));
  return raw;
}

absl::StatusOr<std::vector<uint64_t>> ListChunkIndexes(
    storage::v1::ChunkService::Stub* stub, absl::string_view disk_id,
    absl::string_view volume_id, absl::Duration rpc_timeout, uint64_t epoch) {
  std::vector<uint64_t> indexes;
  std::string token;
  do {
    storage::v1::ListChunksRequest req;
    req.set_disk_id(std::string(disk_id));
    req.set_volume_id(std::string(volume_id));
    req.set_page_token(token);
    storage::v1::ListChunksResponse resp;
    grpc::ClientContext ctx;
    SetDeadlineAfter(&ctx, rpc_timeout);
    JUKE_RETURN_IF_ERROR(FromGrpcStatus(stub->ListChunks(&ctx, req, &resp)));
    for (const storage::v1::ChunkInfo& c : resp.chunks()) {
      if (c.chunk().epoch() == epoch) indexes.push_back(c.chunk().index());
    }
    token = resp.next_page_token();
  } while (!token.empty());
  return indexes;
}

}  // namespace juke
