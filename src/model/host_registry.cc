#include "src/model/host_registry.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/keys.h"

namespace juke {
namespace {

const Logger& Log() {
  static const Logger log = GetLogger("model");
  return log;
}

}  // namespace

HostRegistry::HostRegistry(EtcdClient* etcd) : etcd_(etcd) {}

HostRegistry::~HostRegistry() { Deregister().IgnoreError(); }

absl::Status HostRegistry::Register(const HostRecord& record,
                                    int64_t ttl_seconds) {
  JUKE_RETURN_IF_ERROR(ValidateHostRecord(record));
  if (ttl_seconds <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "register host ", record.host_id, ": bad ttl ", ttl_seconds));
  }
  absl::MutexLock lock(&mu_);
  if (!host_id_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("register host ", record.host_id,
                     ": already registered as ", host_id_));
  }
  ttl_seconds_ = ttl_seconds;
  JUKE_RETURN_IF_ERROR(RegisterLocked(record));
  host_id_ = record.host_id;
  return absl::OkStatus();
}

absl::Status HostRegistry::RegisterLocked(const HostRecord& record) {
  const std::string context = absl::StrCat("register host ", record.host_id);
  const std::string alive_key = AliveKey(record.host_id);
  JUKE_ASSIGN_OR_RETURN(std::string value, EncodeHostRecord(record));
  absl::StatusOr<std::unique_ptr<EtcdLeaseKeeper>> lease =
      EtcdLeaseKeeper::Start(etcd_, ttl_seconds_);
  if (!lease.ok()) return Annotate(lease.status(), context);
  JUKE_ASSIGN_OR_RETURN(
      std::string alive,
      EncodeAliveRecord(record.host_id, record.address, (*lease)->id(),
                        absl::ToUnixSeconds(absl::Now())));

  // Record and alive key in one step, and only if no other daemon is alive
  // under this id.
  EtcdTxn txn;
  txn.IfAbsent(alive_key)
      .ThenPut(HostKey(record.host_id), value)
      .ThenPut(alive_key, alive, (*lease)->id())
      .ElseGet(alive_key);
  absl::StatusOr<EtcdTxnResult> result = etcd_->Txn(txn);
  if (!result.ok()) {
    (*lease)->Stop().IgnoreError();
    return Annotate(result.status(), context);
  }
  if (!result->succeeded) {
    (*lease)->Stop().IgnoreError();
    int64_t holder = 0;
    if (!result->reads.empty() && !result->reads[0].empty()) {
      holder = result->reads[0][0].lease;
    }
    std::string expiry;
    absl::StatusOr<int64_t> left = etcd_->LeaseTimeToLive(holder);
    if (left.ok()) expiry = absl::StrCat(", expiring within ", *left + 1, "s");
    return absl::AlreadyExistsError(
        absl::StrCat(context, ": another live daemon holds it (lease ", holder,
                     expiry, ")"));
  }

  lease_ = std::move(*lease);
  JUKE_LOG_INFO(Log(), "Host registered hostID={} address={} leaseID={}",
                record.host_id, record.address, lease_->id());
  return absl::OkStatus();
}

absl::Status HostRegistry::Update(const HostRecord& record) {
  JUKE_RETURN_IF_ERROR(ValidateHostRecord(record));
  absl::MutexLock lock(&mu_);
  const std::string context = absl::StrCat("update host ", record.host_id);
  if (host_id_.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(context, ": not registered"));
  }
  if (record.host_id != host_id_) {
    return absl::InvalidArgumentError(
        absl::StrCat(context, ": registered as ", host_id_));
  }

  // The lease ran out (etcd was out of reach for a TTL): the host showed
  // down meanwhile; come back up on a new lease.
  if (lease_ == nullptr || !lease_->alive()) {
    if (lease_ != nullptr) {
      JUKE_LOG_WARN(Log(),
                    "Host lease lost, registering again hostID={} err={}",
                    host_id_, lease_->status());
      lease_->Stop().IgnoreError();
      lease_.reset();
    }
    return RegisterLocked(record);
  }

  // Write only while the alive key is still ours, so a daemon that lost
  // its lease cannot overwrite the record of a newer one.
  JUKE_ASSIGN_OR_RETURN(std::string value, EncodeHostRecord(record));
  EtcdTxn txn;
  txn.IfLease(AliveKey(host_id_), EtcdCompareOp::kEqual, lease_->id())
      .ThenPut(HostKey(host_id_), value);
  absl::StatusOr<EtcdTxnResult> result = etcd_->Txn(txn);
  if (!result.ok()) return Annotate(result.status(), context);
  if (result->succeeded) return absl::OkStatus();

  JUKE_LOG_WARN(Log(), "Host alive key gone, registering again hostID={}",
                host_id_);
  lease_->Stop().IgnoreError();
  lease_.reset();
  return RegisterLocked(record);
}

absl::Status HostRegistry::Deregister() {
  absl::MutexLock lock(&mu_);
  if (host_id_.empty()) return absl::OkStatus();
  absl::Status s;
  if (lease_ != nullptr) s = lease_->Stop();
  lease_.reset();
  JUKE_LOG_INFO(Log(), "Host deregistered hostID={} err={}", host_id_, s);
  s = Annotate(s, absl::StrCat("deregister host ", host_id_));
  host_id_.clear();
  return s;
}

void HostRegistry::Abandon() {
  absl::MutexLock lock(&mu_);
  if (lease_ != nullptr) lease_->Abandon();
  lease_.reset();
  host_id_.clear();
}

absl::Time HostRegistry::lease_renewed_at() const {
  absl::MutexLock lock(&mu_);
  if (lease_ == nullptr || !lease_->alive()) return absl::InfinitePast();
  return lease_->renewed_at();
}

int64_t HostRegistry::lease_id() const {
  absl::MutexLock lock(&mu_);
  return lease_ == nullptr ? 0 : lease_->id();
}

absl::StatusOr<std::vector<HostStatus>> ListHosts(EtcdClient& etcd) {
  // Records and alive keys at one revision, so that a host is never seen
  // half registered.
  EtcdTxn txn;
  txn.ThenGetPrefix(kHostsPrefix).ThenGetPrefix(kAlivePrefix);
  absl::StatusOr<EtcdTxnResult> result = etcd.Txn(txn);
  if (!result.ok()) return Annotate(result.status(), "list hosts");
  if (result->reads.size() != 2) {
    return absl::InternalError("list hosts: etcd answered the wrong reads");
  }

  const size_t hosts_prefix = sizeof(kHostsPrefix) - 1;
  const size_t alive_prefix = sizeof(kAlivePrefix) - 1;
  std::set<std::string> alive;
  for (const EtcdKeyValue& kv : result->reads[1]) {
    alive.insert(kv.key.substr(alive_prefix));
  }

  std::vector<HostStatus> hosts;
  std::set<std::string> seen;
  for (const EtcdKeyValue& kv : result->reads[0]) {
    std::string segment = kv.key.substr(hosts_prefix);
    seen.insert(segment);
    HostStatus status;
    status.up = alive.count(segment) > 0;
    absl::StatusOr<HostRecord> record = DecodeHostRecord(kv.value);
    if (record.ok()) {
      status.record = std::move(*record);
    } else {
      status.error = std::string(record.status().message());
      status.record.host_id = UnescapeKeySegment(segment).value_or(segment);
    }
    hosts.push_back(std::move(status));
  }
  // Registration writes both keys at once, so this only shows a record
  // deleted by hand under a live daemon.
  for (const std::string& segment : alive) {
    if (seen.count(segment) > 0) continue;
    HostStatus status;
    status.up = true;
    status.error = "alive, but has no host record";
    status.record.host_id = UnescapeKeySegment(segment).value_or(segment);
    hosts.push_back(std::move(status));
  }
  return hosts;
}

}  // namespace juke
