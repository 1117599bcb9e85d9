#include "src/common/etcd_client.h"

#include <arpa/inet.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <chrono>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"

namespace juke {
namespace {

// Range answers can be large (a listing of every volume); etcd itself caps
// each request, not each answer.
constexpr int kMaxReceiveBytes = 64 << 20;

enum class Family { kName, kIpv4, kIpv6 };

// Classifies the host part of "host:port" / "[v6]:port".
absl::StatusOr<Family> EndpointFamily(absl::string_view endpoint) {
  if (absl::StartsWith(endpoint, "[")) {
    size_t close = endpoint.find(']');
    if (close == absl::string_view::npos || close + 1 >= endpoint.size() ||
        endpoint[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("bad etcd endpoint \"", endpoint, "\""));
    }
    std::string host(endpoint.substr(1, close - 1));
    in6_addr addr;
    if (inet_pton(AF_INET6, host.c_str(), &addr) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad IPv6 address in etcd endpoint \"", endpoint, "\""));
    }
    return Family::kIpv6;
  }
  size_t colon = endpoint.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      colon + 1 == endpoint.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd endpoint \"", endpoint, "\" is not host:port"));
  }
  std::string host(endpoint.substr(0, colon));
  in_addr addr;
  if (inet_pton(AF_INET, host.c_str(), &addr) == 1) return Family::kIpv4;
  return Family::kName;
}

// Turns the user's endpoint list into one gRPC target.
absl::StatusOr<std::string> ChannelTarget(absl::string_view endpoints) {
  std::vector<std::string> list;
  for (absl::string_view e :
       absl::StrSplit(endpoints, ',', absl::SkipWhitespace())) {
    e = absl::StripAsciiWhitespace(e);
    if (absl::StartsWith(e, "https://")) {
      return absl::UnimplementedError(
          absl::StrCat("etcd endpoint \"", e, "\": TLS is not supported yet"));
    }
    absl::ConsumePrefix(&e, "http://");
    absl::ConsumeSuffix(&e, "/");
    list.emplace_back(e);
  }
  if (list.empty()) {
    return absl::InvalidArgumentError("no etcd endpoint given");
  }

  if (list.size() == 1) {
    JUKE_ASSIGN_OR_RETURN(Family family, EndpointFamily(list[0]));
    if (family == Family::kName) return absl::StrCat("dns:///", list[0]);
    return list[0];
  }

  // gRPC takes a static list of addresses only for IP literals of one family
  // (ipv4:a,b,c); a list of names would need a resolver of our own.
  std::vector<Family> families;
  for (const std::string& e : list) {
    JUKE_ASSIGN_OR_RETURN(Family family, EndpointFamily(e));
    if (family == Family::kName) {
      return absl::InvalidArgumentError(absl::StrCat(
          "several etcd endpoints must be IP addresses (\"", e,
          "\" is a name); give one DNS name that resolves to every member "
          "instead"));
    }
    families.push_back(family);
  }
  for (Family f : families) {
    if (f != families[0]) {
      return absl::InvalidArgumentError(
          "etcd endpoints mix IPv4 and IPv6 addresses");
    }
  }
  return absl::StrCat(families[0] == Family::kIpv4 ? "ipv4:" : "ipv6:",
                      absl::StrJoin(list, ","));
}

etcdserverpb::Compare::CompareResult ToProto(EtcdCompareOp op) {
  switch (op) {
    case EtcdCompareOp::kEqual:
      return etcdserverpb::Compare::EQUAL;
    case EtcdCompareOp::kNotEqual:
      return etcdserverpb::Compare::NOT_EQUAL;
    case EtcdCompareOp::kLess:
      return etcdserverpb::Compare::LESS;
    case EtcdCompareOp::kGreater:
      return etcdserverpb::Compare::GREATER;
  }
  return etcdserverpb::Compare::EQUAL;
}

void ToProto(const EtcdCompare& in, etcdserverpb::Compare* out) {
  out->set_key(in.key);
  out->set_result(ToProto(in.op));
  switch (in.target) {
    case EtcdCompare::Target::kModRevision:
      out->set_target(etcdserverpb::Compare::MOD);
      out->set_mod_revision(in.number);
      break;
    case EtcdCompare::Target::kCreateRevision:
      out->set_target(etcdserverpb::Compare::CREATE);
      out->set_create_revision(in.number);
      break;
    case EtcdCompare::Target::kVersion:
      out->set_target(etcdserverpb::Compare::VERSION);
      out->set_version(in.number);
      break;
    case EtcdCompare::Target::kValue:
      out->set_target(etcdserverpb::Compare::VALUE);
      out->set_value(in.value);
      break;
    case EtcdCompare::Target::kLease:
      out->set_target(etcdserverpb::Compare::LEASE);
      out->set_lease(in.number);
      break;
  }
}

void ToProto(const EtcdOp& in, etcdserverpb::RequestOp* out) {
  switch (in.kind) {
    case EtcdOp::Kind::kPut: {
      etcdserverpb::PutRequest* put = out->mutable_request_put();
      put->set_key(in.key);
      put->set_value(in.value);
      put->set_lease(in.lease);
      break;
    }
    case EtcdOp::Kind::kDelete:
      out->mutable_request_delete_range()->set_key(in.key);
      break;
    case EtcdOp::Kind::kDeletePrefix: {
      etcdserverpb::DeleteRangeRequest* del =
          out->mutable_request_delete_range();
      del->set_key(in.key);
      del->set_range_end(EtcdPrefixEnd(in.key));
      break;
    }
    case EtcdOp::Kind::kGet:
      out->mutable_request_range()->set_key(in.key);
      break;
    case EtcdOp::Kind::kGetPrefix: {
      etcdserverpb::RangeRequest* range = out->mutable_request_range();
      range->set_key(in.key);
      range->set_range_end(EtcdPrefixEnd(in.key));
      break;
    }
  }
}

EtcdKeyValue FromProto(const mvccpb::KeyValue& kv) {
  EtcdKeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

std::vector<EtcdKeyValue> FromProto(const etcdserverpb::RangeResponse& r) {
  std::vector<EtcdKeyValue> out;
  out.reserve(r.kvs_size());
  for (const mvccpb::KeyValue& kv : r.kvs()) out.push_back(FromProto(kv));
  return out;
}

}  // namespace

std::string EtcdPrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    absl::string_view endpoints, EtcdClientOptions options) {
  JUKE_ASSIGN_OR_RETURN(std::string target, ChannelTarget(endpoints));
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd call timeout must be positive");
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  // Fail over quickly to a restarted member instead of backing off for up to
  // two minutes, gRPC's default.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(std::string(endpoints), options, std::move(channel)));
}

EtcdClient::EtcdClient(std::string endpoints, EtcdClientOptions options,
                       std::shared_ptr<grpc::Channel> channel)
    : endpoints_(std::move(endpoints)),
      options_(options),
      channel_(std::move(channel)),
      kv_(etcdserverpb::KV::NewStub(channel_)),
      lease_(etcdserverpb::Lease::NewStub(channel_)) {}

void EtcdClient::SetDeadline(grpc::ClientContext* context) const {
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(options_.timeout));
}

namespace {

// Converts the outcome of one call, adding what was asked, and logs it.
absl::Status Finish(const grpc::Status& status, absl::string_view what,
                    absl::Time start) {
  static const Logger log = GetLogger("etcd");
  absl::Status s = FromGrpcStatus(status);
  JUKE_LOG_DEBUG(log, "Call done op={} code={} durationMs={}", what,
                 absl::StatusCodeToString(s.code()),
                 absl::ToInt64Milliseconds(absl::Now() - start));
  return Annotate(s, absl::StrCat("etcd ", what));
}

std::string Printable(absl::string_view key) { return absl::CHexEscape(key); }

}  // namespace

absl::StatusOr<std::optional<EtcdKeyValue>> EtcdClient::Get(
    absl::string_view key) {
  etcdserverpb::RangeRequest request;
  request.set_key(std::string(key));
  etcdserverpb::RangeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  JUKE_RETURN_IF_ERROR(Finish(kv_->Range(&context, request, &response),
                              absl::StrCat("get ", Printable(key)), start));
  if (response.kvs_size() == 0) return std::nullopt;
  return FromProto(response.kvs(0));
}

absl::StatusOr<std::vector<EtcdKeyValue>> EtcdClient::GetPrefix(
    absl::string_view prefix, int64_t limit) {
  etcdserverpb::RangeRequest request;
  request.set_key(std::string(prefix));
  request.set_range_end(EtcdPrefixEnd(prefix));
  request.set_limit(limit);
  request.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  request.set_sort_target(etcdserverpb::RangeRequest::KEY);
  etcdserverpb::RangeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  JUKE_RETURN_IF_ERROR(Finish(kv_->Range(&context, request, &response),
                              absl::StrCat("get prefix ", Printable(prefix)),
                              start));
  return FromProto(response);
}

absl::Status EtcdClient::Put(absl::string_view key, absl::string_view value,
                             int64_t lease) {
  etcdserverpb::PutRequest request;
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  request.set_lease(lease);
  etcdserverpb::PutResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  return Finish(kv_->Put(&context, request, &response),
                absl::StrCat("put ", Printable(key)), start);
}

absl::StatusOr<bool> EtcdClient::Delete(absl::string_view key) {
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(std::string(key));
  etcdserverpb::DeleteRangeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  JUKE_RETURN_IF_ERROR(Finish(kv_->DeleteRange(&context, request, &response),
                              absl::StrCat("delete ", Printable(key)), start));
  return response.deleted() > 0;
}

absl::StatusOr<int64_t> EtcdClient::DeletePrefix(absl::string_view prefix) {
  // An empty prefix would wipe the whole store, Juke's or not.
  if (prefix.empty()) {
    return absl::InvalidArgumentError("etcd delete prefix: empty prefix");
  }
  etcdserverpb::DeleteRangeRequest request;
  request.set_key(std::string(prefix));
  request.set_range_end(EtcdPrefixEnd(prefix));
  etcdserverpb::DeleteRangeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  JUKE_RETURN_IF_ERROR(Finish(kv_->DeleteRange(&context, request, &response),
                              absl::StrCat("delete prefix ", Printable(prefix)),
                              start));
  return response.deleted();
}

absl::StatusOr<EtcdTxnResult> EtcdClient::Txn(const EtcdTxn& txn) {
  etcdserverpb::TxnRequest request;
  for (const EtcdCompare& c : txn.compares()) ToProto(c, request.add_compare());
  for (const EtcdOp& op : txn.then_ops()) ToProto(op, request.add_success());
  for (const EtcdOp& op : txn.else_ops()) ToProto(op, request.add_failure());

  // Name the first key in errors; a transaction usually centres on it.
  std::string what = "txn";
  if (!txn.compares().empty()) {
    absl::StrAppend(&what, " ", Printable(txn.compares()[0].key));
  } else if (!txn.then_ops().empty()) {
    absl::StrAppend(&what, " ", Printable(txn.then_ops()[0].key));
  }

  etcdserverpb::TxnResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  JUKE_RETURN_IF_ERROR(
      Finish(kv_->Txn(&context, request, &response), what, start));

  EtcdTxnResult result;
  result.succeeded = response.succeeded();
  result.revision = response.header().revision();
  for (const etcdserverpb::ResponseOp& op : response.responses()) {
    if (op.has_response_range()) {
      result.reads.push_back(FromProto(op.response_range()));
    } else {
      result.reads.emplace_back();
    }
  }
  return result;
}

absl::StatusOr<bool> EtcdClient::PutIfModRevision(absl::string_view key,
                                                  absl::string_view value,
                                                  int64_t expected_mod_revision,
                                                  int64_t lease) {
  EtcdTxn txn;
  txn.IfModRevision(key, EtcdCompareOp::kEqual, expected_mod_revision)
      .ThenPut(key, value, lease);
  JUKE_ASSIGN_OR_RETURN(EtcdTxnResult result, Txn(txn));
  return result.succeeded;
}

absl::StatusOr<bool> EtcdClient::CreateIfAbsent(absl::string_view key,
                                                absl::string_view value,
                                                int64_t lease) {
  EtcdTxn txn;
  txn.IfAbsent(key).ThenPut(key, value, lease);
  JUKE_ASSIGN_OR_RETURN(EtcdTxnResult result, Txn(txn));
  return result.succeeded;
}

absl::StatusOr<int64_t> EtcdClient::LeaseGrant(int64_t ttl_seconds) {
  if (ttl_seconds <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd lease grant: bad ttl ", ttl_seconds));
  }
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  etcdserverpb::LeaseGrantResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  JUKE_RETURN_IF_ERROR(Finish(lease_->LeaseGrant(&context, request, &response),
                              absl::StrCat("lease grant ttl=", ttl_seconds),
                              start));
  // Older servers report some failures in the answer, not the status.
  if (!response.error().empty()) {
    return absl::UnavailableError(
        absl::StrCat("etcd lease grant: ", response.error()));
  }
  return response.id();
}

absl::Status EtcdClient::LeaseRevoke(int64_t lease_id) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseRevokeResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  return Finish(lease_->LeaseRevoke(&context, request, &response),
                absl::StrCat("lease revoke ", lease_id), start);
}

absl::StatusOr<int64_t> EtcdClient::LeaseTimeToLive(int64_t lease_id) {
  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseTimeToLiveResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  absl::Time start = absl::Now();
  JUKE_RETURN_IF_ERROR(
      Finish(lease_->LeaseTimeToLive(&context, request, &response),
             absl::StrCat("lease ttl ", lease_id), start));
  // etcd answers TTL -1 for a lease it does not know.
  if (response.ttl() <= 0) {
    return absl::NotFoundError(
        absl::StrCat("etcd lease ttl ", lease_id, ": lease expired"));
  }
  return response.ttl();
}

}  // namespace juke
