// storage_bench: the storage daemon's chunk path against the disk it sits
// on. Runs the same access patterns twice, side by side: once as WriteChunk
// and ReadChunk calls to a running daemon, once with fio directly on a file
// in the same file system, each write made durable before the next (the
// daemon acknowledges only durable writes, so fio gets --fdatasync=1). Prints
// each figure and the ratio daemon/fio. A benchmark, not a test: it asserts
// nothing.
//
//   storage_bench --address=127.0.0.1:7420 --disk_id=h1.1a2b3c4d
//       --fio_dir=/var/tmp/juke-pool/h1/disk0 --runs=3

#include <grpcpp/grpcpp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"

#include "juke/storage/v1/storage.grpc.pb.h"

#include "src/common/checksum.h"

ABSL_FLAG(std::string, address, "", "The daemon's chunk service HOST:PORT.");
ABSL_FLAG(std::string, disk_id, "", "The disk to write to.");
ABSL_FLAG(std::string, fio_dir, "",
          "A directory on the same file system as the disk, for fio's file.");
ABSL_FLAG(int, size_mib, 128, "Bytes per sequential pass, in MiB.");
ABSL_FLAG(int, random_ops, 2000, "Operations per random 4 KiB pass.");
ABSL_FLAG(int, runs, 3, "Passes of each pattern; the median is reported.");

namespace {

namespace v1 = juke::storage::v1;

constexpr uint64_t kChunk = 4ull << 20;

struct Pattern {
  std::string name;
  bool write;
  uint64_t block;  // bytes per operation
  bool random;
};

// One pattern's result: operations per second and bytes per second.
struct Rate {
  double iops = 0;
  double bps = 0;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

class DaemonRunner {
 public:
  DaemonRunner(const std::string& address, std::string disk_id)
      : disk_id_(std::move(disk_id)) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(8 << 20);
    args.SetMaxSendMessageSize(8 << 20);
    stub_ = v1::ChunkService::NewStub(grpc::CreateCustomChannel(
        address, grpc::InsecureChannelCredentials(), args));
  }

  // Runs `p` over `bytes` of a fresh volume, or `ops` random operations.
  Rate Run(const Pattern& p, uint64_t bytes, int ops, int run) {
    std::string volume = absl::StrCat("bench-", getpid(), "-", run);
    std::string data(p.block, '\0');
    std::mt19937_64 rng(run);
    for (char& c : data) c = static_cast<char>(rng());
    std::vector<uint32_t> sums = juke::BlockChecksums(
        {reinterpret_cast<const uint8_t*>(data.data()), data.size()});

    // Reads need something to read: lay the data down first, untimed.
    if (!p.write) Fill(volume, bytes);

    uint64_t n = p.random ? static_cast<uint64_t>(ops) : bytes / p.block;
    uint64_t span_blocks = bytes / p.block;
    absl::Time start = absl::Now();
    for (uint64_t i = 0; i < n; ++i) {
      uint64_t pos = (p.random ? rng() % span_blocks : i) * p.block;
      bool ok =
          p.write ? Write(volume, pos, data, sums) : Read(volume, pos, p.block);
      if (!ok) exit(1);
    }
    double secs = absl::ToDoubleSeconds(absl::Now() - start);
    Cleanup(volume, bytes);
    return {n / secs, n * p.block / secs};
  }

 private:
  bool Write(const std::string& volume, uint64_t pos, const std::string& data,
             const std::vector<uint32_t>& sums) {
    v1::WriteChunkRequest req;
    req.set_disk_id(disk_id_);
    req.mutable_chunk()->set_volume_id(volume);
    req.mutable_chunk()->set_index(pos / kChunk);
    req.set_offset(pos % kChunk);
    req.set_data(data);
    req.mutable_checksums()->Add(sums.begin(), sums.end());
    req.set_generation(1);
    v1::WriteChunkResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->WriteChunk(&ctx, req, &resp);
    if (!s.ok()) fprintf(stderr, "write: %s\n", s.error_message().c_str());
    return s.ok();
  }

  bool Read(const std::string& volume, uint64_t pos, uint64_t len) {
    v1::ReadChunkRequest req;
    req.set_disk_id(disk_id_);
    req.mutable_chunk()->set_volume_id(volume);
    req.mutable_chunk()->set_index(pos / kChunk);
    req.set_offset(pos % kChunk);
    req.set_length(len);
    v1::ReadChunkResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->ReadChunk(&ctx, req, &resp);
    if (!s.ok()) fprintf(stderr, "read: %s\n", s.error_message().c_str());
    return s.ok();
  }

  void Fill(const std::string& volume, uint64_t bytes) {
    std::string data(1 << 20, 'x');
    std::vector<uint32_t> sums = juke::BlockChecksums(
        {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    for (uint64_t pos = 0; pos < bytes; pos += data.size()) {
      if (!Write(volume, pos, data, sums)) exit(1);
    }
  }

  void Cleanup(const std::string& volume, uint64_t bytes) {
    for (uint64_t i = 0; i * kChunk < bytes; ++i) {
      v1::DeleteChunkRequest req;
      req.set_disk_id(disk_id_);
      req.mutable_chunk()->set_volume_id(volume);
      req.mutable_chunk()->set_index(i);
      req.set_generation(1);
      v1::DeleteChunkResponse resp;
      grpc::ClientContext ctx;
      stub_->DeleteChunk(&ctx, req, &resp).ok();  // absent chunks are fine
    }
  }

  std::string disk_id_;
  std::unique_ptr<v1::ChunkService::Stub> stub_;
};

// Runs fio with the same pattern on a file in `dir` and reads its JSON.
Rate RunFio(const Pattern& p, const std::string& dir, uint64_t bytes, int ops) {
  std::string rw = p.write ? (p.random ? "randwrite" : "write")
                           : (p.random ? "randread" : "read");
  std::string file = dir + "/fio-bench.dat";
  std::string cmd = absl::StrCat(
      "fio --name=bench --output-format=json --ioengine=io_uring --direct=1",
      " --filename=", file, " --size=", bytes, " --bs=", p.block, " --rw=", rw,
      p.write ? " --fdatasync=1" : "",
      p.random ? absl::StrCat(" --number_ios=", ops) : "",
      " --randrepeat=0 --iodepth=1 --end_fsync=1 2>/dev/null");
  FILE* f = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (f && fgets(buf, sizeof buf, f)) out += buf;
  if (f == nullptr || pclose(f) != 0) {
    fprintf(stderr, "fio failed: %s\n", cmd.c_str());
    exit(1);
  }
  unlink(file.c_str());
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) {
    fprintf(stderr, "fio printed no JSON\n");
    exit(1);
  }
  const nlohmann::json& job = j["jobs"][0][p.write ? "write" : "read"];
  return {job["iops"].get<double>(), job["bw_bytes"].get<double>()};
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "compares the daemon's chunk path with fio on the same file system");
  absl::ParseCommandLine(argc, argv);
  std::string address = absl::GetFlag(FLAGS_address);
  std::string disk = absl::GetFlag(FLAGS_disk_id);
  std::string dir = absl::GetFlag(FLAGS_fio_dir);
  if (address.empty() || disk.empty() || dir.empty()) {
    fprintf(stderr,
            "storage_bench: --address, --disk_id and --fio_dir are "
            "required (see --help)\n");
    return 2;
  }
  uint64_t bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_size_mib)) << 20;
  int ops = absl::GetFlag(FLAGS_random_ops);
  int runs = std::max(1, absl::GetFlag(FLAGS_runs));

  const std::vector<Pattern> patterns = {
      {"seq write 1 MiB", true, 1 << 20, false},
      {"seq read 1 MiB", false, 1 << 20, false},
      {"rand write 4 KiB", true, 4096, true},
      {"rand read 4 KiB", false, 4096, true},
  };
  DaemonRunner daemon(address, disk);
  printf(
      "%-18s %14s %14s %8s   (median of %d runs, queue depth 1, "
      "durable writes)\n",
      "pattern", "juke", "fio", "ratio", runs);
  for (const Pattern& p : patterns) {
    std::vector<double> ours, theirs, ratios;
    for (int r = 0; r < runs; ++r) {
      // Alternate which goes first so drift on a noisy machine evens out.
      Rate a, b;
      if (r % 2 == 0) {
        a = daemon.Run(p, bytes, ops, r);
        b = RunFio(p, dir, bytes, ops);
      } else {
        b = RunFio(p, dir, bytes, ops);
        a = daemon.Run(p, bytes, ops, r);
      }
      double x = p.random ? a.iops : a.bps / (1 << 20);
      double y = p.random ? b.iops : b.bps / (1 << 20);
      ours.push_back(x);
      theirs.push_back(y);
      ratios.push_back(x / y);
    }
    const char* unit = p.random ? "IOPS" : "MiB/s";
    printf("%-18s %9.1f %-4s %9.1f %-4s %8.2f\n", p.name.c_str(), Median(ours),
           unit, Median(theirs), unit, Median(ratios));
  }
  return 0;
}
