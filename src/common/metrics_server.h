#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace juke {

// Serves a Prometheus registry over HTTP at /metrics. The registry belongs
// to the caller and must outlive the server. Thread-safe after Start.
class MetricsServer {
 public:
  // Binds `address` ("127.0.0.1:9090", or port 0 for any free port) and
  // starts serving `registry`. InvalidArgument for a malformed address,
  // Unavailable when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address,
      const std::shared_ptr<prometheus::Registry>& registry);

  // The port actually bound.
  int port() const { return port_; }

 private:
  MetricsServer(std::unique_ptr<prometheus::Exposer> exposer, int port)
      : exposer_(std::move(exposer)), port_(port) {}

  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_;
};

}  // namespace juke
