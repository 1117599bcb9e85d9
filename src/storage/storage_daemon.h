#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "src/storage/daemon_config.h"

namespace juke::storage {

// The storage daemon as a whole: the host's disks, the chunk service, its
// health service and metrics, and the host's registration in etcd. Run()
// serves until Shutdown() (the main thread calls it on SIGTERM), then stops
// in order: deregister (the pool sees the host leave at once), drain calls,
// close the disks.
class StorageDaemon {
 public:
  // Opens the disks and starts serving. REQUIRES: ValidateConfig(config).
  static absl::StatusOr<std::unique_ptr<StorageDaemon>> Start(
      const DaemonConfig& config);
  ~StorageDaemon();

  // The address the chunk service is reachable at.
  const std::string& address() const;

  // Stops serving; safe to call once from any thread.
  void Shutdown();

 private:
  struct State;
  explicit StorageDaemon(std::unique_ptr<State> state);

  std::unique_ptr<State> state_;
};

}  // namespace juke::storage
