#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "src/common/etcd_client.h"

#include "tests/testing/etcd_process.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace juke::testing {

struct TestPoolOptions {
  int hosts = 3;
  int disks_per_host = 2;
  int lease_ttl_seconds = 2;
};

// A real pool for integration tests: one etcd process and storage daemons
// (build/src/storage/juke-storaged, found through $JUKE_BUILD_DIR), each a
// separate process on loopback with disk directories of its own in a
// temporary directory. Hosts are named h1, h2, ... and may be killed and
// restarted; a restarted host keeps its disks. Start it from the test's
// main thread (see Subprocess). Thread-compatible.
class TestPool {
 public:
  static absl::StatusOr<std::unique_ptr<TestPool>> Start(
      TestPoolOptions options = {});

  struct Host {
    std::string id;
    std::string dir;
    std::vector<std::string> disks;
    std::unique_ptr<Subprocess> process;
    std::string address;  // chunk service, once started
    int metrics_port = 0;
  };

  EtcdProcess& etcd() { return *etcd_; }
  EtcdClient& client() { return *client_; }
  const std::string& dir() const { return dir_->path(); }
  // REQUIRES: 0 <= i < hosts.
  Host& host(int i) { return hosts_[i]; }
  int size() const { return static_cast<int>(hosts_.size()); }

  // The daemon's command line, for tests that run it themselves.
  std::vector<std::string> ArgsFor(const Host& host) const;
  // Starts (or restarts) the host's daemon and waits until it serves.
  absl::Status StartHost(Host& host);

 private:
  explicit TestPool(TestPoolOptions options) : options_(options) {}

  const TestPoolOptions options_;
  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
  std::unique_ptr<TempDir> dir_;
  std::vector<Host> hosts_;
};

// Where the built juke-storaged is.
std::string StoragedPath();

}  // namespace juke::testing
