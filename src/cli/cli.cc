#include "src/cli/cli.h"

#include <cstdlib>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

#include "src/cli/chunk_command.h"
#include "src/cli/command_line.h"
#include "src/cli/disk_command.h"
#include "src/cli/snapshot_command.h"
#include "src/cli/status_command.h"
#include "src/cli/volume_command.h"
#include "src/common/logging.h"
#include "src/common/version.h"

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
  volume    Create, list, show the health of, attach as a block device,
            detach, recover or delete volumes (see `juke help volume`).
  snapshot  Take, list or delete crash-consistent snapshots of volumes
            (see `juke help snapshot`).
  disk      Take a disk out of the pool (its data moves to other disks) or
            bring it back in (see `juke help disk`).
  chunk     Write, read or list raw chunks on one host's disk, to check a
            host by hand (no replication; see `juke help chunk`).
  help      Show this help, or `juke help <command>` for one command.
  version   Print juke's version.

Flags for every command:
  --etcd=HOST:PORT[,HOST:PORT...]
            etcd endpoints of the pool (default: $JUKE_ETCD, else
            127.0.0.1:2379). Several endpoints must be IP addresses; one
            DNS name may stand for all members.
  --timeout=DURATION
            Deadline of each etcd call, e.g. 5s or 500ms (default 5s).
  -h, --help
            Show help.

Environment:
  JUKE_ETCD          default for --etcd
  JUKE_LOG_LEVELS    log detail on stderr: warn (default), info, debug, or
                     per component, e.g. info,volume=debug

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

constexpr char kVolumeUsage[] =
    R"(juke volume: the pool's volumes.

Usage:
  juke volume create ID --size=SIZE [--replicas=3] [--failure-domain=host]
  juke volume list
  juke volume status ID
  juke volume attach ID --node=HOST [--take-over] [--state-dir=DIR]
  juke volume detach ID --node=HOST [--state-dir=DIR]
  juke volume recover ID
  juke volume delete ID

A volume is thin: its chunks exist once written. Its size is a multiple of
its 4 MiB chunk size (SIZE accepts 4096, 64MiB, 10GiB, 1TiB). Its replicas,
1 to 5, go to distinct failure domains at the level asked for: host,
cluster, zone or region; create fails, changing nothing, when the pool has
too few. Creating an existing volume with the same shape succeeds; with
another shape it fails. status shows the replicas that missed writes and
are not read until recovery brings them back. delete refuses an attached
volume, removes the volume's chunks from every disk and then the volume;
if a host is down it stops half-way, and running it again later finishes.

attach makes this machine the volume's one writer, as pool host HOST: it
takes a new generation, fences every storage daemon against older
writers, and serves the volume as a block device (FUSE plus a loop device
with direct I/O). It prints the device on a line of its own
("device: /dev/loop3") and keeps running: it serves the device and brings
stale replicas up to date in the background, printing the progress. Stop
it with SIGTERM or Ctrl-C, or with `juke volume detach` from another
shell: it releases the device (refusing while it is mounted: unmount
first) and the attachment. A volume held by another host needs
--take-over; the old writer's next write then fails.

recover brings the stale replicas of a detached volume up to date now
(storage daemons also do it every few seconds) and prints the progress.

Flags:
  --size=SIZE               create: the volume's size
  --replicas=N              create: copies of every chunk (default 3)
  --failure-domain=LEVEL    create: host (default), cluster, zone, region
  --node=HOST               attach, detach: this machine's host name in
                            the pool
  --take-over               attach: take the volume from the host that
                            holds it
  --state-dir=DIR           attach, detach: where the attachment's files
                            live (default /run/juke)
  --recovery-rate-mib=N     attach, recover: most MiB/s copied to stale
                            replicas (default 64; 0 is no limit)
  --etcd, --timeout         as for every command; see `juke help`.
)";

constexpr char kDiskUsage[] =
    R"(juke disk: an admin's decisions about one disk.

Usage:
  juke disk out DISK
  juke disk in DISK

out takes the disk out of the cluster map: no new chunk is placed on it,
and every volume with chunks on it copies them to the disks the new map
places them on, then switches to the new placement, and only then deletes
the copies on the disk. The storage daemons move the volumes no one has
attached; the writer of an attached volume moves its own. The data stays
fully replicated all along. in brings the disk back; volumes then move
part of their chunks onto it the same way. DISK is a disk id as `juke
status` shows it.

`juke volume status ID` shows whether a volume is moving;
`juke volume recover ID` moves a detached one now and prints the progress.

Flags:
  --etcd, --timeout  as for every command; see `juke help`.
)";

constexpr char kChunkUsage[] =
    R"(juke chunk: raw chunk access on one storage daemon.

Usage:
  juke chunk write --host=H --volume=V --index=N --from=FILE [--offset=0]
  juke chunk read  --host=H --volume=V --index=N --to=FILE|- [--offset=0]
                   [--length=BYTES]
  juke chunk list  --host=H [--volume=V]

The host's address comes from etcd. The chunk lives only on the disk named
(--disk=ID; default the host's first healthy disk): this bypasses
replication and is meant for checking a host by hand. Data travels in 4 KiB
blocks with a CRC32C each, checked by the daemon on the way in and on every
read; a write of FILE is padded with zeros to a whole block.

Flags:
  --host=ID         the host, as `juke status` lists it
  --disk=ID         the disk (default: the host's first healthy disk)
  --volume=ID       the volume id the chunk belongs to
  --index=N         the chunk's index in the volume
  --offset=BYTES    byte offset in the chunk, a multiple of 4096
  --length=BYTES    read: bytes to read, a multiple of 4096 (default 4 MiB)
  --generation=N    write: the writer generation (default 1)
  --from=FILE       write: up to 4 MiB of data to send
  --to=FILE         read: where to put the data; - for standard output
  --etcd, --timeout as for every command; see `juke help`.
)";

constexpr char kSnapshotUsage[] =
    R"(juke snapshot: snapshots of volumes.

Usage:
  juke snapshot create ID --volume=VOLUME
  juke snapshot list [--volume=VOLUME]
  juke snapshot delete ID

create takes snapshot ID of the volume: a crash-consistent point in time,
holding every write the volume acknowledged before, taken without copying
data. The volume's writer, if attached, is held back for a moment and goes
on. Creating it again of the same volume succeeds; of another volume is an
error. A snapshot outlives its volume, and its chunks move with the
cluster map as a volume's do. list shows the snapshots, of one volume with
--volume: PLACEMENT is the map epoch their chunks are placed with and how
many replicas still lack them (stale chunks, disks that were down when it
was taken); the storage daemons copy those in. delete removes the
snapshot's chunks from every disk, then the snapshot; with a host down it
says so, and a second delete once the host is back finishes.

Flags:
  --volume=ID       create: the volume; list: only this volume's snapshots
  --etcd, --timeout as for every command; see `juke help`.
)";

int UsageError(absl::string_view message, std::ostream& err) {
  err << "juke: " << message << "\n"
      << "Run 'juke help' for usage.\n";
  return 2;
}

// Usage error (exit 2) unless every flag given is one `command` takes.
bool OnlyFlags(const CommandLine& line, const std::set<std::string>& allowed,
               std::ostream& err, int* code) {
  for (const auto& [name, value] : line.flags) {
    if (allowed.count(name) == 0) {
      *code = UsageError(absl::StrCat(line.command, " does not take --", name),
                         err);
      return false;
    }
  }
  return true;
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
  int code = 0;
  if (!OnlyFlags(line, {"etcd", "output", "timeout"}, err, &code)) return code;
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

// Reads the numeric flag `name` into `value` when given.
bool NumberFlag(const CommandLine& line, const std::string& name,
                uint64_t* value, std::ostream& err, int* code) {
  auto it = line.flags.find(name);
  if (it == line.flags.end()) return true;
  if (absl::SimpleAtoi(it->second, value)) return true;
  *code = UsageError(absl::StrCat("--", name, " must be a non-negative ",
                                  "integer, not \"", it->second, "\""),
                     err);
  return false;
}

int Volume(const CommandLine& line, std::ostream& out, std::ostream& err) {
  int code = 0;
  if (!OnlyFlags(line,
                 {"etcd", "timeout", "size", "replicas", "failure-domain",
                  "node", "take-over", "state-dir", "recovery-rate-mib"},
                 err, &code)) {
    return code;
  }
  const std::vector<std::string>& p = line.positional;
  static const std::set<std::string> kActions = {
      "create", "list", "status", "attach", "detach", "recover", "delete"};
  if (p.empty() || kActions.count(p[0]) == 0) {
    return UsageError(
        "volume wants one action: create, list, status, attach, detach, "
        "recover or delete",
        err);
  }
  VolumeOptions o;
  o.action = p[0];
  if (o.action == "list" ? p.size() != 1 : p.size() != 2) {
    return UsageError(o.action == "list" ? "volume list takes no volume id"
                                         : absl::StrCat("volume ", o.action,
                                                        " takes one volume id"),
                      err);
  }
  if (p.size() == 2) o.id = p[1];
  o.etcd_endpoints = DefaultEtcd();
  auto flag = [&line](const char* name) {
    auto it = line.flags.find(name);
    return it == line.flags.end() ? std::string() : it->second;
  };
  if (!flag("etcd").empty()) o.etcd_endpoints = flag("etcd");
  if (auto it = line.flags.find("timeout"); it != line.flags.end()) {
    if (!absl::ParseDuration(it->second, &o.timeout) ||
        o.timeout <= absl::ZeroDuration()) {
      return UsageError("--timeout must be a positive duration such as 5s",
                        err);
    }
  }
  o.size = flag("size");
  if (o.action == "create" && o.size.empty()) {
    return UsageError("volume create needs --size, e.g. --size=1GiB", err);
  }
  if (!flag("failure-domain").empty()) {
    o.failure_domain = flag("failure-domain");
  }
  if (!flag("replicas").empty() &&
      !absl::SimpleAtoi(flag("replicas"), &o.replicas)) {
    return UsageError("--replicas must be a number from 1 to 5", err);
  }
  o.node = flag("node");
  if ((o.action == "attach" || o.action == "detach") && o.node.empty()) {
    return UsageError(absl::StrCat("volume ", o.action,
                                   " needs --node, this machine's host name "
                                   "in the pool"),
                      err);
  }
  o.take_over = flag("take-over") == "true";
  if (!flag("state-dir").empty()) o.state_dir = flag("state-dir");
  if (!NumberFlag(line, "recovery-rate-mib", &o.recovery_rate_mib, err,
                  &code)) {
    return code;
  }
  return RunVolume(o, out, err);
}

int Snapshot(const CommandLine& line, std::ostream& out, std::ostream& err) {
  int code = 0;
  if (!OnlyFlags(line, {"etcd", "timeout", "volume"}, err, &code)) return code;
  const std::vector<std::string>& p = line.positional;
  if (p.empty() || (p[0] != "create" && p[0] != "list" && p[0] != "delete")) {
    return UsageError("snapshot wants one action: create, list or delete", err);
  }
  SnapshotOptions o;
  o.action = p[0];
  if (o.action == "list" ? p.size() != 1 : p.size() != 2) {
    return UsageError(
        o.action == "list"
            ? "snapshot list takes no snapshot id"
            : absl::StrCat("snapshot ", o.action, " takes one snapshot id"),
        err);
  }
  if (p.size() == 2) o.id = p[1];
  o.etcd_endpoints = DefaultEtcd();
  if (auto it = line.flags.find("etcd"); it != line.flags.end()) {
    o.etcd_endpoints = it->second;
  }
  if (auto it = line.flags.find("volume"); it != line.flags.end()) {
    o.volume_id = it->second;
  }
  if (o.action == "create" && o.volume_id.empty()) {
    return UsageError("snapshot create needs --volume, the volume to take",
                      err);
  }
  if (auto it = line.flags.find("timeout"); it != line.flags.end()) {
    if (!absl::ParseDuration(it->second, &o.timeout) ||
        o.timeout <= absl::ZeroDuration()) {
      return UsageError("--timeout must be a positive duration such as 5s",
                        err);
    }
  }
  return RunSnapshot(o, out, err);
}

int Disk(const CommandLine& line, std::ostream& out, std::ostream& err) {
  const std::vector<std::string>& p = line.positional;
  if (p.size() != 2 || (p[0] != "out" && p[0] != "in")) {
    return UsageError("disk wants an action, out or in, and one disk id", err);
  }
  int code = 0;
  if (!OnlyFlags(line, {"etcd", "timeout"}, err, &code)) return code;
  DiskOptions o;
  o.action = p[0];
  o.disk_id = p[1];
  o.etcd_endpoints = DefaultEtcd();
  if (auto it = line.flags.find("etcd"); it != line.flags.end()) {
    o.etcd_endpoints = it->second;
  }
  if (auto it = line.flags.find("timeout"); it != line.flags.end()) {
    if (!absl::ParseDuration(it->second, &o.timeout) ||
        o.timeout <= absl::ZeroDuration()) {
      return UsageError("--timeout must be a positive duration such as 5s",
                        err);
    }
  }
  return RunDisk(o, out, err);
}

int Chunk(const CommandLine& line, std::ostream& out, std::ostream& err) {
  if (line.positional.size() != 1 ||
      (line.positional[0] != "write" && line.positional[0] != "read" &&
       line.positional[0] != "list")) {
    return UsageError("chunk wants one action: write, read or list", err);
  }
  int code = 0;
  if (!OnlyFlags(line,
                 {"etcd", "timeout", "host", "disk", "volume", "index",
                  "offset", "length", "generation", "from", "to"},
                 err, &code)) {
    return code;
  }
  ChunkOptions o;
  o.action = line.positional[0];
  o.etcd_endpoints = DefaultEtcd();
  auto get = [&line](const char* name) {
    auto it = line.flags.find(name);
    return it == line.flags.end() ? std::string() : it->second;
  };
  if (!get("etcd").empty()) o.etcd_endpoints = get("etcd");
  o.host = get("host");
  o.disk = get("disk");
  o.volume = get("volume");
  o.from = get("from");
  o.to = get("to");
  if (!NumberFlag(line, "index", &o.index, err, &code) ||
      !NumberFlag(line, "offset", &o.offset, err, &code) ||
      !NumberFlag(line, "length", &o.length, err, &code) ||
      !NumberFlag(line, "generation", &o.generation, err, &code)) {
    return code;
  }
  if (auto it = line.flags.find("timeout"); it != line.flags.end()) {
    if (!absl::ParseDuration(it->second, &o.timeout) ||
        o.timeout <= absl::ZeroDuration()) {
      return UsageError("--timeout must be a positive duration such as 5s",
                        err);
    }
  }
  if (o.host.empty()) return UsageError("chunk needs --host", err);
  if (o.action != "list" && o.volume.empty()) {
    return UsageError("chunk needs --volume", err);
  }
  if (o.action == "write" && o.from.empty()) {
    return UsageError("chunk write needs --from=FILE", err);
  }
  if (o.action == "read" && o.to.empty()) {
    return UsageError("chunk read needs --to=FILE (or - for stdout)", err);
  }
  return RunChunk(o, out, err);
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out,
           std::ostream& err) {
  // The commands say what they did; the library's log is for trouble
  // (JUKE_LOG_LEVELS=info shows everything).
  const char* levels = std::getenv("JUKE_LOG_LEVELS");
  if (absl::Status s = SetLogLevels(levels != nullptr ? levels : "warn");
      !s.ok()) {
    return UsageError(absl::StrCat("JUKE_LOG_LEVELS: ", s.message()), err);
  }
  absl::StatusOr<CommandLine> line = ParseCommandLine(
      args,
      {"etcd", "output", "timeout", "host", "disk", "volume", "index", "offset",
       "length", "generation", "from", "to", "size", "replicas",
       "failure-domain", "node", "state-dir", "recovery-rate-mib"},
      {"take-over"});
  if (!line.ok()) return UsageError(line.status().message(), err);

  if (line->command == "version") {
    out << "juke " << kJukeVersion << "\n";
    return 0;
  }
  if (line->command == "help") {
    if (line->positional.empty()) {
      out << kUsage;
      return 0;
    }
    if (line->positional[0] == "status") {
      out << kStatusUsage;
      return 0;
    }
    if (line->positional[0] == "chunk") {
      out << kChunkUsage;
      return 0;
    }
    if (line->positional[0] == "volume") {
      out << kVolumeUsage;
      return 0;
    }
    if (line->positional[0] == "disk") {
      out << kDiskUsage;
      return 0;
    }
    if (line->positional[0] == "snapshot") {
      out << kSnapshotUsage;
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
  if (line->command == "volume") {
    if (line->help) {
      out << kVolumeUsage;
      return 0;
    }
    return Volume(*line, out, err);
  }
  if (line->command == "disk") {
    if (line->help) {
      out << kDiskUsage;
      return 0;
    }
    return Disk(*line, out, err);
  }
  if (line->command == "snapshot") {
    if (line->help) {
      out << kSnapshotUsage;
      return 0;
    }
    return Snapshot(*line, out, err);
  }
  if (line->command == "chunk") {
    if (line->help) {
      out << kChunkUsage;
      return 0;
    }
    return Chunk(*line, out, err);
  }
  return UsageError(absl::StrCat("unknown command \"", line->command, "\""),
                    err);
}

}  // namespace juke::cli
