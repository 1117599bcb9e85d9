#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/time/time.h"

// The one place where absl::Status and grpc::Status meet. Both use the same
// canonical code numbers, so codes pass through unchanged.
namespace juke {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Gives the call `timeout` from now.
void SetDeadlineAfter(grpc::ClientContext* context, absl::Duration timeout);

}  // namespace juke
