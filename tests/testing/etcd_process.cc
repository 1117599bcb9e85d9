#include "tests/testing/etcd_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "src/common/status.h"

#include "tests/testing/free_port.h"

namespace juke::testing {
namespace {

constexpr char kDefaultBinary[] = "/usr/bin/etcd";
// Another process can grab a port between PickFreePort() and etcd's bind;
// such a start is retried on new ports this many times.
constexpr int kStartAttempts = 3;

std::string EtcdBinary(const EtcdProcessOptions& options) {
  if (!options.binary.empty()) return options.binary;
  const char* env = std::getenv("JUKE_ETCD_BIN");
  if (env != nullptr && *env != '\0') return env;
  return kDefaultBinary;
}

// Whether something accepts TCP connections on 127.0.0.1:port.
bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(
    EtcdProcessOptions options) {
  JUKE_ASSIGN_OR_RETURN(std::unique_ptr<TempDir> dir,
                        TempDir::Create("juke-etcd"));
  std::unique_ptr<EtcdProcess> etcd(
      new EtcdProcess(std::move(options), std::move(dir)));

  absl::Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    JUKE_ASSIGN_OR_RETURN(etcd->client_port_, PickFreePort());
    JUKE_ASSIGN_OR_RETURN(etcd->peer_port_, PickFreePort());
    if (etcd->client_port_ == etcd->peer_port_) continue;
    etcd->endpoint_ = absl::StrCat("127.0.0.1:", etcd->client_port_);
    last = etcd->Launch();
    if (last.ok()) return etcd;
    etcd->Kill().IgnoreError();
    // Only a lost race for a port is worth another attempt.
    if (!absl::StrContains(last.message(), "address already in use")) break;
    std::error_code ignored;
    std::filesystem::remove_all(etcd->dir() + "/data", ignored);
  }
  return last;
}

EtcdProcess::EtcdProcess(EtcdProcessOptions options,
                         std::unique_ptr<TempDir> dir)
    : options_(std::move(options)), dir_(std::move(dir)) {}

EtcdProcess::~EtcdProcess() {
  if (process_ != nullptr) process_->Terminate(absl::Seconds(5)).IgnoreError();
}

std::string EtcdProcess::log_path() const { return dir() + "/etcd.log"; }

absl::Status EtcdProcess::Launch() {
  std::string client_url = absl::StrCat("http://127.0.0.1:", client_port_);
  std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  SubprocessOptions sub;
  sub.argv = {
      EtcdBinary(options_),
      "--name=juke-test",
      absl::StrCat("--data-dir=", dir(), "/data"),
      absl::StrCat("--listen-client-urls=", client_url),
      absl::StrCat("--advertise-client-urls=", client_url),
      absl::StrCat("--listen-peer-urls=", peer_url),
      absl::StrCat("--initial-advertise-peer-urls=", peer_url),
      absl::StrCat("--initial-cluster=juke-test=", peer_url),
      "--initial-cluster-state=new",
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
  };
  sub.log_path = log_path();
  JUKE_ASSIGN_OR_RETURN(process_, Subprocess::Start(std::move(sub)));
  return WaitUntilServing();
}

absl::Status EtcdProcess::WaitUntilServing() {
  absl::Time deadline = absl::Now() + options_.start_timeout;
  absl::Status last = absl::UnavailableError("not started");
  while (absl::Now() < deadline) {
    if (!process_->IsRunning()) {
      return absl::InternalError(absl::StrCat("etcd ",
                                              process_->exit_info().ToString(),
                                              "; log:\n", process_->LogTail()));
    }
    // A fresh client per attempt: a channel that failed to connect backs
    // off before it tries again.
    if (Accepts(client_port_)) {
      JUKE_ASSIGN_OR_RETURN(auto client, NewClient(absl::Seconds(2)));
      last = client->Get("/juke-test-probe").status();
      if (last.ok()) return absl::OkStatus();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd at ", endpoint_, " did not answer within ",
                   absl::FormatDuration(options_.start_timeout), ": ",
                   last.message(), "; log:\n", process_->LogTail()));
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdProcess::NewClient(
    absl::Duration timeout) const {
  EtcdClientOptions options;
  options.timeout = timeout;
  return EtcdClient::Create(endpoint_, options);
}

absl::Status EtcdProcess::Stop() {
  if (process_ == nullptr || !process_->IsRunning()) return absl::OkStatus();
  return process_->Terminate(absl::Seconds(10)).status();
}

absl::Status EtcdProcess::Kill() {
  if (process_ == nullptr || !process_->IsRunning()) return absl::OkStatus();
  JUKE_RETURN_IF_ERROR(process_->Kill(SIGKILL));
  return process_->Wait().status();
}

absl::Status EtcdProcess::Restart() {
  JUKE_RETURN_IF_ERROR(Stop());
  return Launch();
}

bool EtcdProcess::IsRunning() const {
  return process_ != nullptr && process_->IsRunning();
}

}  // namespace juke::testing
