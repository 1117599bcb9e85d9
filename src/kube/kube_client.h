#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

#include "src/kube/kube_config.h"

// A small client of the Kubernetes API over HTTPS (libcurl), with JSON
// bodies (nlohmann-json). Paths are the API's own:
//
//   JUKE_ASSIGN_OR_RETURN(auto client, KubeClient::Create(config));
//   JUKE_ASSIGN_OR_RETURN(nlohmann::json nodes, client->Get("/api/v1/nodes"));
//
// The API's answers become absl codes:
//
//   400, 422  InvalidArgument        404  NotFound
//   401       Unauthenticated        409  AlreadyExists (create of an
//   403       PermissionDenied            existing object) or Aborted (a
//   410       OutOfRange (resource        stale resourceVersion: read
//             version too old: list       again and retry)
//             again)                 429, 5xx and transport errors:
//                                         Unavailable
//
// with the server's message in the status text.
//
// Thread-safe: each request uses its own connection handle.

namespace juke {

class KubeClient {
 public:
  using Json = nlohmann::json;

  // InvalidArgument for a config without a server or with a partial
  // client certificate.
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(
      KubeConfig config, absl::Duration request_timeout = absl::Seconds(30));

  const KubeConfig& config() const { return config_; }

  absl::StatusOr<Json> Get(absl::string_view path);
  // POST: creates an object in the collection at `path`.
  absl::StatusOr<Json> Create(absl::string_view path, const Json& object);
  // PUT: replaces the object; a resourceVersion in its metadata makes the
  // update conditional (Aborted when someone else changed it since).
  absl::StatusOr<Json> Replace(absl::string_view path, const Json& object);
  // PATCH with a JSON merge patch.
  absl::StatusOr<Json> MergePatch(absl::string_view path, const Json& patch);
  // NotFound when the object does not exist.
  absl::Status Delete(absl::string_view path);

  // Watches `path` (a collection) from `resource_version`, calling
  // `on_event` with each event object ({"type": ..., "object": ...}) as it
  // arrives. Returns OK when the server ends the watch (after `timeout`,
  // which the server is asked for), Cancelled once `*stop` is set,
  // OutOfRange when the version is too old (the caller lists again), the
  // first error `on_event` returns, or the request's error.
  absl::Status Watch(absl::string_view path, absl::string_view resource_version,
                     absl::Duration timeout,
                     const std::function<absl::Status(const Json&)>& on_event,
                     const std::atomic<bool>* stop);

 private:
  KubeClient(KubeConfig config, absl::Duration request_timeout)
      : config_(std::move(config)), request_timeout_(request_timeout) {}

  absl::StatusOr<Json> Request(const char* method, absl::string_view path,
                               const Json* body, const char* content_type);

  const KubeConfig config_;
  const absl::Duration request_timeout_;
};

// The absl status of an API answer: `http_code` with its body, which holds
// a Status object for errors. OK for 2xx.
absl::Status StatusFromHttp(long http_code, absl::string_view body);

// metadata.name, metadata.resourceVersion and friends; empty when absent.
std::string MetadataString(const nlohmann::json& object, const char* field);

}  // namespace juke
