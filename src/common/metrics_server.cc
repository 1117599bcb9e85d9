#include "src/common/metrics_server.h"

#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace juke {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address,
    const std::shared_ptr<prometheus::Registry>& registry) {
  size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address,
                     "' is not HOST:PORT (e.g. 0.0.0.0:9090)"));
  }

  // prometheus-cpp reports bind failures by throwing; this is the one place
  // where that turns into a Status.
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("serve metrics on ", address, ": ", e.what()));
  }
  exposer->RegisterCollectable(registry);
  std::vector<int> ports = exposer->GetListeningPorts();
  int bound = ports.empty() ? port : ports.front();
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(exposer), bound));
}

}  // namespace juke
