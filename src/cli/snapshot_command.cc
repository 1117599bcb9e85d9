#include "src/cli/snapshot_command.h"

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

#include "src/cli/status_command.h"
#include "src/common/etcd_client.h"
#include "src/volume/snapshots.h"

namespace juke::cli {
namespace {

constexpr char kRow[] = "%-24s %-24s %10s  %-9s %-20s  %s";

int Fail(std::ostream& err, absl::string_view message) {
  err << "juke snapshot: " << message << "\n";
  return 1;
}

// Where its chunks are placed, and how many replicas still lack them
// (the daemons copy those in; docs/snapshots.md, "Moving snapshots").
std::string Placement(const SnapshotRecord& s) {
  std::string placed = absl::StrCat("epoch ", s.placement_epoch);
  if (!s.stale.empty()) {
    absl::StrAppend(&placed, ", ", s.stale.size(), " stale");
  }
  if (!s.absent_disks.empty()) {
    absl::StrAppend(&placed, ", ", s.absent_disks.size(), " disks absent");
  }
  return placed;
}

std::string Describe(const SnapshotRecord& s) {
  return absl::StrFormat(kRow, s.id, s.source_volume_id,
                         HumanBytes(s.size_bytes), SnapshotStateName(s.state),
                         Placement(s),
                         absl::FormatTime("%Y-%m-%dT%H:%M:%SZ",
                                          absl::FromUnixSeconds(s.created_at),
                                          absl::UTCTimeZone()));
}

}  // namespace

int RunSnapshot(const SnapshotOptions& o, std::ostream& out,
                std::ostream& err) {
  EtcdClientOptions eo;
  eo.timeout = o.timeout;
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Create(o.etcd_endpoints, eo);
  if (!etcd.ok()) return Fail(err, etcd.status().message());

  if (o.action == "list") {
    SnapshotCatalog snapshots(etcd->get());
    absl::StatusOr<std::vector<SnapshotRecord>> all = snapshots.List();
    if (!all.ok()) return Fail(err, all.status().message());
    out << absl::StrFormat(kRow, "SNAPSHOT", "VOLUME", "SIZE", "STATE",
                           "PLACEMENT", "CREATED")
        << "\n";
    for (const SnapshotRecord& s : *all) {
      if (!o.volume_id.empty() && s.source_volume_id != o.volume_id) continue;
      out << Describe(s) << "\n";
    }
    return 0;
  }

  ChunkClientPool clients;
  if (o.action == "create") {
    VolumeCatalog catalog(etcd->get());
    absl::StatusOr<SnapshotRecord> s =
        CreateSnapshot(&catalog, etcd->get(), &clients, o.id, o.volume_id);
    if (!s.ok()) return Fail(err, s.status().ToString());
    out << "created snapshot " << s->id << " of volume " << s->source_volume_id
        << " (" << HumanBytes(s->size_bytes) << ")\n";
    return 0;
  }

  absl::Status deleted = DeleteSnapshot(etcd->get(), &clients, o.id);
  if (absl::IsUnavailable(deleted)) {
    return Fail(err, absl::StrCat(deleted.message(),
                                  "; run the delete again once the host is "
                                  "back"));
  }
  if (!deleted.ok()) return Fail(err, deleted.ToString());
  out << "deleted snapshot " << o.id << "\n";
  return 0;
}

}  // namespace juke::cli
