#pragma once

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "etcd/api/etcdserverpb/rpc.grpc.pb.h"

#include "src/common/etcd_txn.h"

// A small client for etcd's v3 gRPC API: key-value reads and writes,
// transactions and leases. Juke keeps its cluster metadata in etcd (see
// docs/etcd-layout.md); this is the only place that speaks to it.
//
//   JUKE_ASSIGN_OR_RETURN(auto etcd, EtcdClient::Create("10.0.0.5:2379"));
//   JUKE_RETURN_IF_ERROR(etcd->Put("/juke/v1/x", "y"));
//   JUKE_ASSIGN_OR_RETURN(std::optional<EtcdKeyValue> kv, etcd->Get(key));
//
// Every call carries a deadline (EtcdClientOptions::timeout) and returns an
// absl::Status whose code is etcd's gRPC code unchanged (Unavailable when no
// member answers, DeadlineExceeded when the deadline passed, NotFound for an
// unknown lease, ...) and whose message names the operation and the key:
// "etcd put /juke/v1/hosts/h1: connection refused".
//
// Connections are plaintext (insecure channel credentials).
// TODO: TLS and etcd authentication; production etcd outside the cluster's
// own network needs both.
//
// Thread-safe: any number of threads may share one client.
namespace juke {

struct EtcdClientOptions {
  // Deadline of each call.
  absl::Duration timeout = absl::Seconds(5);
};

// One key with its value and metadata, as etcd stores it.
struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  // Number of writes since the key was created.
  int64_t lease = 0;    // 0 when the key is not attached to a lease.
};

// What etcd answered to a transaction.
struct EtcdTxnResult {
  // Whether every compare held, so the "then" branch ran.
  bool succeeded = false;
  // The store's revision after the transaction.
  int64_t revision = 0;
  // One entry per operation of the branch that ran, in order: the keys read
  // by a get, empty for a put or a delete.
  std::vector<std::vector<EtcdKeyValue>> reads;
};

class EtcdClient {
 public:
  // Creates a client for `endpoints`: one or more comma-separated host:port
  // pairs. One endpoint may be a DNS name, which gRPC resolves and re-resolves
  // (a headless Service naming every member works). Several endpoints must be
  // IP addresses of one family; the client connects to the first that
  // answers and moves on when it fails. Does not connect yet: an unreachable
  // etcd shows up as Unavailable on the first call.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      absl::string_view endpoints, EtcdClientOptions options = {});

  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;

  // The endpoints as given, for messages.
  const std::string& endpoints() const { return endpoints_; }
  absl::Duration timeout() const { return options_.timeout; }
  // The channel every call uses; for the lease keeper and future watchers.
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

  // Returns the key, or nullopt when it does not exist.
  absl::StatusOr<std::optional<EtcdKeyValue>> Get(absl::string_view key);

  // Returns the keys that start with `prefix`, in key order, at most `limit`
  // of them (0: all).
  absl::StatusOr<std::vector<EtcdKeyValue>> GetPrefix(absl::string_view prefix,
                                                      int64_t limit = 0);

  // Writes `value` under `key`, attached to `lease` unless it is 0.
  absl::Status Put(absl::string_view key, absl::string_view value,
                   int64_t lease = 0);

  // Deletes the key; returns whether it existed.
  absl::StatusOr<bool> Delete(absl::string_view key);

  // Deletes every key that starts with `prefix`; returns how many there were.
  // REQUIRES: prefix is not empty.
  absl::StatusOr<int64_t> DeletePrefix(absl::string_view prefix);

  // Applies `txn` atomically.
  absl::StatusOr<EtcdTxnResult> Txn(const EtcdTxn& txn);

  // Compare-and-swap: writes `value` only if the key's mod revision is still
  // `expected_mod_revision` (0: only if the key does not exist). Returns
  // whether it wrote.
  absl::StatusOr<bool> PutIfModRevision(absl::string_view key,
                                        absl::string_view value,
                                        int64_t expected_mod_revision,
                                        int64_t lease = 0);

  // Writes `value` only if the key does not exist; returns whether it wrote.
  absl::StatusOr<bool> CreateIfAbsent(absl::string_view key,
                                      absl::string_view value,
                                      int64_t lease = 0);

  // Grants a lease that expires unless kept alive within `ttl_seconds`
  // (etcd may round a short TTL up to its minimum). Returns its id.
  absl::StatusOr<int64_t> LeaseGrant(int64_t ttl_seconds);

  // Revokes the lease; the keys attached to it are deleted at once. NotFound
  // when it has already expired or been revoked.
  absl::Status LeaseRevoke(int64_t lease_id);

  // Returns the seconds the lease has left, or NotFound when it has expired
  // or been revoked.
  absl::StatusOr<int64_t> LeaseTimeToLive(int64_t lease_id);

 private:
  EtcdClient(std::string endpoints, EtcdClientOptions options,
             std::shared_ptr<grpc::Channel> channel);

  // Sets the per-call deadline on `context`.
  void SetDeadline(grpc::ClientContext* context) const;

  const std::string endpoints_;
  const EtcdClientOptions options_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<etcdserverpb::KV::Stub> kv_;
  const std::unique_ptr<etcdserverpb::Lease::Stub> lease_;
};

// Returns the smallest key greater than every key that starts with
// `prefix`, as etcd's range_end expects; "\0" (every key) for an empty
// prefix or one made only of 0xff bytes.
std::string EtcdPrefixEnd(absl::string_view prefix);

}  // namespace juke
