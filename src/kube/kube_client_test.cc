#include "src/kube/kube_client.h"

#include "gtest/gtest.h"

#include "src/kube/leader_election.h"

namespace juke {
namespace {

TEST(StatusFromHttpTest, MapsCodesAndKeepsTheMessage) {
  EXPECT_TRUE(StatusFromHttp(200, "").ok());
  EXPECT_TRUE(StatusFromHttp(201, "{}").ok());
  auto s = StatusFromHttp(
      404, R"({"kind":"Status","message":"nodes \"x\" not found",)"
           R"("reason":"NotFound","code":404})");
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_NE(s.message().find("nodes \"x\" not found"), std::string::npos);
  EXPECT_TRUE(absl::IsAlreadyExists(
      StatusFromHttp(409, R"({"reason":"AlreadyExists"})")));
  EXPECT_TRUE(absl::IsAborted(StatusFromHttp(409, R"({"reason":"Conflict"})")));
  EXPECT_TRUE(
      absl::IsOutOfRange(StatusFromHttp(410, R"({"reason":"Expired"})")));
  EXPECT_TRUE(absl::IsInvalidArgument(StatusFromHttp(422, "{}")));
  EXPECT_TRUE(absl::IsInvalidArgument(StatusFromHttp(400, "not json")));
  EXPECT_TRUE(absl::IsUnauthenticated(StatusFromHttp(401, "")));
  EXPECT_TRUE(absl::IsPermissionDenied(StatusFromHttp(403, "")));
  EXPECT_TRUE(absl::IsUnavailable(StatusFromHttp(503, "")));
  EXPECT_TRUE(absl::IsUnavailable(StatusFromHttp(429, "")));
}

TEST(KubeClientTest, RefusesAnIncompleteConfig) {
  EXPECT_TRUE(absl::IsInvalidArgument(KubeClient::Create({}).status()));
  KubeConfig c;
  c.server = "https://x:1";
  c.client_cert_pem = "CERT";
  EXPECT_TRUE(absl::IsInvalidArgument(KubeClient::Create(c).status()));
}

TEST(KubeClientTest, UnreachableServerIsUnavailable) {
  KubeConfig c;
  c.server = "https://127.0.0.1:1";  // Nothing listens on port 1.
  auto client = KubeClient::Create(c);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE(absl::IsUnavailable((*client)->Get("/api/v1/nodes").status()));
}

TEST(KubeTimeTest, Formats) {
  absl::Time t = absl::FromUnixMicros(1764806400123456);
  EXPECT_EQ(KubeMicroTime(t), "2025-12-04T00:00:00.123456Z");
  EXPECT_EQ(KubeTime(t), "2025-12-04T00:00:00Z");
}

TEST(KubeTimeTest, ParsesWhatItFormats) {
  absl::Time t = absl::FromUnixMicros(1764806400123456);
  EXPECT_EQ(*ParseKubeTime(KubeMicroTime(t)), t);
  EXPECT_EQ(*ParseKubeTime(KubeTime(t)), absl::FromUnixSeconds(1764806400));
  EXPECT_EQ(*ParseKubeTime("2025-12-04T01:00:00+01:00"),
            absl::FromUnixSeconds(1764806400));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseKubeTime("").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(ParseKubeTime("yesterday").status()));
}

TEST(MetadataStringTest, ReadsOrIsEmpty) {
  nlohmann::json o = {{"metadata", {{"name", "n1"}, {"generation", 3}}}};
  EXPECT_EQ(MetadataString(o, "name"), "n1");
  EXPECT_EQ(MetadataString(o, "generation"), "");
  EXPECT_EQ(MetadataString(nlohmann::json::object(), "name"), "");
}

}  // namespace
}  // namespace juke
