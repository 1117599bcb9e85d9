#include "src/kube/reflector.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "src/common/logging.h"

namespace juke {
namespace {

const Logger& Log() {
  static const Logger* log = new Logger(GetLogger("kube"));
  return *log;
}

// Sleeps for `d` or until `*stop`, whichever comes first.
void Pause(absl::Duration d, const std::atomic<bool>* stop) {
  absl::Time end = absl::Now() + d;
  while (!stop->load() && absl::Now() < end) {
    absl::SleepFor(std::min(absl::Milliseconds(50), end - absl::Now()));
  }
}

}  // namespace

std::string ObjectKey(const nlohmann::json& object) {
  std::string ns = MetadataString(object, "namespace");
  std::string name = MetadataString(object, "name");
  return ns.empty() ? name : absl::StrCat(ns, "/", name);
}

Reflector::Reflector(KubeClient* client, std::string path,
                     std::function<void()> on_change)
    : Reflector(client, std::move(path), std::move(on_change), Options()) {}

Reflector::Reflector(KubeClient* client, std::string path,
                     std::function<void()> on_change, Options options)
    : client_(client),
      path_(std::move(path)),
      on_change_(std::move(on_change)),
      options_(options) {}

absl::Status Reflector::List() {
  absl::StatusOr<Json> list = client_->Get(path_);
  if (!list.ok()) return list.status();
  std::map<std::string, Json> objects;
  if (auto items = list->find("items");
      items != list->end() && items->is_array()) {
    for (Json& item : *items) {
      std::string key = ObjectKey(item);
      objects[key] = std::move(item);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    objects_ = std::move(objects);
    version_ = MetadataString(*list, "resourceVersion");
    synced_ = true;
    ++lists_;
  }
  return absl::OkStatus();
}

absl::Status Reflector::Apply(const Json& event) {
  const std::string type = event.value("type", "");
  auto object = event.find("object");
  if (object == event.end() || !object->is_object()) {
    return absl::InternalError(
        absl::StrCat("watch ", path_, ": event without an object"));
  }
  std::string version = MetadataString(*object, "resourceVersion");
  bool changed = true;
  {
    absl::MutexLock lock(&mu_);
    if (type == "ADDED" || type == "MODIFIED") {
      objects_[ObjectKey(*object)] = *object;
    } else if (type == "DELETED") {
      objects_.erase(ObjectKey(*object));
    } else {
      changed = false;  // BOOKMARK: only the version moves.
    }
    if (!version.empty()) version_ = version;
  }
  if (changed) on_change_();
  return absl::OkStatus();
}

void Reflector::Run(const std::atomic<bool>* stop) {
  absl::Duration backoff = options_.backoff;
  bool need_list = true;
  while (!stop->load()) {
    if (need_list) {
      absl::Status s = List();
      if (!s.ok()) {
        JUKE_LOG_WARN(Log(), "List failed path={} err={}", path_, s);
        Pause(backoff, stop);
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      JUKE_LOG_DEBUG(Log(), "Listed path={} resourceVersion={}", path_,
                     resource_version());
      need_list = false;
      on_change_();
    }
    absl::Status s = client_->Watch(
        path_, resource_version(), options_.watch_timeout,
        [this](const Json& event) { return Apply(event); }, stop);
    if (s.ok()) {
      backoff = options_.backoff;
      continue;  // The server ended the watch: resume where it left off.
    }
    if (absl::IsCancelled(s)) break;
    if (absl::IsOutOfRange(s)) {
      JUKE_LOG_INFO(Log(),
                    "Watch expired, listing again path={} "
                    "resourceVersion={}",
                    path_, resource_version());
      need_list = true;
      continue;
    }
    // Disconnected, or the server is away: resume from the same version
    // once it answers; should that version be gone by then, the server
    // says so (410) and the next round lists again.
    JUKE_LOG_WARN(Log(),
                  "Watch failed, resuming path={} resourceVersion={} "
                  "err={}",
                  path_, resource_version(), s);
    Pause(backoff, stop);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

std::map<std::string, nlohmann::json> Reflector::Objects() const {
  absl::MutexLock lock(&mu_);
  return objects_;
}

bool Reflector::synced() const {
  absl::MutexLock lock(&mu_);
  return synced_;
}

int64_t Reflector::lists() const {
  absl::MutexLock lock(&mu_);
  return lists_;
}

std::string Reflector::resource_version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

}  // namespace juke
