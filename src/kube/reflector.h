#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

#include "src/kube/kube_client.h"

// Keeps a local copy of one collection of Kubernetes objects: lists it,
// then watches from the list's resourceVersion, and applies each event.
// When the watch ends it resumes from the last version seen; when the
// server says that version is too old (410), or after repeated errors, it
// lists again. Bookmarks move the version on without changes.
//
//   Reflector nodes(client, "/api/v1/nodes", [&] { wake.Notify(); });
//   std::thread t([&] { nodes.Run(&stop); });
//   ...
//   for (const auto& [name, node] : nodes.Objects()) ...
//
// Thread-safe; Run() once, from one thread.

namespace juke {

class Reflector {
 public:
  using Json = nlohmann::json;

  struct Options {
    // How long each watch request lasts before the server ends it.
    absl::Duration watch_timeout = absl::Minutes(5);
    // Pause after a failed list or watch, doubled up to max_backoff.
    absl::Duration backoff = absl::Milliseconds(200);
    absl::Duration max_backoff = absl::Seconds(5);
  };

  // `on_change` is called (from Run()'s thread) after each list and each
  // event that changed the copy. `client` must outlive the reflector.
  Reflector(KubeClient* client, std::string path,
            std::function<void()> on_change);
  Reflector(KubeClient* client, std::string path,
            std::function<void()> on_change, Options options);

  // Lists and watches until `*stop` is set.
  void Run(const std::atomic<bool>* stop);

  // The objects by "namespace/name" (just "name" for cluster objects).
  std::map<std::string, Json> Objects() const;
  // Whether a list has succeeded.
  bool synced() const;
  // How many lists succeeded: 1 + the relists after expiry or errors.
  int64_t lists() const;
  std::string resource_version() const;

 private:
  absl::Status List();
  absl::Status Apply(const Json& event);

  KubeClient* const client_;
  const std::string path_;
  const std::function<void()> on_change_;
  const Options options_;

  mutable absl::Mutex mu_;
  std::map<std::string, Json> objects_ ABSL_GUARDED_BY(mu_);
  std::string version_ ABSL_GUARDED_BY(mu_);
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  int64_t lists_ ABSL_GUARDED_BY(mu_) = 0;
};

// "namespace/name", or "name" for a cluster-scoped object.
std::string ObjectKey(const nlohmann::json& object);

}  // namespace juke
