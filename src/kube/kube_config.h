#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// Where a Kubernetes API server is and how to authenticate to it, from a
// kubeconfig file or from the service account of the pod the process runs
// in:
//
//   JUKE_ASSIGN_OR_RETURN(KubeConfig config, FindKubeConfig(flag_path));
//   JUKE_ASSIGN_OR_RETURN(auto client, KubeClient::Create(config));
//
// Plain value: thread-compatible.

namespace juke {

struct KubeConfig {
  std::string server;  // https://host:port, no trailing slash.
  // Bearer token, or a file to read it from before each request (service
  // account tokens are rotated in place).
  std::string token;
  std::string token_file;
  // PEM of the CA that signed the server's certificate; empty: the system's
  // CAs.
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Client certificate and key, PEM; both or neither.
  std::string client_cert_pem;
  std::string client_key_pem;
  // The namespace of the context or of the pod; "default" when none says.
  std::string default_namespace = "default";
};

// Parses kubeconfig text. `context` empty takes current-context. Relative
// file paths in it are taken from `base_dir`. InvalidArgument, naming what
// is wrong, for text that is not a kubeconfig, an unknown context, cluster
// or user, or a cluster without a server. Exec plugins and auth providers
// are refused as Unimplemented.
absl::StatusOr<KubeConfig> ParseKubeconfig(absl::string_view text,
                                           absl::string_view base_dir,
                                           absl::string_view context);

// Reads and parses the kubeconfig file at `path`.
absl::StatusOr<KubeConfig> LoadKubeconfig(absl::string_view path,
                                          absl::string_view context);

// The pod's service account: KUBERNETES_SERVICE_HOST and _PORT, and the
// token, CA and namespace under /var/run/secrets/kubernetes.io/
// serviceaccount (`secrets_dir`). NotFound when not in a pod.
absl::StatusOr<KubeConfig> InClusterConfig(
    absl::string_view secrets_dir =
        "/var/run/secrets/kubernetes.io/serviceaccount");

// The first that exists of: the kubeconfig at `path` (when not empty), the
// file $KUBECONFIG names, the pod's service account, ~/.kube/config.
// NotFound, listing what was tried, when none does.
absl::StatusOr<KubeConfig> FindKubeConfig(absl::string_view path,
                                          absl::string_view context = "");

}  // namespace juke
