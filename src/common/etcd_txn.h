#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

// A description of one etcd transaction: a list of compares that must all
// hold, the operations to apply when they do ("then") and the operations to
// apply when they do not ("else"). The whole transaction is applied
// atomically by etcd at one revision. Build it, then hand it to
// EtcdClient::Txn():
//
//   EtcdTxn txn;
//   txn.IfModRevision(key, EtcdCompareOp::kEqual, rev)
//       .ThenPut(key, new_value)
//       .ElseGet(key);
//   JUKE_ASSIGN_OR_RETURN(EtcdTxnResult r, client.Txn(txn));
//
// A plain value type: not thread-safe, cheap to copy.
namespace juke {

enum class EtcdCompareOp { kEqual, kNotEqual, kLess, kGreater };

// One compare: the `target` field of `key` against a number or a value. A
// key that does not exist has create, mod revision and version 0.
struct EtcdCompare {
  enum class Target { kModRevision, kCreateRevision, kVersion, kValue, kLease };

  std::string key;
  Target target = Target::kModRevision;
  EtcdCompareOp op = EtcdCompareOp::kEqual;
  int64_t number = 0;  // For every target but kValue.
  std::string value;   // For kValue.
};

// One operation of a transaction branch.
struct EtcdOp {
  enum class Kind { kPut, kDelete, kDeletePrefix, kGet, kGetPrefix };

  Kind kind = Kind::kGet;
  std::string key;    // The key, or the prefix for the *Prefix kinds.
  std::string value;  // For kPut.
  int64_t lease = 0;  // For kPut; 0 means no lease.
};

class EtcdTxn {
 public:
  EtcdTxn& If(EtcdCompare compare);
  EtcdTxn& IfModRevision(absl::string_view key, EtcdCompareOp op,
                         int64_t revision);
  EtcdTxn& IfCreateRevision(absl::string_view key, EtcdCompareOp op,
                            int64_t revision);
  EtcdTxn& IfVersion(absl::string_view key, EtcdCompareOp op, int64_t version);
  EtcdTxn& IfValue(absl::string_view key, EtcdCompareOp op,
                   absl::string_view value);
  EtcdTxn& IfLease(absl::string_view key, EtcdCompareOp op, int64_t lease);
  // The key does not exist (its create revision is 0).
  EtcdTxn& IfAbsent(absl::string_view key);
  // The key exists.
  EtcdTxn& IfPresent(absl::string_view key);

  EtcdTxn& ThenPut(absl::string_view key, absl::string_view value,
                   int64_t lease = 0);
  EtcdTxn& ThenDelete(absl::string_view key);
  EtcdTxn& ThenDeletePrefix(absl::string_view prefix);
  EtcdTxn& ThenGet(absl::string_view key);
  EtcdTxn& ThenGetPrefix(absl::string_view prefix);

  EtcdTxn& ElsePut(absl::string_view key, absl::string_view value,
                   int64_t lease = 0);
  EtcdTxn& ElseDelete(absl::string_view key);
  EtcdTxn& ElseDeletePrefix(absl::string_view prefix);
  EtcdTxn& ElseGet(absl::string_view key);
  EtcdTxn& ElseGetPrefix(absl::string_view prefix);

  const std::vector<EtcdCompare>& compares() const { return compares_; }
  const std::vector<EtcdOp>& then_ops() const { return then_ops_; }
  const std::vector<EtcdOp>& else_ops() const { return else_ops_; }

 private:
  EtcdTxn& Compare(absl::string_view key, EtcdCompare::Target target,
                   EtcdCompareOp op, int64_t number);

  std::vector<EtcdCompare> compares_;
  std::vector<EtcdOp> then_ops_;
  std::vector<EtcdOp> else_ops_;
};

}  // namespace juke
