#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "src/kube/kube_client.h"

// Leader election on a coordination.k8s.io/v1 Lease, so that of several
// replicas of a controller in one cluster only one acts:
//
//   LeaseLock lock(client, "juke-system", "juke-operator", pod_name);
//   while (!stop) {
//     JUKE_ASSIGN_OR_RETURN(bool leader, lock.TryAcquireOrRenew());
//     if (leader) Reconcile();
//     absl::SleepFor(lock.retry_period());
//   }
//
// The holder renews the Lease every retry period. Another candidate takes
// it over only once it has seen the same holder and renew time for a whole
// lease duration by its own clock, so clocks of different machines are
// never compared. Every write is conditional on the resourceVersion read:
// of two candidates racing for a free Lease, one wins.
//
// A holder that fails to renew for `renew_deadline` must stop acting
// before another can take over: TryAcquireOrRenew() returns false then.
//
// Thread-compatible.

namespace juke {

class LeaseLock {
 public:
  struct Options {
    absl::Duration lease_duration = absl::Seconds(15);
    absl::Duration renew_deadline = absl::Seconds(10);
    absl::Duration retry_period = absl::Seconds(2);
  };

  LeaseLock(KubeClient* client, std::string lease_namespace, std::string name,
            std::string identity);
  LeaseLock(KubeClient* client, std::string lease_namespace, std::string name,
            std::string identity, Options options);

  // Whether this candidate holds the Lease after trying to take or renew
  // it. Errors of the API server are returned; the caller keeps acting
  // only while is_leader() says so.
  absl::StatusOr<bool> TryAcquireOrRenew();
  // Whether this candidate renewed the Lease less than renew_deadline ago.
  bool is_leader() const;
  // Gives the Lease up, so that another candidate takes over at once.
  absl::Status Release();

  const std::string& identity() const { return identity_; }
  absl::Duration retry_period() const { return options_.retry_period; }

 private:
  std::string Path() const;
  nlohmann::json Spec(absl::Time now, bool new_holder,
                      const nlohmann::json& old_spec) const;

  KubeClient* const client_;
  const std::string namespace_;
  const std::string name_;
  const std::string identity_;
  const Options options_;

  // The other holder's record as last seen and when it was first seen so.
  std::string observed_holder_;
  std::string observed_renew_;
  absl::Time observed_at_ = absl::InfinitePast();
  absl::Time renewed_at_ = absl::InfinitePast();
};

// RFC 3339 with microseconds, as Kubernetes' MicroTime.
std::string KubeMicroTime(absl::Time t);
// RFC 3339 with seconds, as Kubernetes' Time.
std::string KubeTime(absl::Time t);
// Reads a Kubernetes Time or MicroTime (any RFC 3339 time); InvalidArgument
// for anything else.
absl::StatusOr<absl::Time> ParseKubeTime(absl::string_view text);

}  // namespace juke
