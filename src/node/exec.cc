#include "src/node/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

#include "src/common/status.h"

extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace juke::node {
namespace {

constexpr size_t kMaxOutput = 1 << 20;
constexpr char kFallbackPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

absl::StatusOr<std::string> ResolveProgram(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("empty program name");
  if (absl::StrContains(name, '/')) return name;
  const char* env_path = std::getenv("PATH");
  const std::string search =
      absl::StrCat(env_path == nullptr ? "" : env_path, ":", kFallbackPath);
  for (absl::string_view dir : absl::StrSplit(search, ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("program ", name, " not found"));
}

// The parent's environment with LC_ALL=C, so output is parseable.
std::vector<std::string> ChildEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (absl::StartsWith(*e, "LC_ALL=")) continue;
    env.emplace_back(*e);
  }
  env.emplace_back("LC_ALL=C");
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Reads both pipes until both reach EOF or the deadline passes. Returns
// false on timeout.
bool DrainPipes(int out_fd, int err_fd, absl::Time deadline,
                CommandResult& result) {
  std::array<pollfd, 2> fds = {pollfd{out_fd, POLLIN, 0},
                               pollfd{err_fd, POLLIN, 0}};
  std::array<std::string*, 2> sinks = {&result.out, &result.err};
  int open_pipes = 2;
  std::array<char, 16384> buffer;
  while (open_pipes > 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    const int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    const int ready = poll(fds.data(), fds.size(), wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer.data(), buffer.size());
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open_pipes;
        continue;
      }
      std::string& sink = *sinks[i];
      const size_t keep =
          std::min(static_cast<size_t>(n), kMaxOutput - sink.size());
      sink.append(buffer.data(), keep);
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<CommandResult> RunCommand(std::span<const std::string> argv,
                                         absl::Duration timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  JUKE_ASSIGN_OR_RETURN(std::string program, ResolveProgram(argv[0]));
  std::vector<std::string> args(argv.begin(), argv.end());
  std::vector<std::string> env = ChildEnvironment();
  std::vector<char*> c_args = CStrings(args);
  std::vector<char*> c_env = CStrings(env);

  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    const int saved = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    return ErrnoToStatus(saved, "pipe");
  }
  absl::Cleanup close_read_ends = [&] {
    close(out_pipe[0]);
    close(err_pipe[0]);
  };

  // The child's stdio, nothing else open, default signals, nothing blocked.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigset_t defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD}) {
    sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  const int spawn_error = posix_spawn(&pid, program.c_str(), &actions, &attr,
                                      c_args.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawn_error != 0) {
    return ErrnoToStatus(spawn_error, absl::StrCat("start ", program));
  }

  CommandResult result;
  const bool finished =
      DrainPipes(out_pipe[0], err_pipe[0], absl::Now() + timeout, result);
  if (!finished) kill(pid, SIGKILL);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0) {
    if (errno != EINTR) return ErrnoToStatus(errno, "waitpid");
  }
  if (!finished) {
    return absl::DeadlineExceededError(
        absl::StrCat(program, " ran longer than ",
                     absl::FormatDuration(timeout), " and was killed"));
  }
  if (WIFEXITED(wait_status)) result.exit_code = WEXITSTATUS(wait_status);
  return result;
}

absl::StatusOr<CommandResult> RunCommandChecked(
    std::span<const std::string> argv, absl::Duration timeout) {
  JUKE_ASSIGN_OR_RETURN(CommandResult result, RunCommand(argv, timeout));
  if (result.exit_code != 0) {
    return absl::InternalError(absl::StrCat(
        absl::StrJoin(argv, " "), " exited with ", result.exit_code, ": ",
        result.err.empty() ? result.out : result.err));
  }
  return result;
}

}  // namespace juke::node
