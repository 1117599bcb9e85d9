#include "src/kube/kube_client.h"

#include <curl/curl.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

#include "src/common/status.h"

namespace juke {
namespace {

using Json = nlohmann::json;

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

size_t AppendBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The state of one streaming watch, shared with curl's callbacks.
struct WatchStream {
  const std::function<absl::Status(const Json&)>* on_event;
  const std::atomic<bool>* stop;
  std::string pending;  // Bytes after the last complete line.
  std::string error_body;
  absl::Status status;  // The first error of on_event or of a line.
};

size_t OnWatchBytes(char* data, size_t size, size_t n, void* arg) {
  auto* w = static_cast<WatchStream*>(arg);
  w->pending.append(data, size * n);
  size_t start = 0;
  for (size_t nl; (nl = w->pending.find('\n', start)) != std::string::npos;
       start = nl + 1) {
    absl::string_view line = absl::StripAsciiWhitespace(
        absl::string_view(w->pending).substr(start, nl - start));
    if (line.empty()) continue;
    Json event = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!event.is_object() || !event.contains("type")) {
      // Not an event: an error answer in place of the stream.
      w->error_body.append(line.data(), line.size());
      continue;
    }
    if (event["type"] == "ERROR") {
      const Json& s = event["object"];
      long code = s.is_object() && s.contains("code") && s["code"].is_number()
                      ? s["code"].get<long>()
                      : 500;
      w->status = StatusFromHttp(code, s.dump());
      return 0;  // Ends the transfer.
    }
    w->status = (*w->on_event)(event);
    if (!w->status.ok()) return 0;
  }
  w->pending.erase(0, start);
  return size * n;
}

int OnProgress(void* arg, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* stop = static_cast<const std::atomic<bool>*>(arg);
  return stop != nullptr && stop->load() ? 1 : 0;
}

}  // namespace

absl::Status StatusFromHttp(long code, absl::string_view body) {
  if (code >= 200 && code < 300) return absl::OkStatus();
  std::string message;
  std::string reason;
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    if (j.contains("message") && j["message"].is_string()) {
      message = j["message"].get<std::string>();
    }
    if (j.contains("reason") && j["reason"].is_string()) {
      reason = j["reason"].get<std::string>();
    }
  }
  if (message.empty()) message = std::string(body.substr(0, 512));
  std::string text =
      absl::StrCat("Kubernetes API answered ", code, ": ", message);
  switch (code) {
    case 400:
    case 422:
      return absl::InvalidArgumentError(text);
    case 401:
      return absl::UnauthenticatedError(text);
    case 403:
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
      return reason == "AlreadyExists" ? absl::AlreadyExistsError(text)
                                       : absl::AbortedError(text);
    case 410:
      return absl::OutOfRangeError(text);
    default:
      return absl::UnavailableError(text);
  }
}

std::string MetadataString(const Json& object, const char* field) {
  auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return "";
  auto f = m->find(field);
  if (f == m->end() || !f->is_string()) return "";
  return f->get<std::string>();
}

absl::StatusOr<std::unique_ptr<KubeClient>> KubeClient::Create(
    KubeConfig config, absl::Duration request_timeout) {
  if (config.server.empty()) {
    return absl::InvalidArgumentError("Kubernetes config without a server");
  }
  if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
    return absl::InvalidArgumentError(
        "Kubernetes config with a client certificate but no key, or a key "
        "but no certificate");
  }
  InitCurlOnce();
  return std::unique_ptr<KubeClient>(
      new KubeClient(std::move(config), request_timeout));
}

namespace {

// A handle set up for `url` with the config's TLS and credentials.
absl::StatusOr<CurlHandle> Prepare(const KubeConfig& config,
                                   const std::string& url,
                                   HeaderList* headers) {
  CurlHandle curl(curl_easy_init());
  if (!curl) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  if (config.insecure_skip_tls_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(config.ca_pem.data()), config.ca_pem.size(),
                 CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!config.client_cert_pem.empty()) {
    curl_blob cert{const_cast<char*>(config.client_cert_pem.data()),
                   config.client_cert_pem.size(), CURL_BLOB_COPY};
    curl_blob key{const_cast<char*>(config.client_key_pem.data()),
                  config.client_key_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
  }
  std::string token = config.token;
  if (!config.token_file.empty()) {
    std::ifstream in(config.token_file);
    std::ostringstream text;
    text << in.rdbuf();
    token = std::string(absl::StripAsciiWhitespace(text.str()));
  }
  curl_slist* list = nullptr;
  list = curl_slist_append(list, "Accept: application/json");
  if (!token.empty()) {
    // The header lives in the list, never on a command line or in a log.
    list = curl_slist_append(
        list, absl::StrCat("Authorization: Bearer ", token).c_str());
  }
  headers->reset(list);
  return curl;
}

std::string JoinUrl(const std::string& server, absl::string_view path) {
  return absl::StrCat(server, path);
}

}  // namespace

absl::StatusOr<Json> KubeClient::Request(const char* method,
                                         absl::string_view path,
                                         const Json* body,
                                         const char* content_type) {
  HeaderList headers;
  JUKE_ASSIGN_OR_RETURN(
      CurlHandle curl,
      Prepare(config_, JoinUrl(config_.server, path), &headers));
  CURL* c = curl.get();
  std::string payload;
  if (body != nullptr) {
    payload = body->dump();
    headers.reset(curl_slist_append(
        headers.release(),
        absl::StrCat("Content-Type: ", content_type).c_str()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(payload.size()));
  }
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(
      c, CURLOPT_TIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(request_timeout_)));
  std::string response;
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat(method, " ", path, ": cannot reach the Kubernetes API at ",
                     config_.server, ": ", curl_easy_strerror(rc)));
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  JUKE_RETURN_IF_ERROR(Annotate(StatusFromHttp(code, response),
                                absl::StrCat(method, " ", path)));
  Json j = Json::parse(response, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InternalError(
        absl::StrCat(method, " ", path, ": answer is not JSON"));
  }
  return j;
}

absl::StatusOr<Json> KubeClient::Get(absl::string_view path) {
  return Request("GET", path, nullptr, nullptr);
}

absl::StatusOr<Json> KubeClient::Create(absl::string_view path,
                                        const Json& object) {
  return Request("POST", path, &object, "application/json");
}

absl::StatusOr<Json> KubeClient::Replace(absl::string_view path,
                                         const Json& object) {
  return Request("PUT", path, &object, "application/json");
}

absl::StatusOr<Json> KubeClient::MergePatch(absl::string_view path,
                                            const Json& patch) {
  return Request("PATCH", path, &patch, "application/merge-patch+json");
}

absl::Status KubeClient::Delete(absl::string_view path) {
  return Request("DELETE", path, nullptr, nullptr).status();
}

absl::Status KubeClient::Watch(
    absl::string_view path, absl::string_view resource_version,
    absl::Duration timeout,
    const std::function<absl::Status(const Json&)>& on_event,
    const std::atomic<bool>* stop) {
  int64_t seconds = std::max<int64_t>(1, absl::ToInt64Seconds(timeout));
  std::string url = absl::StrCat(
      config_.server, path, absl::StrContains(path, '?') ? "&" : "?",
      "watch=true&allowWatchBookmarks=true&timeoutSeconds=", seconds,
      "&resourceVersion=", resource_version);
  HeaderList headers;
  JUKE_ASSIGN_OR_RETURN(CurlHandle curl, Prepare(config_, url, &headers));
  CURL* c = curl.get();
  WatchStream stream{&on_event, stop, {}, {}, absl::OkStatus()};
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnWatchBytes);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &stream);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, stop);
  // The server ends the watch after `timeout`; a connection silent for
  // much longer than that is dead.
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>((seconds + 30) * 1000));
  CURLcode rc = curl_easy_perform(c);
  if (stop != nullptr && stop->load()) return absl::CancelledError("stopped");
  if (!stream.status.ok()) return stream.status;
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  if (code != 0 && (code < 200 || code >= 300)) {
    return Annotate(StatusFromHttp(code, stream.error_body + stream.pending),
                    absl::StrCat("watch ", path));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        absl::StrCat("watch ", path, ": ", curl_easy_strerror(rc)));
  }
  return absl::OkStatus();
}

}  // namespace juke
