#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

#include "src/common/etcd_client.h"

#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

// A real single-member etcd server for tests, on free loopback ports with
// its data in a fresh temporary directory:
//
//   JUKE_ASSIGN_OR_RETURN(auto etcd, EtcdProcess::Start());
//   JUKE_ASSIGN_OR_RETURN(auto client, EtcdClient::Create(etcd->endpoint()));
//
// Start() returns once etcd answers reads. The server is stopped and its
// directory removed when the object goes away (JUKE_KEEP_TEST_DIRS=1 keeps
// the directory, with etcd.log in it).
//
// Thread-compatible.
namespace juke::testing {

struct EtcdProcessOptions {
  // The etcd binary; empty: $JUKE_ETCD_BIN, else /usr/bin/etcd.
  std::string binary;
  // How long etcd may take to answer after it was started.
  absl::Duration start_timeout = absl::Seconds(30);
};

class EtcdProcess {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      EtcdProcessOptions options = {});
  ~EtcdProcess();

  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // "127.0.0.1:<port>", for EtcdClient::Create and --etcd flags.
  const std::string& endpoint() const { return endpoint_; }
  const std::string& dir() const { return dir_->path(); }
  std::string log_path() const;

  // A new client for this server.
  absl::StatusOr<std::unique_ptr<EtcdClient>> NewClient(
      absl::Duration timeout = absl::Seconds(5)) const;

  // Stops etcd gracefully (SIGTERM). Idempotent.
  absl::Status Stop();
  // Kills etcd with SIGKILL, an outage as others see it.
  absl::Status Kill();
  // Starts etcd again on the same ports and data after Stop() or Kill(), and
  // waits until it answers.
  absl::Status Restart();
  bool IsRunning() const;

 private:
  EtcdProcess(EtcdProcessOptions options, std::unique_ptr<TempDir> dir);

  // Starts the process on the current ports and waits until it answers.
  absl::Status Launch();
  absl::Status WaitUntilServing();

  const EtcdProcessOptions options_;
  const std::unique_ptr<TempDir> dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::string endpoint_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace juke::testing
