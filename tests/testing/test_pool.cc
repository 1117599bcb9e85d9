#include "tests/testing/test_pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "nlohmann/json.hpp"

#include "src/common/status.h"

namespace juke::testing {

std::string StoragedPath() {
  const char* build = getenv("JUKE_BUILD_DIR");
  return absl::StrCat(build ? build : "build", "/src/storage/juke-storaged");
}

absl::StatusOr<std::unique_ptr<TestPool>> TestPool::Start(
    TestPoolOptions options) {
  std::unique_ptr<TestPool> pool(new TestPool(options));
  JUKE_ASSIGN_OR_RETURN(pool->etcd_, EtcdProcess::Start());
  JUKE_ASSIGN_OR_RETURN(pool->client_, pool->etcd_->NewClient());
  JUKE_ASSIGN_OR_RETURN(pool->dir_, TempDir::Create("juke-test-pool"));
  for (int i = 1; i <= options.hosts; ++i) {
    Host h;
    h.id = absl::StrCat("h", i);
    h.dir = absl::StrCat(pool->dir_->path(), "/", h.id);
    mkdir(h.dir.c_str(), 0755);
    for (int d = 0; d < options.disks_per_host; ++d) {
      h.disks.push_back(absl::StrCat(h.dir, "/disk", d));
      mkdir(h.disks.back().c_str(), 0755);
    }
    pool->hosts_.push_back(std::move(h));
  }
  for (Host& h : pool->hosts_) {
    JUKE_RETURN_IF_ERROR(pool->StartHost(h));
  }
  return pool;
}

std::vector<std::string> TestPool::ArgsFor(const Host& h) const {
  return {StoragedPath(),
          "--host_id=" + h.id,
          "--disks=" + absl::StrJoin(h.disks, ","),
          "--etcd=" + etcd_->endpoint(),
          "--listen=127.0.0.1:0",
          "--metrics_listen=127.0.0.1:0",
          absl::StrCat("--lease_ttl=", options_.lease_ttl_seconds),
          "--zone=z-" + h.id,
          "--ready_file=" + h.dir + "/ready.json"};
}

absl::Status TestPool::StartHost(Host& h) {
  std::string ready = h.dir + "/ready.json";
  remove(ready.c_str());
  SubprocessOptions opts;
  opts.argv = ArgsFor(h);
  opts.log_path = h.dir + "/storaged.log";
  JUKE_ASSIGN_OR_RETURN(h.process, Subprocess::Start(opts));

  absl::Time deadline = absl::Now() + absl::Seconds(30);
  struct stat st;
  while (stat(ready.c_str(), &st) != 0) {
    if (!h.process->IsRunning()) {
      return absl::InternalError(
          absl::StrCat(h.id, " exited: ", h.process->LogTail()));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(h.id, " never became ready: ", h.process->LogTail()));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::ifstream in(ready);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.contains("address")) {
    return absl::InternalError(absl::StrCat("bad ready file ", ready));
  }
  h.address = j["address"].get<std::string>();
  h.metrics_port = j["metricsPort"].get<int>();
  return absl::OkStatus();
}

}  // namespace juke::testing
