#include "src/cli/chunk_command.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

#include "juke/storage/v1/storage.grpc.pb.h"

#include "src/common/checksum.h"
#include "src/common/etcd_client.h"
#include "src/model/host_registry.h"

namespace juke::cli {
namespace {

namespace v1 = storage::v1;

constexpr uint64_t kMaxTransfer = 4ull << 20;

int Fail(std::ostream& err, absl::string_view message) {
  err << "juke chunk: " << message << "\n";
  return 1;
}

// The host's record, looked up in etcd.
absl::StatusOr<HostStatus> FindHost(const ChunkOptions& o) {
  EtcdClientOptions eo;
  eo.timeout = o.timeout;
  auto etcd = EtcdClient::Create(o.etcd_endpoints, eo);
  if (!etcd.ok()) return etcd.status();
  auto hosts = ListHosts(**etcd);
  if (!hosts.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot reach etcd at ",
                                               o.etcd_endpoints, ": ",
                                               hosts.status().message()));
  }
  for (HostStatus& h : *hosts) {
    if (h.record.host_id == o.host) return std::move(h);
  }
  return absl::NotFoundError(absl::StrCat(
      "host \"", o.host, "\" is not in the pool; see juke status"));
}

std::string PickDisk(const HostStatus& host, const std::string& wanted) {
  if (!wanted.empty()) return wanted;
  for (const DiskRecord& d : host.record.disks) {
    if (d.state == "healthy") return d.disk_id;
  }
  return host.record.disks.empty() ? "" : host.record.disks[0].disk_id;
}

void Deadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(timeout));
}

int Write(const ChunkOptions& o, const std::string& disk,
          v1::ChunkService::Stub* stub, std::ostream& out, std::ostream& err) {
  std::ifstream in(o.from, std::ios::binary);
  if (!in) return Fail(err, absl::StrCat("cannot open ", o.from));
  std::string data((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (data.empty() || data.size() > kMaxTransfer) {
    return Fail(err, absl::StrCat(o.from, " is ", data.size(),
                                  " bytes; send 1 byte to 4 MiB"));
  }
  size_t given = data.size();
  // Chunks are written in whole 4 KiB blocks.
  data.resize((data.size() + kBlockSize - 1) / kBlockSize * kBlockSize, '\0');

  v1::WriteChunkRequest req;
  req.set_disk_id(disk);
  req.mutable_chunk()->set_volume_id(o.volume);
  req.mutable_chunk()->set_index(o.index);
  req.set_offset(o.offset);
  req.set_generation(o.generation);
  for (uint32_t c : BlockChecksums(
           {reinterpret_cast<const uint8_t*>(data.data()), data.size()})) {
    req.add_checksums(c);
  }
  req.set_data(std::move(data));
  v1::WriteChunkResponse resp;
  grpc::ClientContext ctx;
  Deadline(&ctx, o.timeout);
  grpc::Status s = stub->WriteChunk(&ctx, req, &resp);
  if (!s.ok()) return Fail(err, absl::StrCat("write: ", s.error_message()));
  out << "wrote " << given << " bytes"
      << (given != req.data().size()
              ? absl::StrCat(" (padded to ", req.data().size(), ")")
              : "")
      << " to chunk " << o.volume << "/" << o.index << " on " << o.host
      << " disk " << disk << ", version " << resp.version() << "\n";
  return 0;
}

int Read(const ChunkOptions& o, const std::string& disk,
         v1::ChunkService::Stub* stub, std::ostream& out, std::ostream& err) {
  v1::ReadChunkRequest req;
  req.set_disk_id(disk);
  req.mutable_chunk()->set_volume_id(o.volume);
  req.mutable_chunk()->set_index(o.index);
  req.set_offset(o.offset);
  req.set_length(o.length == 0 ? kMaxTransfer : o.length);
  v1::ReadChunkResponse resp;
  grpc::ClientContext ctx;
  Deadline(&ctx, o.timeout);
  grpc::Status s = stub->ReadChunk(&ctx, req, &resp);
  if (!s.ok()) return Fail(err, absl::StrCat("read: ", s.error_message()));
  if (o.to == "-") {
    out << resp.data();
    return 0;
  }
  std::ofstream f(o.to, std::ios::binary | std::ios::trunc);
  f << resp.data();
  if (!f) return Fail(err, absl::StrCat("cannot write ", o.to));
  out << "read " << resp.data().size() << " bytes of chunk " << o.volume << "/"
      << o.index << " (version " << resp.version() << ", checksums verified)"
      << " into " << o.to << "\n";
  return 0;
}

int List(const ChunkOptions& o, const std::string& disk,
         v1::ChunkService::Stub* stub, std::ostream& out, std::ostream& err) {
  std::string token;
  do {
    v1::ListChunksRequest req;
    req.set_disk_id(disk);
    req.set_volume_id(o.volume);
    req.set_page_token(token);
    v1::ListChunksResponse resp;
    grpc::ClientContext ctx;
    Deadline(&ctx, o.timeout);
    grpc::Status s = stub->ListChunks(&ctx, req, &resp);
    if (!s.ok()) return Fail(err, absl::StrCat("list: ", s.error_message()));
    for (const v1::ChunkInfo& c : resp.chunks()) {
      out << c.chunk().volume_id() << "/" << c.chunk().index() << "@"
          << c.chunk().epoch() << " size=" << c.size()
          << " version=" << c.version() << " generation=" << c.generation()
          << "\n";
    }
    token = resp.next_page_token();
  } while (!token.empty());
  return 0;
}

}  // namespace

int RunChunk(const ChunkOptions& o, std::ostream& out, std::ostream& err) {
  absl::StatusOr<HostStatus> host = FindHost(o);
  if (!host.ok()) return Fail(err, host.status().message());
  if (!host->up) {
    return Fail(err, absl::StrCat("host ", o.host, " is down"));
  }
  std::string disk = PickDisk(*host, o.disk);
  if (disk.empty()) return Fail(err, absl::StrCat(o.host, " has no disks"));

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(8 << 20);
  args.SetMaxSendMessageSize(8 << 20);
  auto stub = v1::ChunkService::NewStub(grpc::CreateCustomChannel(
      host->record.address, grpc::InsecureChannelCredentials(), args));
  if (o.action == "write") return Write(o, disk, stub.get(), out, err);
  if (o.action == "read") return Read(o, disk, stub.get(), out, err);
  return List(o, disk, stub.get(), out, err);
}

}  // namespace juke::cli
