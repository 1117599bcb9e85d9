#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

#include "src/common/etcd_client.h"
#include "src/common/etcd_lease.h"
#include "src/model/host_record.h"

// Pool membership of one storage host, as its daemon maintains it in etcd:
//
//   HostRegistry registry(etcd.get());
//   JUKE_RETURN_IF_ERROR(registry.Register(record, /*ttl_seconds=*/10));
//   ...  // Every so often, with fresh capacity figures:
//   JUKE_RETURN_IF_ERROR(registry.Update(record));
//   ...  // On graceful shutdown:
//   registry.Deregister();
//
// Register() writes the host's record (persistent: the pool remembers a
// host while it is down) and its alive key, attached to a lease that a
// background thread keeps alive, in one transaction. A crashed daemon's
// alive key vanishes after the TTL; Deregister() revokes the lease, so a
// host that shuts down shows down at once.
//
// Only one live daemon may hold a host id: Register() fails with
// AlreadyExists while another lease holds the alive key. A daemon that
// restarts after a crash therefore waits out its old lease; it should
// retry Register() until it succeeds.
//
// If the lease is lost (etcd unreachable for a TTL), the next Update()
// registers again on a new lease.
//
// Thread-safe. The client must outlive the registry.
namespace juke {

class HostRegistry {
 public:
  explicit HostRegistry(EtcdClient* etcd);
  // Deregisters if still registered.
  ~HostRegistry();

  HostRegistry(const HostRegistry&) = delete;
  HostRegistry& operator=(const HostRegistry&) = delete;

  // REQUIRES: not registered yet. InvalidArgument for a record that
  // ValidateHostRecord() refuses; AlreadyExists when another live daemon
  // holds the host id.
  absl::Status Register(const HostRecord& record, int64_t ttl_seconds);

  // Rewrites the record. REQUIRES: registered, with the same host id.
  absl::Status Update(const HostRecord& record);

  // Revokes the lease: the host shows down at once; its record stays.
  // Idempotent.
  absl::Status Deregister();

  // Stops keeping the lease alive without revoking it, as a crash would:
  // the host shows down after the TTL. For tests.
  void Abandon();

  // The lease of the alive key, 0 when not registered.
  int64_t lease_id() const;
  // When the lease was last renewed (EtcdLeaseKeeper::renewed_at());
  // InfinitePast when not registered or the lease was lost.
  absl::Time lease_renewed_at() const;

 private:
  // Takes a lease and writes record and alive key unless another lease
  // holds the alive key.
  absl::Status RegisterLocked(const HostRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EtcdClient* const etcd_;
  mutable absl::Mutex mu_;
  // Empty when not registered.
  std::string host_id_ ABSL_GUARDED_BY(mu_);
  int64_t ttl_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  // Null while registered only after a failed attempt to register again.
  std::unique_ptr<EtcdLeaseKeeper> lease_ ABSL_GUARDED_BY(mu_);
};

// One host of the pool as seen by readers.
struct HostStatus {
  HostRecord record;
  // Whether its alive key exists: its daemon runs and reaches etcd.
  bool up = false;
  // Set when the stored record could not be read; record then holds only
  // the host id (taken from the key).
  std::string error;
};

// Returns every host of every pool, in the order of their keys, read at
// one etcd revision.
absl::StatusOr<std::vector<HostStatus>> ListHosts(EtcdClient& etcd);

}  // namespace juke
