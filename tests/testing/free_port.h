#pragma once

#include "absl/status/statusor.h"

// Free loopback TCP ports for test servers.
namespace juke::testing {

// Returns a TCP port on 127.0.0.1 that was free a moment ago: the kernel's
// pick for a bind to port 0. Another process may take it before the caller
// binds it, so a server that fails to bind should be retried on a new port.
absl::StatusOr<int> PickFreePort();

}  // namespace juke::testing
