#include "src/kube/kube_config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "src/common/status.h"

#include "yaml-cpp/yaml.h"

namespace juke {
namespace {

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Resolve(absl::string_view base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return absl::StrCat(base_dir, "/", path);
}

// Finds the entry named `name` in the list `key` ("clusters", ...) and
// returns its `field` ("cluster", ...) map.
absl::StatusOr<YAML::Node> Named(const YAML::Node& root, const char* key,
                                 const char* field, const std::string& name) {
  const YAML::Node list = root[key];
  if (list && list.IsSequence()) {
    for (const YAML::Node& entry : list) {
      if (entry["name"] && entry["name"].as<std::string>() == name) {
        YAML::Node value = entry[field];
        if (!value || !value.IsMap()) return YAML::Node(YAML::NodeType::Map);
        return value;
      }
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("kubeconfig: no ", field, " named '", name, "' in ", key));
}

std::string Text(const YAML::Node& map, const char* key) {
  const YAML::Node v = map[key];
  return v && v.IsScalar() ? v.as<std::string>() : std::string();
}

// Inline base64 data (`data_key`) or the file `file_key` names.
absl::StatusOr<std::string> DataOrFile(const YAML::Node& map,
                                       const char* data_key,
                                       const char* file_key,
                                       absl::string_view base_dir) {
  std::string data = Text(map, data_key);
  if (!data.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(data, &decoded)) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig: ", data_key, " is not base64"));
    }
    return decoded;
  }
  std::string file = Text(map, file_key);
  if (file.empty()) return std::string();
  return ReadWholeFile(Resolve(base_dir, file));
}

absl::StatusOr<KubeConfig> ParseYaml(const YAML::Node& root,
                                     absl::string_view base_dir,
                                     absl::string_view context_arg) {
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("kubeconfig is not a YAML map");
  }
  std::string context_name(context_arg);
  if (context_name.empty()) context_name = Text(root, "current-context");
  if (context_name.empty()) {
    return absl::InvalidArgumentError(
        "kubeconfig has no current-context; name a context");
  }
  JUKE_ASSIGN_OR_RETURN(YAML::Node context,
                        Named(root, "contexts", "context", context_name));
  KubeConfig config;
  if (std::string ns = Text(context, "namespace"); !ns.empty()) {
    config.default_namespace = ns;
  }
  JUKE_ASSIGN_OR_RETURN(YAML::Node cluster, Named(root, "clusters", "cluster",
                                                  Text(context, "cluster")));
  config.server = std::string(absl::StripSuffix(Text(cluster, "server"), "/"));
  if (config.server.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kubeconfig: cluster of context '", context_name, "' has no server"));
  }
  config.insecure_skip_tls_verify =
      Text(cluster, "insecure-skip-tls-verify") == "true";
  JUKE_ASSIGN_OR_RETURN(config.ca_pem,
                        DataOrFile(cluster, "certificate-authority-data",
                                   "certificate-authority", base_dir));

  std::string user_name = Text(context, "user");
  if (user_name.empty()) return config;  // Anonymous.
  JUKE_ASSIGN_OR_RETURN(YAML::Node user,
                        Named(root, "users", "user", user_name));
  if (user["exec"] || user["auth-provider"]) {
    return absl::UnimplementedError(absl::StrCat(
        "kubeconfig: user '", user_name,
        "' authenticates through an exec plugin or auth provider, which "
        "is not supported; use a token or a client certificate"));
  }
  config.token = Text(user, "token");
  if (std::string f = Text(user, "tokenFile"); !f.empty()) {
    config.token_file = Resolve(base_dir, f);
  }
  JUKE_ASSIGN_OR_RETURN(config.client_cert_pem,
                        DataOrFile(user, "client-certificate-data",
                                   "client-certificate", base_dir));
  JUKE_ASSIGN_OR_RETURN(
      config.client_key_pem,
      DataOrFile(user, "client-key-data", "client-key", base_dir));
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig: user '", user_name,
                     "' has a client certificate without a key, or a key "
                     "without a certificate"));
  }
  return config;
}

}  // namespace

absl::StatusOr<KubeConfig> ParseKubeconfig(absl::string_view text,
                                           absl::string_view base_dir,
                                           absl::string_view context) {
  try {
    return ParseYaml(YAML::Load(std::string(text)), base_dir, context);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig is not valid YAML: ", e.what()));
  }
}

absl::StatusOr<KubeConfig> LoadKubeconfig(absl::string_view path,
                                          absl::string_view context) {
  std::string p(path);
  JUKE_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(p));
  size_t slash = p.rfind('/');
  absl::string_view dir =
      slash == std::string::npos ? "." : absl::string_view(p).substr(0, slash);
  absl::StatusOr<KubeConfig> config = ParseKubeconfig(text, dir, context);
  if (!config.ok()) return Annotate(config.status(), p);
  return config;
}

absl::StatusOr<KubeConfig> InClusterConfig(absl::string_view secrets_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0') {
    return absl::NotFoundError("not running in a Kubernetes pod");
  }
  KubeConfig config;
  std::string h(host);
  // An IPv6 address needs brackets in a URL.
  if (absl::StrContains(h, ':')) h = absl::StrCat("[", h, "]");
  config.server = absl::StrCat("https://", h, ":", port);
  config.token_file = absl::StrCat(secrets_dir, "/token");
  JUKE_ASSIGN_OR_RETURN(config.ca_pem,
                        ReadWholeFile(absl::StrCat(secrets_dir, "/ca.crt")));
  absl::StatusOr<std::string> ns =
      ReadWholeFile(absl::StrCat(secrets_dir, "/namespace"));
  if (ns.ok() && !ns->empty()) {
    config.default_namespace = std::string(absl::StripAsciiWhitespace(*ns));
  }
  return config;
}

absl::StatusOr<KubeConfig> FindKubeConfig(absl::string_view path,
                                          absl::string_view context) {
  if (!path.empty()) return LoadKubeconfig(path, context);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    // Only the first file of a list is read.
    std::string first(
        absl::string_view(env).substr(0, absl::string_view(env).find(':')));
    return LoadKubeconfig(first, context);
  }
  absl::StatusOr<KubeConfig> in_cluster = InClusterConfig();
  if (in_cluster.ok() || !absl::IsNotFound(in_cluster.status())) {
    return in_cluster;
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    std::string file = absl::StrCat(home, "/.kube/config");
    if (Exists(file)) return LoadKubeconfig(file, context);
  }
  return absl::NotFoundError(
      "no Kubernetes configuration: give --kubeconfig, set KUBECONFIG, run "
      "in a pod, or create ~/.kube/config");
}

}  // namespace juke
