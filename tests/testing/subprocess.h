#pragma once

#include <sys/types.h>

#include <csignal>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

// A child process for integration tests: etcd, storage daemons, anything
// that has to run as a real separate process.
//
//   SubprocessOptions opts;
//   opts.argv = {build_dir + "/src/storage/jukestored", "--port=0"};
//   opts.log_path = dir + "/jukestored.log";
//   JUKE_ASSIGN_OR_RETURN(auto daemon, Subprocess::Start(opts));
//   ...
//   daemon->Kill(SIGKILL);  // A crash, as far as the others can tell.
//
// The child gets the parent's environment plus `env`, stdin from /dev/null
// and stdout and stderr appended to `log_path`. It is killed with SIGKILL
// if the test process dies (PR_SET_PDEATHSIG), so no daemon outlives a
// crashed test, and by the destructor if still running. The kernel ties
// that signal to the thread that called Start(), not the process: start
// long-lived children from a thread that outlives them (the test's main
// thread), or they die with the thread.
//
// Thread-compatible: one thread at a time per object.
namespace juke::testing {

struct SubprocessOptions {
  // argv[0] is the program: a path, or a name looked up in PATH.
  std::vector<std::string> argv;
  // Added to (or replacing in) the parent's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // Where stdout and stderr go (appended); empty: the parent's.
  std::string log_path;
  // The child's working directory; empty: the parent's.
  std::string working_dir;
};

// How a process ended.
struct ExitInfo {
  int exit_code = -1;  // When it exited; -1 when a signal ended it.
  int signal = 0;      // The signal that ended it, or 0.

  bool success() const { return exit_code == 0; }
  std::string ToString() const;
};

class Subprocess {
 public:
  // Starts the program. Fails if it cannot be executed (the exec error is
  // reported here, not as an exit code).
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      SubprocessOptions options);

  // Kills (SIGKILL) and reaps the child if it still runs.
  ~Subprocess();

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const SubprocessOptions& options() const { return options_; }

  // Sends `signal`. FailedPrecondition once the child has been reaped.
  absl::Status Kill(int signal = SIGKILL);

  // Waits for the child to end; DeadlineExceeded if it still runs after
  // `timeout`.
  absl::StatusOr<ExitInfo> Wait(
      absl::Duration timeout = absl::InfiniteDuration());

  // SIGTERM, then SIGKILL if it still runs after `grace`; waits for the end.
  absl::StatusOr<ExitInfo> Terminate(absl::Duration grace = absl::Seconds(5));

  // Whether the child still runs (reaps it if it has ended).
  bool IsRunning();

  // How it ended, once reaped.
  const ExitInfo& exit_info() const { return exit_info_; }

  // The last `max_bytes` of the log file, for failure messages.
  std::string LogTail(size_t max_bytes = 4096) const;

 private:
  Subprocess(SubprocessOptions options, pid_t pid);

  // Reaps the child without blocking; returns whether it has ended.
  bool Poll();

  const SubprocessOptions options_;
  const pid_t pid_;
  bool reaped_ = false;
  ExitInfo exit_info_;
};

}  // namespace juke::testing
