#include "src/kube/leader_election.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "src/common/logging.h"
#include "src/common/status.h"

namespace juke {
namespace {

using Json = nlohmann::json;

const Logger& Log() {
  static const Logger* log = new Logger(GetLogger("kube"));
  return *log;
}

}  // namespace

std::string KubeMicroTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string KubeTime(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<absl::Time> ParseKubeTime(absl::string_view text) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an RFC 3339 time: \"", text, "\": ", error));
  }
  return t;
}

LeaseLock::LeaseLock(KubeClient* client, std::string lease_namespace,
                     std::string name, std::string identity)
    : LeaseLock(client, std::move(lease_namespace), std::move(name),
                std::move(identity), Options()) {}

LeaseLock::LeaseLock(KubeClient* client, std::string lease_namespace,
                     std::string name, std::string identity, Options options)
    : client_(client),
      namespace_(std::move(lease_namespace)),
      name_(std::move(name)),
      identity_(std::move(identity)),
      options_(options) {}

std::string LeaseLock::Path() const {
  return absl::StrCat("/apis/coordination.k8s.io/v1/namespaces/", namespace_,
                      "/leases/", name_);
}

Json LeaseLock::Spec(absl::Time now, bool new_holder,
                     const Json& old_spec) const {
  Json spec = old_spec.is_object() ? old_spec : Json::object();
  spec["holderIdentity"] = identity_;
  spec["leaseDurationSeconds"] = absl::ToInt64Seconds(options_.lease_duration);
  spec["renewTime"] = KubeMicroTime(now);
  if (new_holder) {
    spec["acquireTime"] = KubeMicroTime(now);
    spec["leaseTransitions"] =
        spec.value("leaseTransitions", 0) + (old_spec.is_object() ? 1 : 0);
  }
  return spec;
}

absl::StatusOr<bool> LeaseLock::TryAcquireOrRenew() {
  absl::Time now = absl::Now();
  absl::StatusOr<Json> lease = client_->Get(Path());
  if (absl::IsNotFound(lease.status())) {
    Json object = {{"apiVersion", "coordination.k8s.io/v1"},
                   {"kind", "Lease"},
                   {"metadata", {{"name", name_}, {"namespace", namespace_}}},
                   {"spec", Spec(now, true, Json())}};
    absl::StatusOr<Json> created =
        client_->Create(absl::StrCat("/apis/coordination.k8s.io/v1/namespaces/",
                                     namespace_, "/leases"),
                        object);
    if (absl::IsAlreadyExists(created.status())) return false;
    if (!created.ok()) return created.status();
    JUKE_LOG_INFO(Log(), "Became leader lease={}/{} identity={}", namespace_,
                  name_, identity_);
    renewed_at_ = now;
    return true;
  }
  if (!lease.ok()) return lease.status();

  Json spec = lease->value("spec", Json::object());
  std::string holder = spec.value("holderIdentity", "");
  std::string renew = spec.value("renewTime", "");
  bool mine = holder == identity_;
  if (!mine && !holder.empty()) {
    if (holder != observed_holder_ || renew != observed_renew_) {
      observed_holder_ = holder;
      observed_renew_ = renew;
      observed_at_ = now;
    }
    int64_t seconds = spec.value("leaseDurationSeconds", int64_t{0});
    if (now - observed_at_ < absl::Seconds(seconds)) return false;
    JUKE_LOG_INFO(Log(),
                  "Lease expired, taking over lease={}/{} "
                  "previousHolder={}",
                  namespace_, name_, holder);
  }
  Json updated = *lease;
  updated["spec"] = Spec(now, !mine, spec);
  absl::StatusOr<Json> put = client_->Replace(Path(), updated);
  if (absl::IsAborted(put.status())) return false;  // Someone else wrote.
  if (!put.ok()) return put.status();
  if (!mine) {
    JUKE_LOG_INFO(Log(), "Became leader lease={}/{} identity={}", namespace_,
                  name_, identity_);
  }
  renewed_at_ = now;
  return true;
}

bool LeaseLock::is_leader() const {
  return absl::Now() - renewed_at_ < options_.renew_deadline;
}

absl::Status LeaseLock::Release() {
  if (!is_leader()) return absl::OkStatus();
  absl::StatusOr<Json> lease = client_->Get(Path());
  if (!lease.ok()) return lease.status();
  Json spec = lease->value("spec", Json::object());
  if (spec.value("holderIdentity", "") != identity_) return absl::OkStatus();
  Json updated = *lease;
  updated["spec"]["holderIdentity"] = "";
  // A released Lease may be taken at once.
  updated["spec"]["leaseDurationSeconds"] = 1;
  renewed_at_ = absl::InfinitePast();
  return client_->Replace(Path(), updated).status();
}

}  // namespace juke
