// A real pool on loopback: one etcd process and three storage daemons, each
// a separate process with two disk directories of its own. Chunks go over
// gRPC; daemons are killed with SIGKILL and restarted.

#include <grpcpp/grpcpp.h>
#include <stdio.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

#include "juke/storage/v1/storage.grpc.pb.h"

#include "src/common/checksum.h"
#include "src/model/host_registry.h"
#include "src/model/keys.h"

#include "tests/testing/etcd_process.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pool.h"

namespace juke {
namespace {

namespace v1 = storage::v1;
using testing::EtcdProcess;
using testing::StoragedPath;
using testing::Subprocess;
using testing::SubprocessOptions;
using testing::TempDir;
using testing::TestPool;
using testing::TestPoolOptions;

constexpr int kLeaseTtl = 2;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Data with a recognisable pattern, and its block checksums.
std::string Pattern(size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  return data;
}

std::vector<uint32_t> Sums(const std::string& data) {
  return BlockChecksums(
      {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
}

using Host = TestPool::Host;

class StoragePoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TestPoolOptions options;
    options.lease_ttl_seconds = kLeaseTtl;
    auto pool = TestPool::Start(options);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
    client_ = &pool_->client();
  }

  Host& host(int i) { return pool_->host(i); }

  void StartHost(Host& h) {
    absl::Status s = pool_->StartHost(h);
    ASSERT_TRUE(s.ok()) << s;
    stubs_.erase(h.id);
  }

  v1::ChunkService::Stub* Stub(Host& h) {
    auto& stub = stubs_[h.id];
    if (stub == nullptr) {
      stub = v1::ChunkService::NewStub(
          grpc::CreateChannel(h.address, grpc::InsecureChannelCredentials()));
    }
    return stub.get();
  }

  std::vector<std::string> DiskIds(Host& h) {
    v1::GetDisksResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = Stub(h)->GetDisks(&ctx, v1::GetDisksRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> ids;
    for (const auto& d : resp.disks()) ids.push_back(d.disk_id());
    return ids;
  }

  grpc::Status Write(Host& h, const std::string& disk,
                     const std::string& volume, uint64_t index,
                     const std::string& data, uint64_t generation = 1) {
    v1::WriteChunkRequest req;
    req.set_disk_id(disk);
    req.mutable_chunk()->set_volume_id(volume);
    req.mutable_chunk()->set_index(index);
    req.set_data(data);
    for (uint32_t c : Sums(data)) req.add_checksums(c);
    req.set_generation(generation);
    v1::WriteChunkResponse resp;
    grpc::ClientContext ctx;
    return Stub(h)->WriteChunk(&ctx, req, &resp);
  }

  absl::StatusOr<std::string> Read(Host& h, const std::string& disk,
                                   const std::string& volume, uint64_t index,
                                   uint64_t length) {
    v1::ReadChunkRequest req;
    req.set_disk_id(disk);
    req.mutable_chunk()->set_volume_id(volume);
    req.mutable_chunk()->set_index(index);
    req.set_length(length);
    v1::ReadChunkResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = Stub(h)->ReadChunk(&ctx, req, &resp);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          s.error_message());
    }
    return resp.data();
  }

  // Whether each host is up, as the pool's metadata says.
  std::map<std::string, bool> UpByHost() {
    std::map<std::string, bool> up;
    auto hosts = ListHosts(*client_);
    EXPECT_TRUE(hosts.ok()) << hosts.status();
    if (!hosts.ok()) return up;
    for (const HostStatus& s : *hosts) up[s.record.host_id] = s.up;
    return up;
  }

  // Waits until `host` shows up (or down); returns how long that took.
  absl::Duration WaitForHost(const std::string& host, bool up,
                             absl::Duration timeout) {
    absl::Time start = absl::Now();
    while (absl::Now() - start < timeout) {
      if (UpByHost()[host] == up) return absl::Now() - start;
      absl::SleepFor(absl::Milliseconds(100));
    }
    ADD_FAILURE() << host << " did not become " << (up ? "up" : "down")
                  << " within " << timeout;
    return timeout;
  }

  std::unique_ptr<TestPool> pool_;
  EtcdClient* client_ = nullptr;
  std::map<std::string, std::unique_ptr<v1::ChunkService::Stub>> stubs_;
};

TEST_F(StoragePoolTest, EveryHostRegistersWithItsDisksAndLabels) {
  auto hosts = ListHosts(*client_);
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 3u);
  for (const HostStatus& s : *hosts) {
    EXPECT_TRUE(s.up) << s.record.host_id;
    EXPECT_EQ(s.record.disks.size(), 2u);
    EXPECT_EQ(s.record.labels.zone, "z-" + s.record.host_id);
    for (const DiskRecord& d : s.record.disks) {
      EXPECT_EQ(d.state, "healthy");
      EXPECT_GT(d.capacity_bytes, 0u);
    }
  }
}

TEST_F(StoragePoolTest, DisksOfOneFileSystemAreCountedOnce) {
  // Every disk of the test pool is a directory of one temporary directory:
  // six disks, one file system, whose space the pool must not count six
  // times.
  auto hosts = ListHosts(*client_);
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  DiskSpaceSum sum;
  std::set<std::string> filesystems;
  uint64_t capacity = 0;
  for (const HostStatus& s : *hosts) {
    for (const DiskRecord& d : s.record.disks) {
      EXPECT_FALSE(d.filesystem.empty()) << d.disk_id;
      filesystems.insert(d.filesystem);
      capacity = d.capacity_bytes;
      sum.Add(d);
    }
  }
  EXPECT_EQ(filesystems.size(), 1u);
  EXPECT_EQ(sum.shared_disks(), 5u);
  EXPECT_EQ(sum.capacity_bytes(), capacity);
}

TEST_F(StoragePoolTest, ChunksWrittenOverGrpcReadBackOnEveryDisk) {
  uint64_t seed = 1;
  for (int i = 0; i < pool_->size(); ++i) {
    Host& h = host(i);
    for (const std::string& disk : DiskIds(h)) {
      std::string data = Pattern(size_t{256} * 1024, seed++);
      ASSERT_TRUE(Write(h, disk, "vol-a", 3, data).ok());
      auto back = Read(h, disk, "vol-a", 3, data.size());
      ASSERT_TRUE(back.ok()) << back.status();
      EXPECT_EQ(*back, data) << h.id << " " << disk;
    }
  }
}

TEST_F(StoragePoolTest, KilledDaemonIsDownAfterItsLeaseAndKeepsItsChunks) {
  Host& h2 = host(1);
  std::vector<std::string> disks = DiskIds(h2);
  ASSERT_EQ(disks.size(), 2u);
  std::vector<std::string> written;
  for (int i = 0; i < 4; ++i) {
    written.push_back(Pattern(size_t{64} * 1024, 100 + i));
    ASSERT_TRUE(Write(h2, disks[i % 2], "vol-k", i, written.back()).ok());
  }

  ASSERT_TRUE(h2.process->Kill(SIGKILL).ok());
  absl::Duration took = WaitForHost("h2", false, absl::Seconds(kLeaseTtl + 10));
  EXPECT_GE(took, absl::Seconds(kLeaseTtl - 1)) << "down before its lease";
  std::map<std::string, bool> up = UpByHost();
  EXPECT_TRUE(up["h1"]);
  EXPECT_TRUE(up["h3"]);

  ASSERT_NO_FATAL_FAILURE(StartHost(h2));
  WaitForHost("h2", true, absl::Seconds(10));
  EXPECT_EQ(DiskIds(h2), disks) << "a restarted daemon keeps its disk ids";
  for (int i = 0; i < 4; ++i) {
    auto back = Read(h2, disks[i % 2], "vol-k", i, written[i].size());
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, written[i]) << "chunk " << i;
  }
}

TEST_F(StoragePoolTest, SigtermLeavesThePoolAtOnce) {
  Host& h3 = host(2);
  auto exit = h3.process->Terminate(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->success()) << exit->ToString() << h3.process->LogTail();
  // No lease to wait out: a graceful stop revokes it.
  EXPECT_FALSE(UpByHost()["h3"]);
}

TEST_F(StoragePoolTest, FenceHoldsAcrossAHardRestart) {
  Host& h1 = host(0);
  std::string disk = DiskIds(h1)[0];
  std::string data = Pattern(4096, 7);
  ASSERT_TRUE(Write(h1, disk, "vol-f", 0, data, 3).ok());

  v1::FenceVolumeRequest req;
  req.set_volume_id("vol-f");
  req.set_generation(5);
  v1::FenceVolumeResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(Stub(h1)->FenceVolume(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.generation(), 5u);

  ASSERT_TRUE(h1.process->Kill(SIGKILL).ok());
  ASSERT_TRUE(h1.process->Wait(absl::Seconds(10)).ok());
  ASSERT_NO_FATAL_FAILURE(StartHost(h1));

  // Every disk of the host refuses the old writer, not only the one that
  // held its chunk.
  for (const std::string& d : DiskIds(h1)) {
    grpc::Status s = Write(h1, d, "vol-f", 0, Pattern(4096, 8), 4);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << s.error_message();
  }
  auto back = Read(h1, disk, "vol-f", 0, 4096);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
  EXPECT_TRUE(Write(h1, disk, "vol-f", 0, Pattern(4096, 9), 5).ok());
}

TEST_F(StoragePoolTest, HostCutOffFromEtcdTakesNoWritesUntilItKnowsTheFences) {
  Host& h1 = host(0);
  std::string disk = DiskIds(h1)[0];
  ASSERT_TRUE(Write(h1, disk, "vol-g", 0, Pattern(4096, 1), 3).ok());

  // h1 freezes (as if cut off) long enough for its lease to run out; the
  // pool counts it down. Meanwhile the volume moves: the new attachment's
  // generation goes to etcd, and h1, being down, is not told.
  ASSERT_TRUE(h1.process->Kill(SIGSTOP).ok());
  WaitForHost("h1", false, absl::Seconds(15));
  ASSERT_TRUE(client_->Put(FenceKey("vol-g"), "9").ok());
  ASSERT_TRUE(h1.process->Kill(SIGCONT).ok());

  // Back, h1 must not take the old writer's write before it knows.
  grpc::Status first = Write(h1, disk, "vol-g", 0, Pattern(4096, 2), 3);
  EXPECT_FALSE(first.ok()) << "a write of a moved volume was taken";
  // Once it has a new lease and has read the fences, it takes the new
  // writer's writes and refuses the old one's.
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  grpc::Status current;
  do {
    absl::SleepFor(absl::Milliseconds(200));
    current = Write(h1, disk, "vol-g", 0, Pattern(4096, 3), 9);
  } while (!current.ok() && absl::Now() < deadline);
  ASSERT_TRUE(current.ok()) << current.error_message();
  EXPECT_EQ(Write(h1, disk, "vol-g", 0, Pattern(4096, 4), 3).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  auto back = Read(h1, disk, "vol-g", 0, 4096);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, Pattern(4096, 3));
}

TEST_F(StoragePoolTest, BadRequestsGetClearCodesAndChangeNothing) {
  Host& h1 = host(0);
  std::string disk = DiskIds(h1)[0];
  std::string data = Pattern(8192, 11);

  EXPECT_EQ(Write(h1, "no-such-disk", "v", 0, data).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Write(h1, "", "v", 0, data).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Write(h1, disk, "", 0, data).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Write(h1, disk, std::string("a\0b", 3), 0, data).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Write(h1, disk, "v", 0, data.substr(0, 1000)).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // A payload corrupted on the way: its checksums no longer match.
  v1::WriteChunkRequest req;
  req.set_disk_id(disk);
  req.mutable_chunk()->set_volume_id("v");
  req.set_data(data);
  for (uint32_t c : Sums(data)) req.add_checksums(c);
  (*req.mutable_data())[5000] ^= 1;
  req.set_generation(1);
  v1::WriteChunkResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(Stub(h1)->WriteChunk(&ctx, req, &resp).error_code(),
            grpc::StatusCode::DATA_LOSS);

  // Nothing of the above left a chunk behind.
  EXPECT_EQ(Read(h1, disk, "v", 0, 4096).status().code(),
            absl::StatusCode::kNotFound);
  v1::ListChunksRequest list;
  list.set_disk_id(disk);
  list.set_volume_id("v");
  v1::ListChunksResponse listed;
  grpc::ClientContext ctx2;
  ASSERT_TRUE(Stub(h1)->ListChunks(&ctx2, list, &listed).ok());
  EXPECT_EQ(listed.chunks_size(), 0);
}

TEST_F(StoragePoolTest, MetricsCountCallsAndDisks) {
  Host& h1 = host(0);
  std::string disk = DiskIds(h1)[0];
  ASSERT_TRUE(Write(h1, disk, "vol-m", 0, Pattern(4096, 1)).ok());
  std::string cmd =
      absl::StrCat("curl -sf http://127.0.0.1:", h1.metrics_port, "/metrics");
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof buf, f)) out += buf;
  ASSERT_EQ(pclose(f), 0) << cmd;
  EXPECT_NE(out.find("juke_storage_requests_total{code=\"OK\",method="
                     "\"WriteChunk\"} 1"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("juke_storage_disk_capacity_bytes{disk=\"" + disk),
            std::string::npos);
}

// The daemon refuses to start on a bad configuration, with a message that
// names the problem.
class StoragedStartTest : public ::testing::Test {
 protected:
  // Runs the daemon with `args` and returns its exit code and output.
  std::pair<int, std::string> Run(std::vector<std::string> args) {
    auto dir = TempDir::Create("juke-start-test");
    EXPECT_TRUE(dir.ok());
    SubprocessOptions opts;
    opts.argv = {StoragedPath()};
    opts.argv.insert(opts.argv.end(), args.begin(), args.end());
    opts.log_path = (*dir)->path() + "/out.log";
    auto p = Subprocess::Start(opts);
    EXPECT_TRUE(p.ok());
    auto exit = (*p)->Wait(absl::Seconds(30));
    EXPECT_TRUE(exit.ok());
    return {exit.ok() ? exit->exit_code : -1, ReadAll(opts.log_path)};
  }
};

TEST_F(StoragedStartTest, BadFlagsExitWithTwoAndSayWhy) {
  auto [code, out] = Run({"--disks=/tmp"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("--host_id: missing"), std::string::npos) << out;

  std::tie(code, out) = Run({"--host_id=h", "--disks=/nonexistent/juke"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("does not exist"), std::string::npos) << out;

  std::tie(code, out) = Run({"--host_id=h", "--disks=/tmp", "--lease_ttl=x"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("lease_ttl"), std::string::npos) << out;

  std::tie(code, out) = Run({"--host_id=h", "--disks=/tmp", "stray"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("unexpected argument 'stray'"), std::string::npos) << out;
}

TEST_F(StoragedStartTest, HelpAndVersionSucceed) {
  for (const char* flag : {"--help", "-h", "--helpfull"}) {
    auto [code, out] = Run({flag});
    EXPECT_EQ(code, 0) << flag;
    EXPECT_NE(out.find("juke-storaged: the Juke storage daemon"),
              std::string::npos)
        << flag << ": " << out;
    EXPECT_NE(out.find("  --host_id  (default: \"\")"), std::string::npos)
        << flag << ": " << out;
  }
  auto [code, out] = Run({"--version"});
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out, "juke-storaged 0.1.0\n");
}

TEST_F(StoragedStartTest, DiskOfAnotherHostIsRefused) {
  auto etcd = EtcdProcess::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  auto dir = TempDir::Create("juke-foreign-disk");
  ASSERT_TRUE(dir.ok());
  std::string disk = (*dir)->path() + "/disk";
  mkdir(disk.c_str(), 0755);
  std::string ready = (*dir)->path() + "/ready.json";

  // Host a labels the disk and stops.
  SubprocessOptions opts;
  opts.argv = {StoragedPath(),         "--host_id=a",
               "--disks=" + disk,      "--etcd=" + (*etcd)->endpoint(),
               "--listen=127.0.0.1:0", "--metrics_listen=",
               "--ready_file=" + ready};
  opts.log_path = (*dir)->path() + "/a.log";
  auto a = Subprocess::Start(opts);
  ASSERT_TRUE(a.ok());
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  struct stat st;
  while (stat(ready.c_str(), &st) != 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE((*a)->Terminate().ok());

  // Host b is pointed at the same directory by mistake.
  auto [code, out] =
      Run({"--host_id=b", "--disks=" + disk, "--etcd=" + (*etcd)->endpoint(),
           "--listen=127.0.0.1:0", "--metrics_listen="});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("cannot start"), std::string::npos) << out;
  EXPECT_NE(out.find("host"), std::string::npos) << out;
}

}  // namespace
}  // namespace juke
