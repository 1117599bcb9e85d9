#include "src/cli/volume_command.h"

#include <cstdint>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "src/cli/status_command.h"
#include "src/common/etcd_client.h"
#include "src/model/map_store.h"
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
    return 0;
  }

  // delete: refuse while attached, remove every chunk, then the record.
  absl::StatusOr<VolumeRecord> v = catalog.MarkDeleting(o.id);
  if (!v.ok()) return Fail(err, v.status().ToString());
  absl::StatusOr<ClusterMap> map = RefreshMap(**etcd);
  if (!map.ok()) return Fail(err, map.status().message());
  ChunkClientPool clients;
  absl::Status chunks = DeleteVolumeChunks(&clients, *map, o.id, v->generation);
  if (!chunks.ok()) {
    return Fail(err,
                absl::StrCat("volume ", o.id, " is marked deleting, but ",
                             chunks.message(),
                             "; run the delete again once the host is back"));
  }
  absl::Status removed = catalog.Remove(o.id);
  if (!removed.ok()) return Fail(err, removed.message());
  out << "deleted volume " << o.id << " and its chunks on every disk\n";
  return 0;
}

}  // namespace juke::cli
