#include "src/cli/status_command.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

#include "src/common/etcd_client.h"
#include "src/model/map_store.h"

namespace juke::cli {
namespace {

using Json = nlohmann::json;

struct Totals {
  uint64_t hosts = 0, hosts_up = 0;
  uint64_t disks = 0, healthy = 0, degraded = 0, failed = 0;
  uint64_t capacity = 0, used = 0, available = 0, chunks = 0;
  uint64_t shared = 0;  // Disks whose file system another disk counted.
};

Totals Sum(const std::vector<HostStatus>& hosts) {
  Totals t;
  DiskSpaceSum space;
  for (const HostStatus& h : hosts) {
    ++t.hosts;
    if (h.up) ++t.hosts_up;
    for (const DiskRecord& d : h.record.disks) {
      ++t.disks;
      if (d.state == kDiskHealthy) ++t.healthy;
      if (d.state == kDiskDegraded) ++t.degraded;
      if (d.state == kDiskFailed) ++t.failed;
      space.Add(d);
      t.used += d.used_bytes;
      t.chunks += d.chunk_count;
    }
  }
  t.capacity = space.capacity_bytes();
  t.available = space.available_bytes();
  t.shared = space.shared_disks();
  return t;
}

void SortHosts(std::vector<HostStatus>& hosts) {
  std::sort(hosts.begin(), hosts.end(),
            [](const HostStatus& a, const HostStatus& b) {
              return std::tie(a.record.pool_id, a.record.host_id) <
                     std::tie(b.record.pool_id, b.record.host_id);
            });
}

std::string Labels(const HostLabels& l) {
  std::vector<std::string> parts;
  if (!l.region.empty()) parts.push_back("region=" + l.region);
  if (!l.zone.empty()) parts.push_back("zone=" + l.zone);
  if (!l.cluster.empty()) parts.push_back("cluster=" + l.cluster);
  if (!l.host.empty()) parts.push_back("host=" + l.host);
  return absl::StrJoin(parts, " ");
}

// Prints rows as columns two spaces apart, without trailing blanks. A row
// of one cell is a note that spans the columns and does not widen them.
void PrintTable(const std::vector<std::vector<std::string>>& rows,
                std::string* out) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (row.size() < 2) continue;
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) {
        line.append(widths[i] - row[i].size() + 2, ' ');
      }
    }
    absl::StrAppend(out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
}

std::string TotalsLine(const Totals& t) {
  return absl::StrCat(
      "Total: ", t.hosts, t.hosts == 1 ? " host" : " hosts", " (", t.hosts_up,
      " up, ", t.hosts - t.hosts_up, " down), ", t.disks,
      t.disks == 1 ? " disk" : " disks", " (", t.healthy, " healthy, ",
      t.degraded, " degraded, ", t.failed, " failed), capacity ",
      HumanBytes(t.capacity), ", used ", HumanBytes(t.used), ", available ",
      HumanBytes(t.available), ", ", t.chunks, " chunks\n",
      t.shared == 0
          ? ""
          : absl::StrCat("(", t.shared,
                         t.shared == 1 ? " disk shares" : " disks share",
                         " a file system with another disk; "
                         "its space is counted once)\n"));
}

Json TotalsJson(const Totals& t) {
  return {{"hosts", t.hosts},
          {"hostsUp", t.hosts_up},
          {"hostsDown", t.hosts - t.hosts_up},
          {"disks", t.disks},
          {"disksHealthy", t.healthy},
          {"disksDegraded", t.degraded},
          {"disksFailed", t.failed},
          {"capacityBytes", t.capacity},
          {"usedBytes", t.used},
          {"availableBytes", t.available},
          {"chunkCount", t.chunks},
          {"disksSharingAFileSystem", t.shared}};
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB",
                                           "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  // Rounding to one decimal could print "1024.0 KiB"; move up a unit then.
  while (value >= 1023.95 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string FormatStatusText(std::vector<HostStatus> hosts,
                             const DiskOverrides& overrides) {
  SortHosts(hosts);
  std::string out;
  if (hosts.empty()) {
    return "No hosts registered.\n";
  }

  size_t i = 0;
  while (i < hosts.size()) {
    // One table per pool.
    const std::string& pool = hosts[i].record.pool_id;
    std::vector<HostStatus> members;
    for (; i < hosts.size() && hosts[i].record.pool_id == pool; ++i) {
      members.push_back(hosts[i]);
    }
    Totals pool_totals = Sum(members);
    absl::StrAppend(&out, "Pool ", pool.empty() ? "(none)" : pool, ": ",
                    pool_totals.hosts_up, "/", pool_totals.hosts,
                    " hosts up\n");

    std::vector<std::vector<std::string>> rows = {
        {"HOST/DISK", "STATE", "ADDRESS/PATH", "CAPACITY", "USED", "AVAILABLE",
         "CHUNKS", "LABELS"}};
    std::vector<std::string> errors;
    for (const HostStatus& h : members) {
      Totals t = Sum({h});
      rows.push_back({h.record.host_id, h.up ? "up" : "down", h.record.address,
                      HumanBytes(t.capacity), HumanBytes(t.used),
                      HumanBytes(t.available), absl::StrCat(t.chunks),
                      Labels(h.record.labels)});
      if (!h.error.empty()) {
        rows.push_back({"  (unreadable record: " + h.error + ")"});
      }
      for (const DiskRecord& d : h.record.disks) {
        auto o = overrides.find(d.disk_id);
        bool out_of_pool =
            o != overrides.end() && o->second.in.has_value() && !*o->second.in;
        rows.push_back({"  " + d.disk_id,
                        out_of_pool ? absl::StrCat(d.state, ",out") : d.state,
                        d.path, HumanBytes(d.capacity_bytes),
                        HumanBytes(d.used_bytes), HumanBytes(d.available_bytes),
                        absl::StrCat(d.chunk_count)});
      }
    }
    PrintTable(rows, &out);
    out += "\n";
  }
  out += TotalsLine(Sum(hosts));
  return out;
}

std::string FormatStatusJson(std::vector<HostStatus> hosts) {
  SortHosts(hosts);
  Json list = Json::array();
  for (const HostStatus& h : hosts) {
    // The stored format, so scripts see the same fields as in etcd.
    absl::StatusOr<std::string> encoded = EncodeHostRecord(h.record);
    Json host = encoded.ok()
                    ? Json::parse(*encoded, nullptr, /*allow_exceptions=*/false)
                    : Json::object();
    if (host.is_discarded()) host = Json::object();
    host["hostId"] = h.record.host_id;
    host["up"] = h.up;
    if (!h.error.empty()) host["error"] = h.error;
    list.push_back(std::move(host));
  }
  Json report = {{"hosts", std::move(list)},
                 {"totals", TotalsJson(Sum(hosts))}};
  // Ids from keys of unreadable records may not be UTF-8; replace such
  // bytes rather than fail (dump throws otherwise).
  return report.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

int RunStatus(const StatusOptions& options, std::ostream& out,
              std::ostream& err) {
  EtcdClientOptions client_options;
  client_options.timeout = options.timeout;
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Create(options.etcd_endpoints, client_options);
  if (!etcd.ok()) {
    err << "juke: --etcd: " << etcd.status().message() << "\n";
    return 2;
  }

  absl::StatusOr<std::vector<HostStatus>> hosts = ListHosts(**etcd);
  if (!hosts.ok()) {
    const absl::Status& s = hosts.status();
    if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
      err << "juke: cannot reach etcd at " << options.etcd_endpoints << ": "
          << s.message() << "\n";
    } else {
      err << "juke: reading the pool from etcd at " << options.etcd_endpoints
          << ": " << s.message() << "\n";
    }
    return 1;
  }

  if (options.json) {
    out << FormatStatusJson(std::move(*hosts));
    return 0;
  }
  // Best effort: without the overrides the table just shows no "out".
  absl::StatusOr<DiskOverrides> overrides = LoadDiskOverrides(**etcd);
  out << FormatStatusText(std::move(*hosts),
                          overrides.ok() ? *overrides : DiskOverrides());
  return 0;
}

}  // namespace juke::cli
