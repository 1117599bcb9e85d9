#include "src/common/etcd_txn.h"

#include <utility>

namespace juke {
namespace {

EtcdOp MakeOp(EtcdOp::Kind kind, absl::string_view key,
              absl::string_view value = {}, int64_t lease = 0) {
  EtcdOp op;
  op.kind = kind;
  op.key = std::string(key);
  op.value = std::string(value);
  op.lease = lease;
  return op;
}

}  // namespace

EtcdTxn& EtcdTxn::If(EtcdCompare compare) {
  compares_.push_back(std::move(compare));
  return *this;
}

EtcdTxn& EtcdTxn::Compare(absl::string_view key, EtcdCompare::Target target,
                          EtcdCompareOp op, int64_t number) {
  EtcdCompare c;
  c.key = std::string(key);
  c.target = target;
  c.op = op;
  c.number = number;
  return If(std::move(c));
}

EtcdTxn& EtcdTxn::IfModRevision(absl::string_view key, EtcdCompareOp op,
                                int64_t revision) {
  return Compare(key, EtcdCompare::Target::kModRevision, op, revision);
}

EtcdTxn& EtcdTxn::IfCreateRevision(absl::string_view key, EtcdCompareOp op,
                                   int64_t revision) {
  return Compare(key, EtcdCompare::Target::kCreateRevision, op, revision);
}

EtcdTxn& EtcdTxn::IfVersion(absl::string_view key, EtcdCompareOp op,
                            int64_t version) {
  return Compare(key, EtcdCompare::Target::kVersion, op, version);
}

EtcdTxn& EtcdTxn::IfLease(absl::string_view key, EtcdCompareOp op,
                          int64_t lease) {
  return Compare(key, EtcdCompare::Target::kLease, op, lease);
}

EtcdTxn& EtcdTxn::IfValue(absl::string_view key, EtcdCompareOp op,
                          absl::string_view value) {
  EtcdCompare c;
  c.key = std::string(key);
  c.target = EtcdCompare::Target::kValue;
  c.op = op;
  c.value = std::string(value);
  return If(std::move(c));
}

EtcdTxn& EtcdTxn::IfAbsent(absl::string_view key) {
  return IfCreateRevision(key, EtcdCompareOp::kEqual, 0);
}

EtcdTxn& EtcdTxn::IfPresent(absl::string_view key) {
  return IfCreateRevision(key, EtcdCompareOp::kGreater, 0);
}

EtcdTxn& EtcdTxn::ThenPut(absl::string_view key, absl::string_view value,
                          int64_t lease) {
  then_ops_.push_back(MakeOp(EtcdOp::Kind::kPut, key, value, lease));
  return *this;
}

EtcdTxn& EtcdTxn::ThenDelete(absl::string_view key) {
  then_ops_.push_back(MakeOp(EtcdOp::Kind::kDelete, key));
  return *this;
}

EtcdTxn& EtcdTxn::ThenDeletePrefix(absl::string_view prefix) {
  then_ops_.push_back(MakeOp(EtcdOp::Kind::kDeletePrefix, prefix));
  return *this;
}

EtcdTxn& EtcdTxn::ThenGet(absl::string_view key) {
  then_ops_.push_back(MakeOp(EtcdOp::Kind::kGet, key));
  return *this;
}

EtcdTxn& EtcdTxn::ThenGetPrefix(absl::string_view prefix) {
  then_ops_.push_back(MakeOp(EtcdOp::Kind::kGetPrefix, prefix));
  return *this;
}

EtcdTxn& EtcdTxn::ElsePut(absl::string_view key, absl::string_view value,
                          int64_t lease) {
  else_ops_.push_back(MakeOp(EtcdOp::Kind::kPut, key, value, lease));
  return *this;
}

EtcdTxn& EtcdTxn::ElseDelete(absl::string_view key) {
  else_ops_.push_back(MakeOp(EtcdOp::Kind::kDelete, key));
  return *this;
}

EtcdTxn& EtcdTxn::ElseDeletePrefix(absl::string_view prefix) {
  else_ops_.push_back(MakeOp(EtcdOp::Kind::kDeletePrefix, prefix));
  return *this;
}

EtcdTxn& EtcdTxn::ElseGet(absl::string_view key) {
  else_ops_.push_back(MakeOp(EtcdOp::Kind::kGet, key));
  return *this;
}

EtcdTxn& EtcdTxn::ElseGetPrefix(absl::string_view prefix) {
  else_ops_.push_back(MakeOp(EtcdOp::Kind::kGetPrefix, prefix));
  return *this;
}

}  // namespace juke
