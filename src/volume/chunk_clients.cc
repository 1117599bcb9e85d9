#include "src/volume/chunk_clients.h"

#include <grpcpp/grpcpp.h>

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

}  // namespace juke
