#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "src/common/status.h"

extern char** environ;

namespace juke::testing {
namespace {

// Finds `name` in PATH unless it already is a path.
absl::StatusOr<std::string> ResolveProgram(const std::string& name) {
  if (absl::StrContains(name, '/')) return name;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("program ", name, " not in PATH"));
}

// The parent's environment with `extra` laid over it, as KEY=VALUE strings.
std::vector<std::string> BuildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    absl::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == absl::string_view::npos) continue;
    vars[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  }
  for (const auto& [key, value] : extra) vars[key] = value;
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [key, value] : vars) {
    out.push_back(absl::StrCat(key, "=", value));
  }
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Runs in the child between fork and exec: async-signal-safe calls only.
// Reports a failure through `error_fd` as an errno value.
[[noreturn]] void ExecChild(const char* program, char* const argv[],
                            char* const envp[], int log_fd, const char* cwd,
                            pid_t parent, int error_fd) {
  auto fail = [error_fd]() {
    int err = errno;
    ssize_t ignored = write(error_fd, &err, sizeof(err));
    (void)ignored;
    _exit(127);
  };
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail();
  // The parent may have died before prctl took effect.
  if (getppid() != parent) _exit(1);

  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0) fail();
  if (log_fd >= 0) {
    if (dup2(log_fd, STDOUT_FILENO) < 0) fail();
    if (dup2(log_fd, STDERR_FILENO) < 0) fail();
  }
  if (cwd != nullptr && chdir(cwd) != 0) fail();

  // Signals blocked or ignored in the test runner must not leak into the
  // child.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);

  execve(program, argv, envp);
  fail();
  _exit(127);  // Not reached; fail() exits.
}

}  // namespace

std::string ExitInfo::ToString() const {
  if (signal != 0) return absl::StrCat("killed by signal ", signal);
  return absl::StrCat("exited with code ", exit_code);
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    SubprocessOptions options) {
  if (options.argv.empty()) {
    return absl::InvalidArgumentError("subprocess: empty argv");
  }

  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls are allowed, as the test runner has threads.
  JUKE_ASSIGN_OR_RETURN(std::string program, ResolveProgram(options.argv[0]));
  std::vector<std::string> args = options.argv;
  std::vector<std::string> env = BuildEnvironment(options.env);
  std::vector<char*> argv = CStrings(args);
  std::vector<char*> envp = CStrings(env);
  const char* cwd =
      options.working_dir.empty() ? nullptr : options.working_dir.c_str();

  int log_fd = -1;
  if (!options.log_path.empty()) {
    log_fd = open(options.log_path.c_str(),
                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return ErrnoToStatus(errno, absl::StrCat("open ", options.log_path));
    }
  }
  // The exec error, if any, comes back through this pipe; a successful exec
  // closes it (O_CLOEXEC) and the parent reads end-of-file.
  int error_pipe[2];
  if (pipe2(error_pipe, O_CLOEXEC) != 0) {
    int err = errno;
    if (log_fd >= 0) close(log_fd);
    return ErrnoToStatus(err, "subprocess pipe");
  }

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    ExecChild(program.c_str(), argv.data(), envp.data(), log_fd, cwd, parent,
              error_pipe[1]);
  }
  int fork_errno = errno;
  close(error_pipe[1]);
  if (log_fd >= 0) close(log_fd);
  if (pid < 0) {
    close(error_pipe[0]);
    return ErrnoToStatus(fork_errno, "fork");
  }

  int child_errno = 0;
  ssize_t n;
  do {
    n = read(error_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(error_pipe[0]);
  if (n == sizeof(child_errno)) {
    waitpid(pid, nullptr, 0);
    return ErrnoToStatus(child_errno, absl::StrCat("start ", program));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(std::move(options), pid));
}

Subprocess::Subprocess(SubprocessOptions options, pid_t pid)
    : options_(std::move(options)), pid_(pid) {}

Subprocess::~Subprocess() {
  if (reaped_) return;
  kill(pid_, SIGKILL);
  Wait().IgnoreError();
}

bool Subprocess::Poll() {
  if (reaped_) return true;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  reaped_ = true;
  if (r < 0) return true;  // Not our child any more; nothing to learn.
  if (WIFEXITED(status)) {
    exit_info_.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit_info_.signal = WTERMSIG(status);
  }
  return true;
}

absl::Status Subprocess::Kill(int signal) {
  if (reaped_) {
    return absl::FailedPreconditionError(
        absl::StrCat("process ", pid_, " has already ended"));
  }
  if (kill(pid_, signal) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("kill ", pid_));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitInfo> Subprocess::Wait(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (!Poll()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still runs after ",
                       absl::FormatDuration(timeout)));
    }
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(pause));
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
  return exit_info_;
}

absl::StatusOr<ExitInfo> Subprocess::Terminate(absl::Duration grace) {
  if (!Poll()) {
    kill(pid_, SIGTERM);
    absl::StatusOr<ExitInfo> info = Wait(grace);
    if (info.ok()) return info;
    kill(pid_, SIGKILL);
  }
  return Wait();
}

bool Subprocess::IsRunning() { return !Poll(); }

std::string Subprocess::LogTail(size_t max_bytes) const {
  if (options_.log_path.empty()) return "";
  std::ifstream in(options_.log_path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  if (text.size() > max_bytes) text = text.substr(text.size() - max_bytes);
  return text;
}

}  // namespace juke::testing
