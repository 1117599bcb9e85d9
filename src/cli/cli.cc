#include "src/cli/cli.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "src/cli/command_line.h"
#include "src/cli/status_command.h"

namespace juke::cli {
namespace {

constexpr char kDefaultEtcd[] = "127.0.0.1:2379";

constexpr char kUsage[] =
    R"(juke: administer a Juke storage pool.

Usage:
  juke <command> [flags]

Commands:
  status    Show every host of the pool, up or down, with its disks, their
            state, capacity, use and chunk count, and totals.
  help      Show this help, or `juke help <command>` for one command.

Flags for every command:
  --etcd=HOST:PORT[,HOST:PORT...]
            etcd endpoints of the pool (default: $JUKE_ETCD, else
            127.0.0.1:2379). Several endpoints must be IP addresses; one
            DNS name may stand for all members.
  --timeout=DURATION
            Deadline of each etcd call, e.g. 5s or 500ms (default 5s).
  -h, --help
            Show help.

Exit codes: 0 success, 1 the command failed (e.g. etcd unreachable),
2 usage error.
)";

constexpr char kStatusUsage[] =
    R"(juke status: show the pool.

Usage:
  juke status [--etcd=HOST:PORT] [--output=text|json] [--timeout=5s]

Lists every host that ever registered in the pool, grouped by pool: whether
it is up (its storage daemon runs and reaches etcd) or down, its address and
failure-domain labels, and under it each disk with its state (healthy,
degraded, failed), capacity, used and available space and chunk count.
Sizes are in binary units (1 GiB = 1024 MiB). A last line sums up the pool.

Flags:
  --output=text|json
            text (default) for people; json for scripts, with sizes in
            bytes: {"hosts": [...], "totals": {...}}.
  --etcd, --timeout
            As for every command; see `juke help`.
)";

int UsageError(absl::string_view message, std::ostream& err) {
  err << "juke: " << message << "\n"
      << "Run 'juke help' for usage.\n";
  return 2;
}

std::string DefaultEtcd() {
  const char* env = std::getenv("JUKE_ETCD");
  if (env != nullptr && *env != '\0') return env;
  return kDefaultEtcd;
}

int Status(const CommandLine& line, std::ostream& out, std::ostream& err) {
  if (!line.positional.empty()) {
    return UsageError(absl::StrCat("status takes no arguments, got \"",
                                   line.positional[0], "\""),
                      err);
  }
  StatusOptions options;
  options.etcd_endpoints = DefaultEtcd();
  if (auto it = line.flags.find("etcd"); it != line.flags.end()) {
    options.etcd_endpoints = it->second;
  }
  if (auto it = line.flags.find("output"); it != line.flags.end()) {
    if (it->second == "json") {
      options.json = true;
    } else if (it->second != "text") {
      return UsageError(absl::StrCat("--output must be text or json, not \"",
                                     it->second, "\""),
                        err);
    }
  }
  if (auto it = line.flags.find("timeout"); it != line.flags.end()) {
    if (!absl::ParseDuration(it->second, &options.timeout) ||
        options.timeout <= absl::ZeroDuration()) {
      return UsageError(absl::StrCat("--timeout must be a positive duration "
                                     "such as 5s, not \"",
                                     it->second, "\""),
                        err);
    }
  }
  return RunStatus(options, out, err);
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err) {
  absl::StatusOr<CommandLine> line =
      ParseCommandLine(args, {"etcd", "output", "timeout"});
  if (!line.ok()) return UsageError(line.status().message(), err);

  if (line->command == "help") {
    if (line->positional.empty()) {
      out << kUsage;
      return 0;
    }
    if (line->positional[0] == "status") {
      out << kStatusUsage;
      return 0;
    }
    return UsageError(absl::StrCat("no help for unknown command \"",
                                   line->positional[0], "\""),
                      err);
  }
  if (line->command.empty()) {
    if (line->help) {
      out << kUsage;
      return 0;
    }
    err << kUsage;
    return 2;
  }
  if (line->command == "status") {
    if (line->help) {
      out << kStatusUsage;
      return 0;
    }
    return Status(*line, out, err);
  }
  return UsageError(absl::StrCat("unknown command \"", line->command, "\""),
                    err);
}

}  // namespace juke::cli
