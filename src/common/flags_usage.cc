#include "src/common/flags_usage.h"

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace juke {
namespace {

bool OurMainFile(absl::string_view path) {
  return absl::EndsWith(path, "_main.cc");
}

}  // namespace

void SetFlagsUsage(absl::string_view message) {
  absl::SetProgramUsageMessage(message);
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = OurMainFile;
  config.contains_help_flags = OurMainFile;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace juke
