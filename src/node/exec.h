#pragma once

#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// Runs helper programs (blkid, mkfs, resize2fs) without a shell: the argv
// goes to execve as it is, so no argument is ever parsed by a shell. The
// child gets stdin from /dev/null, no inherited file descriptors beyond
// 0-2, an empty signal mask and LC_ALL=C. Command lines are visible to
// every process on the host: never put a secret in argv.
//
// Safe to call from any thread, also while other threads run (posix_spawn,
// not fork).
namespace juke::node {

struct CommandResult {
  int exit_code = -1;  // -1 when a signal ended the program.
  std::string out;     // stdout, at most 1 MiB kept.
  std::string err;     // stderr, at most 1 MiB kept.
};

// Runs argv[0] (a path, or a name looked up in PATH and then in the sbin
// and bin directories) and waits for it. The status is an error only if
// the program could not be started (NotFound when it does not exist) or
// ran longer than `timeout` (DeadlineExceeded; it is killed then); a
// non-zero exit is reported in the result.
absl::StatusOr<CommandResult> RunCommand(std::span<const std::string> argv,
                                         absl::Duration timeout);

// Like RunCommand, but a non-zero exit is an Internal error carrying the
// program's stderr.
absl::StatusOr<CommandResult> RunCommandChecked(
    std::span<const std::string> argv, absl::Duration timeout);

}  // namespace juke::node
