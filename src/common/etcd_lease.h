#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "etcd/api/etcdserverpb/rpc.grpc.pb.h"

#include "src/common/etcd_client.h"

// An etcd lease kept alive from a background thread: the liveness of a
// daemon. Keys written with id() vanish when the daemon stops renewing, by
// dying, hanging or losing etcd for longer than the TTL.
//
//   JUKE_ASSIGN_OR_RETURN(auto lease, EtcdLeaseKeeper::Start(etcd, 10));
//   JUKE_RETURN_IF_ERROR(etcd->Put(alive_key, "{}", lease->id()));
//   ...
//   lease->Stop();  // Revokes: alive_key is gone at once.
//
// The thread holds one LeaseKeepAlive stream and sends a keep-alive every
// TTL/3. A keep-alive that gets no answer within the client's call timeout,
// or a broken stream, makes it open a new stream. The lease is *lost* when
// etcd answers that it has expired, or when no keep-alive has been answered
// for a whole TTL (then etcd has expired it, or will before we can tell).
// A lost lease stays lost; the owner must take a new one and rewrite its
// keys. The loss is reported once through the callback and in status().
//
// Thread-safe. The client must outlive the keeper.
namespace juke {

class EtcdLeaseKeeper {
 public:
  // Called once, from one of the keeper's threads, when the lease is lost.
  // REQUIRES: it does not call Stop() or Abandon() or destroy the keeper.
  using LostCallback = std::function<void(const absl::Status&)>;

  // Grants a lease of `ttl_seconds` and starts keeping it alive.
  static absl::StatusOr<std::unique_ptr<EtcdLeaseKeeper>> Start(
      EtcdClient* client, int64_t ttl_seconds, LostCallback on_lost = nullptr);

  // Stops and revokes the lease if neither Stop() nor Abandon() ran.
  ~EtcdLeaseKeeper();

  EtcdLeaseKeeper(const EtcdLeaseKeeper&) = delete;
  EtcdLeaseKeeper& operator=(const EtcdLeaseKeeper&) = delete;

  int64_t id() const { return id_; }
  // The TTL that etcd granted, which may be longer than the one asked for.
  int64_t ttl_seconds() const { return ttl_seconds_; }

  // OK while the lease is kept alive; why it was lost once it was;
  // FailedPrecondition after Stop() or Abandon().
  absl::Status status() const;
  bool alive() const { return status().ok(); }
  // When the last answered keep-alive was sent: the lease lives at least
  // until a TTL after it.
  absl::Time renewed_at() const;

  // Stops the keep-alives and revokes the lease, so that its keys vanish at
  // once (a graceful shutdown). Revoking a lease that has already expired
  // is not an error. Idempotent.
  absl::Status Stop();

  // Stops the keep-alives without revoking: the lease expires after its TTL,
  // exactly as if the process had died. For tests of failure detection.
  void Abandon();

 private:
  EtcdLeaseKeeper(EtcdClient* client, int64_t id, int64_t ttl_seconds,
                  LostCallback on_lost);

  // The keeper thread: holds streams until stopped or lost.
  void Run();
  // Runs one stream until it breaks, goes unanswered, the lease is lost or
  // the keeper stops.
  void RunStream();
  // Stops the thread; returns whether this call was the one that did.
  bool Halt();
  // Records the loss (first reason wins) and calls the callback.
  void MarkLost(const absl::Status& reason);

  EtcdClient* const client_;
  const int64_t id_;
  const int64_t ttl_seconds_;
  const LostCallback on_lost_;
  const std::unique_ptr<etcdserverpb::Lease::Stub> stub_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool halted_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  // When the last answered keep-alive was sent; the lease lives at least a
  // TTL from then.
  absl::Time renewed_at_ ABSL_GUARDED_BY(mu_);
  // The stream's context while one is open, so Halt() can cancel it.
  grpc::ClientContext* stream_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Set by the reader for the writer of the current stream.
  int64_t answers_ ABSL_GUARDED_BY(mu_) = 0;
  bool stream_broken_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;
};

}  // namespace juke
