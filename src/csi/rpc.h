#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

#include "src/common/grpc_status.h"
#include "src/common/logging.h"

// What every CSI service shares: its logger and the statuses it answers
// with.
namespace juke::csi {

inline Logger Log() {
  static const Logger log = GetLogger("csi");
  return log;
}

// INVALID_ARGUMENT with `message`: a request that fails its checks.
inline grpc::Status Invalid(absl::string_view message) {
  return {grpc::StatusCode::INVALID_ARGUMENT, std::string(message)};
}

// `s` as the RPC's answer; both share the canonical codes.
inline grpc::Status Fail(const absl::Status& s) { return ToGrpcStatus(s); }

}  // namespace juke::csi
