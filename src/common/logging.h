#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/fmt/fmt.h"
#include "spdlog/spdlog.h"

// Logging in the layout every Kubernetes component uses (klog):
//
//   I1203 14:57:50.123456   4242 chunk_store.cc:88] storage: Chunk written ...
//
// level letter, month and day, time with microseconds, thread id, source
// file and line, then the component's logger name, a static capitalised
// message and key=value fields with lowerCamelCase keys:
//
//   JUKE_LOG_INFO(log, "Disk opened diskID={} path={}", id, path);
//
// Each component asks for its own named logger once and keeps it. Levels are
// set per component with SetLogLevels("info,storage=debug").
namespace juke {

using Logger = std::shared_ptr<spdlog::logger>;

// Returns the logger named `component`, creating it on first use. Thread-safe.
Logger GetLogger(absl::string_view component);

// Parses a level spec: a default level, then comma-separated
// component=level overrides, e.g. "info,storage=debug,etcd=warn". Levels:
// trace, debug, info, warn, error, critical, off. Applies to existing and
// future loggers. Returns InvalidArgument for a malformed spec and changes
// nothing then.
absl::Status SetLogLevels(absl::string_view spec);

}  // namespace juke

// Lets log fields be absl types directly: absl::string_view (which is not
// std::string_view in Debian's Abseil build) and absl::Status.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(absl::string_view s, Ctx& ctx) const {
    return fmt::formatter<fmt::string_view>::format(
        fmt::string_view(s.data(), s.size()), ctx);
  }
};

template <>
struct fmt::formatter<absl::Status> : fmt::formatter<fmt::string_view> {
  template <typename Ctx>
  auto format(const absl::Status& s, Ctx& ctx) const {
    std::string text = s.ToString();
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(text),
                                                    ctx);
  }
};

#define JUKE_LOG_TRACE(logger, ...) SPDLOG_LOGGER_TRACE(logger, __VA_ARGS__)
#define JUKE_LOG_DEBUG(logger, ...) SPDLOG_LOGGER_DEBUG(logger, __VA_ARGS__)
#define JUKE_LOG_INFO(logger, ...) SPDLOG_LOGGER_INFO(logger, __VA_ARGS__)
#define JUKE_LOG_WARN(logger, ...) SPDLOG_LOGGER_WARN(logger, __VA_ARGS__)
#define JUKE_LOG_ERROR(logger, ...) SPDLOG_LOGGER_ERROR(logger, __VA_ARGS__)
