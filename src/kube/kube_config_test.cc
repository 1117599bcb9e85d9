#include "src/kube/kube_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace juke {
namespace {

constexpr char kTwoContexts[] = R"(apiVersion: v1
kind: Config
clusters:
  - name: a
    cluster: {server: "https://10.0.0.1:6443/", insecure-skip-tls-verify: true}
  - name: b
    cluster:
      server: https://b.example:443
      certificate-authority-data: Q0EtUEVN
users:
  - name: admin
    user: {token: secret-token}
  - name: cert
    user:
      client-certificate-data: Q0VSVA==
      client-key-data: S0VZ
contexts:
  - name: ctx-a
    context: {cluster: a, user: admin, namespace: juke-system}
  - name: ctx-b
    context: {cluster: b, user: cert}
current-context: ctx-a
)";

TEST(KubeConfigTest, CurrentContextWithToken) {
  auto c = ParseKubeconfig(kTwoContexts, "/etc", "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");  // Trailing slash dropped.
  EXPECT_TRUE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->token, "secret-token");
  EXPECT_EQ(c->default_namespace, "juke-system");
  EXPECT_EQ(c->ca_pem, "");
}

TEST(KubeConfigTest, NamedContextWithCertificates) {
  auto c = ParseKubeconfig(kTwoContexts, "/etc", "ctx-b");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://b.example:443");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_EQ(c->ca_pem, "CA-PEM");
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->token, "");
  EXPECT_EQ(c->default_namespace, "default");
}

TEST(KubeConfigTest, FilesRelativeToTheKubeconfig) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              absl::StrCat("kube_config_test_", getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "ca.crt") << "FILE-CA";
  std::ofstream(dir / "kubeconfig") << R"(
clusters:
- name: c
  cluster: {server: "https://x:1", certificate-authority: ca.crt}
users: [{name: u, user: {tokenFile: /run/token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
)";
  auto c = LoadKubeconfig((dir / "kubeconfig").string(), "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, "FILE-CA");
  EXPECT_EQ(c->token_file, "/run/token");
  std::filesystem::remove_all(dir);
}

TEST(KubeConfigTest, RefusesWhatItCannotUse) {
  EXPECT_TRUE(
      absl::IsInvalidArgument(ParseKubeconfig("just text", "", "").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseKubeconfig("a: [unclosed", "", "").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseKubeconfig(kTwoContexts, "", "no-such-context").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseKubeconfig("contexts: []\n", "", "").status()));  // No current.
  EXPECT_TRUE(absl::IsInvalidArgument(ParseKubeconfig(R"(
clusters: [{name: c, cluster: {}}]
contexts: [{name: x, context: {cluster: c}}]
current-context: x
)",
                                                      "", "")
                                          .status()));  // No server.
  EXPECT_TRUE(absl::IsUnimplemented(ParseKubeconfig(R"(
clusters: [{name: c, cluster: {server: "https://x:1"}}]
users: [{name: u, user: {exec: {command: aws}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
)",
                                                    "", "")
                                        .status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(ParseKubeconfig(R"(
clusters: [{name: c, cluster: {server: "https://x:1"}}]
users: [{name: u, user: {client-certificate-data: Q0VSVA==}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
)",
                                              "", "")
                                  .status()));  // Certificate without key.
  EXPECT_TRUE(absl::IsNotFound(LoadKubeconfig("/nonexistent/kc", "").status()));
}

TEST(KubeConfigTest, InClusterNeedsThePodsEnvironment) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_TRUE(absl::IsNotFound(InClusterConfig("/nonexistent").status()));

  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              absl::StrCat("kube_sa_test_", getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "ca.crt") << "SA-CA";
  std::ofstream(dir / "namespace") << "juke-system\n";
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = InClusterConfig(dir.string());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->ca_pem, "SA-CA");
  EXPECT_EQ(c->token_file, (dir / "token").string());
  EXPECT_EQ(c->default_namespace, "juke-system");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace juke
