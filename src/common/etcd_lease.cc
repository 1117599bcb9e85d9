#include "src/common/etcd_lease.h"

#include <grpcpp/client_context.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"

namespace juke {
namespace {

// Pause before opening a new stream after one failed, so that a dead etcd
// is not hammered.
constexpr absl::Duration kReconnectPause = absl::Milliseconds(500);

const Logger& Log() {
  static const Logger log = GetLogger("etcd");
  return log;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdLeaseKeeper>> EtcdLeaseKeeper::Start(
    EtcdClient* client, int64_t ttl_seconds, LostCallback on_lost) {
  JUKE_ASSIGN_OR_RETURN(int64_t lease_id, client->LeaseGrant(ttl_seconds));

  // etcd may have raised the TTL to its minimum; keep-alives follow the
  // real one.
  int64_t granted = ttl_seconds;
  absl::StatusOr<int64_t> left = client->LeaseTimeToLive(lease_id);
  if (left.ok()) granted = std::max(granted, *left);

  std::unique_ptr<EtcdLeaseKeeper> keeper(
      new EtcdLeaseKeeper(client, lease_id, granted, std::move(on_lost)));
  keeper->thread_ = std::thread([k = keeper.get()] { k->Run(); });
  JUKE_LOG_INFO(Log(), "Lease granted leaseID={} ttlSeconds={}", lease_id,
                granted);
  return keeper;
}

EtcdLeaseKeeper::EtcdLeaseKeeper(EtcdClient* client, int64_t id,
                                 int64_t ttl_seconds, LostCallback on_lost)
    : client_(client),
      id_(id),
      ttl_seconds_(ttl_seconds),
      on_lost_(std::move(on_lost)),
      stub_(etcdserverpb::Lease::NewStub(client->channel())),
      renewed_at_(absl::Now()) {}

EtcdLeaseKeeper::~EtcdLeaseKeeper() { Stop().IgnoreError(); }

absl::Time EtcdLeaseKeeper::renewed_at() const {
  absl::MutexLock lock(&mu_);
  return renewed_at_;
}

absl::Status EtcdLeaseKeeper::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

void EtcdLeaseKeeper::MarkLost(const absl::Status& reason) {
  {
    absl::MutexLock lock(&mu_);
    if (!status_.ok()) return;
    status_ = reason;
  }
  JUKE_LOG_WARN(Log(), "Lease lost leaseID={} err={}", id_, reason);
  if (on_lost_) on_lost_(reason);
}

bool EtcdLeaseKeeper::Halt() {
  {
    absl::MutexLock lock(&mu_);
    if (halted_) return false;
    halted_ = true;
    stopping_ = true;
    if (stream_context_ != nullptr) stream_context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
  return true;
}

absl::Status EtcdLeaseKeeper::Stop() {
  if (!Halt()) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (status_.ok()) {
      status_ = absl::FailedPreconditionError(
          absl::StrCat("lease ", id_, " was stopped"));
    }
  }
  absl::Status s = client_->LeaseRevoke(id_);
  if (absl::IsNotFound(s)) s = absl::OkStatus();
  JUKE_LOG_INFO(Log(), "Lease revoked leaseID={} err={}", id_, s);
  return s;
}

void EtcdLeaseKeeper::Abandon() {
  if (!Halt()) return;
  absl::MutexLock lock(&mu_);
  if (status_.ok()) {
    status_ = absl::FailedPreconditionError(
        absl::StrCat("lease ", id_, " was abandoned"));
  }
}

void EtcdLeaseKeeper::Run() {
  while (true) {
    RunStream();

    // Without an answer for a whole TTL the lease is gone, or will be
    // before anything we learn could say otherwise.
    bool expired;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || !status_.ok()) return;
      expired = absl::Now() - renewed_at_ >= absl::Seconds(ttl_seconds_);
    }
    if (expired) {
      MarkLost(absl::DeadlineExceededError(absl::StrCat(
          "lease ", id_, ": no keep-alive answered for ", ttl_seconds_, "s")));
      return;
    }

    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), kReconnectPause);
    if (stopping_) return;
  }
}

void EtcdLeaseKeeper::RunStream() {
  const absl::Duration interval =
      std::max(absl::Seconds(ttl_seconds_) / 3, absl::Milliseconds(200));
  const absl::Duration answer_wait =
      std::min(client_->timeout(), absl::Seconds(ttl_seconds_));
  grpc::ClientContext context;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stream_context_ = &context;
    answers_ = 0;
    stream_broken_ = false;
  }
  auto stream = stub_->LeaseKeepAlive(&context);

  // Answers arrive on their own thread so that the writer can give up on a
  // stream whose answers stopped coming.
  absl::Time sent_at = absl::Now();
  std::thread reader([&] {
    etcdserverpb::LeaseKeepAliveResponse response;
    while (stream->Read(&response)) {
      if (response.ttl() <= 0) {
        MarkLost(absl::NotFoundError(
            absl::StrCat("lease ", id_, " expired in etcd")));
        break;
      }
      absl::MutexLock lock(&mu_);
      renewed_at_ = std::max(renewed_at_, sent_at);
      ++answers_;
    }
    absl::MutexLock lock(&mu_);
    stream_broken_ = true;
  });

  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(id_);
  while (true) {
    int64_t answers_before;
    {
      absl::MutexLock lock(&mu_);
      answers_before = answers_;
      sent_at = absl::Now();
    }
    if (!stream->Write(request)) break;

    // Wait for the answer, the end of the stream, or a stop.
    absl::MutexLock lock(&mu_);
    auto answered = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || stream_broken_ || answers_ > answers_before;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&answered), answer_wait)) {
      JUKE_LOG_WARN(Log(), "Lease keep-alive unanswered leaseID={}", id_);
      break;
    }
    if (stopping_ || stream_broken_ || !status_.ok()) break;

    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || stream_broken_;
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&done), interval)) break;
  }

  // Cancelling ends the reader's Read; Finish then reports why it ended.
  context.TryCancel();
  reader.join();
  absl::Status finish = FromGrpcStatus(stream->Finish());
  absl::MutexLock lock(&mu_);
  stream_context_ = nullptr;
  if (!stopping_ && status_.ok()) {
    JUKE_LOG_WARN(Log(), "Lease keep-alive stream ended leaseID={} err={}", id_,
                  finish);
  }
}

}  // namespace juke
