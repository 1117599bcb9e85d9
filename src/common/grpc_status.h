#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

// The one place where absl::Status and grpc::Status meet. Both use the same
// canonical code numbers, so codes pass through unchanged.
namespace juke {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace juke
