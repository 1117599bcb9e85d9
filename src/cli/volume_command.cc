#include "src/cli/volume_command.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

#include "src/cli/status_command.h"
#include "src/common/etcd_client.h"
#include "src/common/rate_limiter.h"
#include "src/common/signals.h"
#include "src/model/map_store.h"
#include "src/node/attachment.h"
#include "src/volume/mover.h"
#include "src/volume/node_volume.h"
#include "src/volume/recovery.h"
#include "src/volume/volume_catalog.h"
#include "src/volume/volume_client.h"

namespace juke::cli {
namespace {

int Fail(std::ostream& err, absl::string_view message) {
  err << "juke volume: " << message << "\n";
  return 1;
}

std::string Describe(const VolumeRecord& v) {
  std::string attached = v.attachment.has_value()
                             ? absl::StrCat(v.attachment->node, " (generation ",
                                            v.attachment->generation, ")")
                             : "-";
  return absl::StrFormat(
      "%-24s %10s %8d %-8s %-9s %s", v.id, HumanBytes(v.size_bytes), v.replicas,
      FailureDomainName(v.failure_domain), VolumeStateName(v.state), attached);
}

constexpr char kHeader[] =
    "ID                             SIZE REPLICAS DOMAIN   STATE     ATTACHED";

std::string Plural(uint64_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

// One line about a move pass, or "" when there is nothing to say.
std::string DescribeMove(const MoveProgress& p) {
  if (p.phase.empty()) return "";
  if (p.phase == "done") {
    return absl::StrCat("move to map epoch ", p.to_epoch,
                        " finished: ", Plural(p.copied, "copy", "copies"),
                        " made (", HumanBytes(p.bytes), "), ",
                        Plural(p.dropped, "old copy", "old copies"),
                        " dropped");
  }
  std::string line;
  if (p.phase == "pending") {
    line = absl::StrCat("a move from map epoch ", p.from_epoch, " to ",
                        p.to_epoch, " is due");
  } else if (p.phase == "copying") {
    line = absl::StrCat("moving from map epoch ", p.from_epoch, " to ",
                        p.to_epoch, ": ", Plural(p.chunks, "chunk", "chunks"),
                        ", ", Plural(p.copied, "copy", "copies"), " made (",
                        HumanBytes(p.bytes), ")");
  } else {
    line = absl::StrCat("moved to map epoch ", p.to_epoch, ", dropping the ",
                        "copies of epoch ", p.from_epoch, ": ", p.dropped,
                        " dropped");
  }
  if (p.waiting > 0 || !p.reason.empty()) {
    absl::StrAppend(&line, ", ", p.waiting, " waiting (", p.reason, ")");
  }
  return line;
}

// The attach agent's lock: <state-dir>/<id>.lock, held (flock) for as long
// as the agent runs, with its pid inside. The id was validated by the
// catalog: [A-Za-z0-9._-], never "." or "..".
std::string LockPath(const VolumeOptions& o) {
  return absl::StrCat(o.state_dir, "/", o.id, ".lock");
}

// Serves the volume as a block device until SIGTERM or SIGINT.
int Attach(const VolumeOptions& o, EtcdClient* etcd, std::ostream& out,
           std::ostream& err) {
  if (mkdir(o.state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail(err, absl::StrCat("cannot create --state-dir ", o.state_dir,
                                  ": ", std::strerror(errno)));
  }
  int lock = open(LockPath(o).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
    std::string pid;
    std::ifstream(LockPath(o)) >> pid;
    return Fail(err, absl::StrCat("volume ", o.id,
                                  " is already attached here by process ", pid,
                                  "; detach it first"));
  }
  std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(lock, 0) != 0 ||
      write(lock, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
    return Fail(err, absl::StrCat("cannot write ", LockPath(o)));
  }

  // What an agent killed with SIGKILL left behind.
  std::string dir = absl::StrCat(o.state_dir, "/", o.id);
  absl::Status cleaned = node::CleanupStale(dir);
  if (!cleaned.ok()) return Fail(err, cleaned.ToString());

  ChunkClientPool clients;
  NodeVolumeOptions options;
  options.node = o.node;
  options.take_over = o.take_over;
  options.state_dir = dir;
  absl::StatusOr<std::unique_ptr<NodeVolume>> volume =
      NodeVolume::Attach(etcd, &clients, o.id, options);
  if (!volume.ok()) return Fail(err, volume.status().ToString());
  out << "attached volume " << o.id << " on " << o.node << " (generation "
      << (*volume)->generation() << ")\n"
      << "device: " << (*volume)->device_path() << "\n"
      << "serving until SIGTERM, Ctrl-C or `juke volume detach " << o.id
      << " --node=" << o.node << "`" << std::endl;

  // Recovery of this volume's stale replicas, which only its writer can do.
  absl::Notification stop;
  RateLimiter limiter(o.recovery_rate_mib << 20);
  std::thread recoverer([&] {
    uint64_t last_pending = 0;
    std::string last_move;
    while (!stop.WaitForNotificationWithTimeout(absl::Seconds(2))) {
      absl::StatusOr<RecoveryProgress> p = (*volume)->RecoverStale(&limiter);
      if (!p.ok()) {
        out << "recovery: " << p.status().message() << std::endl;
        if (absl::IsFailedPrecondition(p.status())) return;  // fenced
        continue;
      }
      uint64_t pending = p->marks - p->recovered;
      if (p->recovered > 0 || pending != last_pending) {
        out << "recovery: " << Plural(p->recovered, "replica", "replicas")
            << " brought up to date (" << HumanBytes(p->bytes) << " copied), "
            << Plural(pending, "stale replica waits", "stale replicas wait")
            << std::endl;
      }
      last_pending = pending;

      absl::StatusOr<MoveProgress> m = (*volume)->Move(&limiter);
      if (!m.ok()) {
        out << "move: " << m.status().message() << std::endl;
        if (absl::IsFailedPrecondition(m.status())) return;  // fenced
        continue;
      }
      std::string line = DescribeMove(*m);
      if (!line.empty() && line != last_move) out << line << std::endl;
      last_move = line;
    }
  });

  int code = 0;
  while (true) {
    int sig = WaitForTerminationSignal();
    out << "received " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
        << ", detaching" << std::endl;
    absl::Status released = (*volume)->ReleaseDevice();
    if (absl::IsFailedPrecondition(released)) {
      // Never pull a device out from under a mounted file system.
      out << "cannot detach yet: " << released.message()
          << "; still serving, unmount and stop me again" << std::endl;
      continue;
    }
    stop.Notify();
    recoverer.join();
    if (!released.ok()) {
      code = Fail(err, absl::StrCat("releasing the device failed: ",
                                    released.ToString()));
      break;
    }
    absl::Status dropped = (*volume)->Detach();
    if (!dropped.ok()) {
      code = Fail(
          err, absl::StrCat("released the device, but the attachment stays "
                            "recorded: ",
                            dropped.ToString(), "; `juke volume detach ", o.id,
                            " --node=", o.node, "` clears it later"));
      break;
    }
    out << "detached volume " << o.id << " from " << o.node << std::endl;
    break;
  }
  volume->reset();
  // The volume's directory, once the attachment's own is gone; kept if
  // anything is left in it.
  rmdir(dir.c_str());
  unlink(LockPath(o).c_str());
  close(lock);
  return code;
}

// Stops this machine's attach agent of the volume, or drops a dead one's
// attachment.
int Detach(const VolumeOptions& o, VolumeCatalog* catalog, std::ostream& out,
           std::ostream& err) {
  int lock = open(LockPath(o).c_str(), O_RDWR | O_CLOEXEC);
  if (lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0) {
    pid_t pid = 0;
    std::ifstream(LockPath(o)) >> pid;
    if (pid <= 0 || kill(pid, SIGTERM) != 0) {
      close(lock);
      return Fail(err, absl::StrCat("cannot signal the attach agent (pid ", pid,
                                    ") of volume ", o.id));
    }
    absl::Time deadline = absl::Now() + o.timeout + absl::Seconds(20);
    while (flock(lock, LOCK_EX | LOCK_NB) != 0) {
      if (absl::Now() > deadline) {
        close(lock);
        return Fail(err, absl::StrCat("the attach agent (pid ", pid,
                                      ") did not finish; is the device "
                                      "still mounted? unmount it and retry"));
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    close(lock);
    out << "detached volume " << o.id << " from " << o.node << "\n";
    return 0;
  }
  if (lock >= 0) close(lock);
  // No agent runs here: make sure the catalog agrees.
  absl::Status s = catalog->Detach(o.id, o.node);
  if (!s.ok()) return Fail(err, s.ToString());
  out << "volume " << o.id << " is not attached on " << o.node << "\n";
  return 0;
}

// Brings the stale replicas of a detached volume up to date, pass after
// pass, until none is left or no pass makes progress.
int Recover(const VolumeOptions& o, EtcdClient* etcd, VolumeCatalog* catalog,
            std::ostream& out, std::ostream& err) {
  ChunkClientPool clients;
  RateLimiter limiter(o.recovery_rate_mib << 20);
  auto all = [](absl::string_view) { return true; };
  RecoveryProgress total;
  while (true) {
    absl::StatusOr<ClusterMap> map = RefreshMap(*etcd);
    if (!map.ok()) return Fail(err, map.status().ToString());
    absl::StatusOr<RecoveryProgress> p =
        RecoverDetachedVolume(catalog, &clients, *map, o.id, all, &limiter);
    if (!p.ok()) return Fail(err, p.status().ToString());
    total.recovered += p->recovered;
    total.bytes += p->bytes;
    out << "recover " << o.id << ": "
        << Plural(p->marks, "stale replica", "stale replicas") << ", "
        << p->recovered << " brought up to date, " << p->waiting << " waiting; "
        << HumanBytes(total.bytes) << " copied so far" << std::endl;
    if (p->marks == 0 || p->waiting == 0) break;
    if (p->recovered == 0) {
      return Fail(err,
                  absl::StrCat(Plural(p->waiting, "replica", "replicas"),
                               " cannot be recovered now (a host is down, or "
                               "a writer holds the volume and recovers it); "
                               "see the log and try again later"));
    }
  }
  out << "volume " << o.id << ": every written replica is current\n";

  // Then the move to the current map's placement, if one is due.
  std::string last_line;
  absl::Time pending_since = absl::InfiniteFuture();
  while (true) {
    absl::StatusOr<ClusterMap> map = RefreshMap(*etcd);
    if (!map.ok()) return Fail(err, map.status().ToString());
    absl::StatusOr<MoveProgress> p = MoveVolume(
        catalog, &clients, *map, o.id, nullptr, &limiter, absl::Seconds(10));
    if (!p.ok()) return Fail(err, p.status().ToString());
    std::string line = DescribeMove(*p);
    if (!line.empty() && line != last_line) {
      out << "recover " << o.id << ": " << line << std::endl;
    }
    last_line = line;
    if (p->phase.empty() || p->phase == "done") break;
    if (p->left_to_writer) {
      // Its writer moves it; follow the phases until it is done. A writer
      // that does not even start (it cannot place the volume, or it died
      // with the attachment recorded) is not waited for forever.
      if (p->phase != "pending") {
        pending_since = absl::InfiniteFuture();
      } else if (pending_since == absl::InfiniteFuture()) {
        pending_since = absl::Now();
      } else if (absl::Now() - pending_since > absl::Minutes(1)) {
        return Fail(err, absl::StrCat("the writer (", p->reason,
                                      ") has not started the move in a "
                                      "minute; see its log"));
      }
      absl::SleepFor(absl::Seconds(1));
      continue;
    }
    if (p->waiting > 0) {
      return Fail(err, absl::StrCat("the move cannot go on now: ", p->reason,
                                    "; try again later"));
    }
  }
  out << "volume " << o.id << ": placed as the current cluster map says\n";
  return 0;
}

}  // namespace

bool ParseSize(const std::string& text, uint64_t* bytes) {
  static const std::map<std::string, uint64_t> kUnits = {{"", 1},
                                                         {"K", 1ull << 10},
                                                         {"KiB", 1ull << 10},
                                                         {"M", 1ull << 20},
                                                         {"MiB", 1ull << 20},
                                                         {"G", 1ull << 30},
                                                         {"GiB", 1ull << 30},
                                                         {"T", 1ull << 40},
                                                         {"TiB", 1ull << 40}};
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  uint64_t n = 0;
  auto unit = kUnits.find(text.substr(digits));
  if (digits == 0 || unit == kUnits.end() ||
      !absl::SimpleAtoi(text.substr(0, digits), &n)) {
    return false;
  }
  if (n > UINT64_MAX / unit->second) return false;
  *bytes = n * unit->second;
  return true;
}

int RunVolume(const VolumeOptions& o, std::ostream& out, std::ostream& err) {
  if (o.action == "attach") {
    // Before any thread starts, so only WaitForTerminationSignal takes them.
    BlockTerminationSignals();
  }
  EtcdClientOptions eo;
  eo.timeout = o.timeout;
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Create(o.etcd_endpoints, eo);
  if (!etcd.ok()) return Fail(err, etcd.status().message());
  VolumeCatalog catalog(etcd->get());

  if (o.action == "list") {
    absl::StatusOr<std::vector<VolumeRecord>> all = catalog.List();
    if (!all.ok()) return Fail(err, all.status().message());
    out << kHeader << "\n";
    for (const VolumeRecord& v : *all) out << Describe(v) << "\n";
    return 0;
  }

  if (o.action == "create") {
    VolumeRecord shape;
    shape.id = o.id;
    shape.replicas = o.replicas;
    if (!ParseSize(o.size, &shape.size_bytes)) {
      err << "juke volume: --size \"" << o.size
          << "\" is not a size such as 64MiB or 10GiB\n";
      return 2;
    }
    absl::StatusOr<FailureDomain> level = ParseFailureDomain(o.failure_domain);
    if (!level.ok()) {
      err << "juke volume: --failure-domain: " << level.status().message()
          << "\n";
      return 2;
    }
    shape.failure_domain = *level;
    absl::StatusOr<VolumeRecord> v = catalog.Create(shape);
    if (!v.ok()) return Fail(err, v.status().ToString());
    out << "created volume " << v->id << ": " << HumanBytes(v->size_bytes)
        << ", " << v->replicas << " replicas, one per "
        << FailureDomainName(v->failure_domain) << "\n";
    return 0;
  }

  if (o.action == "status") {
    absl::StatusOr<VolumeRecord> v = catalog.Get(o.id);
    if (!v.ok()) return Fail(err, v.status().ToString());
    auto marks = catalog.StaleMarks(o.id);
    if (!marks.ok()) return Fail(err, marks.status().message());
    out << kHeader << "\n" << Describe(*v) << "\n";
    if (marks->empty()) {
      out << "health: every written replica is current\n";
    } else {
      out << "health: degraded, " << marks->size()
          << " replicas missed writes and are not read until recovered:\n";
      for (const auto& [chunk, disk] : *marks) {
        out << "  chunk " << chunk << " on disk " << disk << "\n";
      }
    }
    if (v->moving_to_epoch != 0) {
      out << "placement: moving from map epoch " << v->placement_epoch << " to "
          << v->moving_to_epoch
          << " (copying chunks to their new disks; `juke volume recover "
          << o.id << "` shows the progress)\n";
    } else if (v->leaving_epoch != 0) {
      out << "placement: map epoch " << v->placement_epoch
          << ", dropping the old copies of epoch " << v->leaving_epoch << "\n";
    } else {
      out << "placement: map epoch " << v->placement_epoch << "\n";
    }
    return 0;
  }

  if (o.action == "attach" || o.action == "detach" || o.action == "recover") {
    // Checks the id before it names any file.
    absl::StatusOr<VolumeRecord> v = catalog.Get(o.id);
    if (!v.ok()) return Fail(err, v.status().ToString());
    if (o.action == "attach") return Attach(o, etcd->get(), out, err);
    if (o.action == "detach") return Detach(o, &catalog, out, err);
    return Recover(o, etcd->get(), &catalog, out, err);
  }

  // delete: refuse while attached, remove every chunk, then the record.
  ChunkClientPool clients;
  absl::Status deleted = DeleteVolume(&catalog, etcd->get(), &clients, o.id);
  if (absl::IsUnavailable(deleted)) {
    return Fail(err, absl::StrCat(deleted.message(),
                                  "; run the delete again once the host is "
                                  "back"));
  }
  if (!deleted.ok()) return Fail(err, deleted.ToString());
  out << "deleted volume " << o.id << " and its chunks on every disk\n";
  return 0;
}

}  // namespace juke::cli
