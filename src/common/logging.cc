#include "src/common/logging.h"

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace juke {
namespace {

// klog's header; spdlog's %L is the level's first letter in upper case.
constexpr char kPattern[] = "%L%m%d %H:%M:%S.%f %7t %s:%#] %n: %v";

struct LogState {
  std::mutex mu;
  spdlog::sink_ptr sink;
  spdlog::level::level_enum default_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum, std::less<>> overrides;
};

LogState& State() {
  static auto* state = [] {
    auto* s = new LogState;
    s->sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    s->sink->set_pattern(kPattern);
    return s;
  }();
  return *state;
}

spdlog::level::level_enum LevelFor(LogState& s, absl::string_view name) {
  auto it = s.overrides.find(name);
  return it == s.overrides.end() ? s.default_level : it->second;
}

bool ParseLevel(absl::string_view text, spdlog::level::level_enum* level) {
  static const std::map<std::string, spdlog::level::level_enum, std::less<>>
      kLevels = {{"trace", spdlog::level::trace},
                 {"debug", spdlog::level::debug},
                 {"info", spdlog::level::info},
                 {"warn", spdlog::level::warn},
                 {"error", spdlog::level::err},
                 {"critical", spdlog::level::critical},
                 {"off", spdlog::level::off}};
  auto it = kLevels.find(text);
  if (it == kLevels.end()) return false;
  *level = it->second;
  return true;
}

}  // namespace

Logger GetLogger(absl::string_view component) {
  LogState& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  std::string name(component);
  if (Logger existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, s.sink);
  logger->set_level(LevelFor(s, name));
  logger->flush_on(spdlog::level::warn);
  spdlog::register_logger(logger);
  return logger;
}

absl::Status SetLogLevels(absl::string_view spec) {
  spdlog::level::level_enum default_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum, std::less<>> overrides;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> kv = absl::StrSplit(part, '=');
    spdlog::level::level_enum level;
    if (kv.size() == 1 && ParseLevel(kv[0], &level)) {
      default_level = level;
    } else if (kv.size() == 2 && !kv[0].empty() && ParseLevel(kv[1], &level)) {
      overrides[std::string(kv[0])] = level;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad log level spec '", part,
          "': want LEVEL or COMPONENT=LEVEL, with LEVEL one of trace, debug, "
          "info, warn, error, critical, off"));
    }
  }

  LogState& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  s.default_level = default_level;
  s.overrides = std::move(overrides);
  spdlog::apply_all(
      [&s](const Logger& l) { l->set_level(LevelFor(s, l->name())); });
  return absl::OkStatus();
}

}  // namespace juke
