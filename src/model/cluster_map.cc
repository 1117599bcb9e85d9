#include "src/model/cluster_map.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "src/common/logging.h"

namespace juke {
namespace {

using Json = nlohmann::json;

const Logger& Log() {
  static const Logger log = GetLogger("model");
  return log;
}

// Reads typed fields out of one JSON object. Absent and null fields leave
// the output alone; the first problem is kept instead of thrown.
class FieldReader {
 public:
  FieldReader(const Json& object, std::string where)
      : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) Fail("", "an object");
  }

  void String(const char* name, std::string* out) {
    const Json* v = Find(name);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(name, "a string");
    *out = v->get<std::string>();
  }

  void Bool(const char* name, bool* out) {
    const Json* v = Find(name);
    if (v == nullptr) return;
    if (!v->is_boolean()) return Fail(name, "a boolean");
    *out = v->get<bool>();
  }

  void OptionalBool(const char* name, std::optional<bool>* out) {
    bool b = false;
    if (Find(name) == nullptr) return;
    Bool(name, &b);
    *out = b;
  }

  void Double(const char* name, double* out) {
    const Json* v = Find(name);
    if (v == nullptr) return;
    if (!v->is_number()) return Fail(name, "a number");
    *out = v->get<double>();
  }

  void OptionalDouble(const char* name, std::optional<double>* out) {
    double d = 0;
    if (Find(name) == nullptr) return;
    Double(name, &d);
    *out = d;
  }

  void Unsigned(const char* name, uint64_t* out) {
    const Json* v = Find(name);
    if (v == nullptr) return;
    if (!v->is_number_unsigned()) return Fail(name, "a non-negative integer");
    *out = v->get<uint64_t>();
  }

  // The field when it is present and an array (or object), else nullptr.
  const Json* Array(const char* name) { return Typed(name, true); }
  const Json* Object(const char* name) { return Typed(name, false); }

  const absl::Status& status() const { return status_; }

 private:
  const Json* Find(const char* name) {
    if (!status_.ok() || !object_.is_object()) return nullptr;
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  const Json* Typed(const char* name, bool array) {
    const Json* v = Find(name);
    if (v == nullptr) return nullptr;
    if (array ? !v->is_array() : !v->is_object()) {
      Fail(name, array ? "an array" : "an object");
      return nullptr;
    }
    return v;
  }

  void Fail(absl::string_view name, absl::string_view expected) {
    if (!status_.ok()) return;
    status_ = absl::InvalidArgumentError(
        name.empty() ? absl::StrCat(where_, " is not ", expected)
                     : absl::StrCat(where_, ".", name, " is not ", expected));
  }

  const Json& object_;
  const std::string where_;
  absl::Status status_;
};

// The one place where nlohmann's exceptions (invalid UTF-8 on output) turn
// into a status.
absl::StatusOr<std::string> Dump(const Json& json, absl::string_view what) {
  try {
    return json.dump();
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("encode ", what, ": ", e.what()));
  }
}

absl::StatusOr<Json> Parse(absl::string_view text, absl::string_view what) {
  Json json = Json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not valid JSON"));
  }
  return json;
}

absl::Status CheckWeight(double weight, absl::string_view what) {
  // Written so that NaN fails too.
  if (!(weight >= 0 && weight <= kMaxDiskWeight)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": weight ", weight, " is not in [0, ", kMaxDiskWeight, "]"));
  }
  return absl::OkStatus();
}

Json LabelsToJson(const HostLabels& l) {
  return {{"region", l.region},
          {"zone", l.zone},
          {"cluster", l.cluster},
          {"host", l.host}};
}

// Whether host `a` should own a disk that host `b` lists too.
bool Preferred(const HostStatus& a, const HostStatus& b) {
  if (a.up != b.up) return a.up;
  return a.record.host_id < b.record.host_id;
}

}  // namespace

absl::StatusOr<ClusterMap> ClusterMap::Create(uint64_t epoch,
                                              std::vector<MapDisk> disks) {
  std::sort(disks.begin(), disks.end(), [](const MapDisk& a, const MapDisk& b) {
    return a.disk_id < b.disk_id;
  });
  for (size_t i = 0; i < disks.size(); ++i) {
    const MapDisk& d = disks[i];
    if (d.disk_id.empty()) {
      return absl::InvalidArgumentError("map: disk without id");
    }
    if (i > 0 && disks[i - 1].disk_id == d.disk_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("map: disk ", d.disk_id, " twice"));
    }
    if (d.host_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("map: disk ", d.disk_id, " has no host id"));
    }
    if (absl::Status s =
            CheckWeight(d.weight, absl::StrCat("map: disk ", d.disk_id));
        !s.ok()) {
      return s;
    }
  }
  return ClusterMap(epoch, std::move(disks));
}

bool ClusterMap::SamePlacement(const ClusterMap& other) const {
  return std::equal(disks_.begin(), disks_.end(), other.disks_.begin(),
                    other.disks_.end(), [](const MapDisk& a, const MapDisk& b) {
                      return a.disk_id == b.disk_id && a.host_id == b.host_id &&
                             a.labels == b.labels && a.weight == b.weight &&
                             a.in == b.in;
                    });
}

const MapDisk* ClusterMap::FindDisk(absl::string_view disk_id) const {
  auto it = std::lower_bound(
      disks_.begin(), disks_.end(), disk_id,
      [](const MapDisk& d, absl::string_view id) { return d.disk_id < id; });
  if (it == disks_.end() || it->disk_id != disk_id) return nullptr;
  return &*it;
}

ClusterMap ClusterMap::WithEpoch(uint64_t epoch) const {
  return ClusterMap(epoch, disks_);
}

absl::StatusOr<std::string> EncodeClusterMap(const ClusterMap& map) {
  Json disks = Json::array();
  for (const MapDisk& d : map.disks()) {
    disks.push_back({{"diskId", d.disk_id},
                     {"hostId", d.host_id},
                     {"address", d.address},
                     {"labels", LabelsToJson(d.labels)},
                     {"weight", d.weight},
                     {"up", d.up},
                     {"in", d.in}});
  }
  return Dump({{"epoch", map.epoch()}, {"disks", std::move(disks)}},
              "cluster map");
}

absl::StatusOr<ClusterMap> DecodeClusterMap(absl::string_view text) {
  absl::StatusOr<Json> json = Parse(text, "cluster map");
  if (!json.ok()) return json.status();

  uint64_t epoch = 0;
  std::vector<MapDisk> disks;
  FieldReader top(*json, "cluster map");
  top.Unsigned("epoch", &epoch);
  if (const Json* array = top.Array("disks")) {
    for (size_t i = 0; i < array->size(); ++i) {
      const std::string where = absl::StrCat("cluster map.disks[", i, "]");
      MapDisk d;
      FieldReader r((*array)[i], where);
      r.String("diskId", &d.disk_id);
      r.String("hostId", &d.host_id);
      r.String("address", &d.address);
      r.Double("weight", &d.weight);
      r.Bool("up", &d.up);
      r.Bool("in", &d.in);
      if (const Json* labels = r.Object("labels")) {
        FieldReader l(*labels, absl::StrCat(where, ".labels"));
        l.String("region", &d.labels.region);
        l.String("zone", &d.labels.zone);
        l.String("cluster", &d.labels.cluster);
        l.String("host", &d.labels.host);
        if (!l.status().ok()) return l.status();
      }
      if (!r.status().ok()) return r.status();
      disks.push_back(std::move(d));
    }
  }
  if (!top.status().ok()) return top.status();
  return ClusterMap::Create(epoch, std::move(disks));
}

absl::StatusOr<FailureDomain> ParseFailureDomain(absl::string_view name) {
  for (FailureDomain level : {FailureDomain::kHost, FailureDomain::kCluster,
                              FailureDomain::kZone, FailureDomain::kRegion}) {
    if (name == FailureDomainName(level)) return level;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown failure domain \"", name,
                   "\"; expected host, cluster, zone or region"));
}

absl::string_view FailureDomainName(FailureDomain level) {
  switch (level) {
    case FailureDomain::kHost:
      return "host";
    case FailureDomain::kCluster:
      return "cluster";
    case FailureDomain::kZone:
      return "zone";
    case FailureDomain::kRegion:
      return "region";
  }
  return "unknown";
}

std::string FailureDomainKey(const MapDisk& disk, FailureDomain level) {
  const HostLabels& l = disk.labels;
  // From the top down; each level adds one more label.
  const std::string* path[] = {&l.region, &l.zone, &l.cluster, &l.host};
  int depth = 0;
  switch (level) {
    case FailureDomain::kRegion:
      depth = 1;
      break;
    case FailureDomain::kZone:
      depth = 2;
      break;
    case FailureDomain::kCluster:
      depth = 3;
      break;
    case FailureDomain::kHost:
      depth = 4;
      break;
  }
  std::string key;
  for (int i = 0; i < depth; ++i) {
    absl::StrAppend(&key, path[i]->size(), ":", *path[i]);
  }
  return key;
}

absl::StatusOr<std::string> EncodeDiskOverride(const DiskOverride& o) {
  Json json = Json::object();
  if (o.in.has_value()) json["in"] = *o.in;
  if (o.weight.has_value()) json["weight"] = *o.weight;
  if (o.removed) json["removed"] = true;
  return Dump(json, "disk override");
}

absl::StatusOr<DiskOverride> DecodeDiskOverride(absl::string_view text) {
  absl::StatusOr<Json> json = Parse(text, "disk override");
  if (!json.ok()) return json.status();
  DiskOverride o;
  FieldReader r(*json, "disk override");
  r.OptionalBool("in", &o.in);
  r.OptionalDouble("weight", &o.weight);
  r.Bool("removed", &o.removed);
  if (!r.status().ok()) return r.status();
  if (o.weight.has_value()) {
    if (absl::Status s = CheckWeight(*o.weight, "disk override"); !s.ok()) {
      return s;
    }
  }
  return o;
}

double WeightFromCapacity(uint64_t capacity_bytes) {
  return static_cast<double>(capacity_bytes) / (uint64_t{1} << 30);
}

absl::StatusOr<ClusterMap> BuildMap(const std::vector<HostStatus>& hosts,
                                    const DiskOverrides& overrides,
                                    const ClusterMap* previous,
                                    const Members& members) {
  // Which host owns each disk id that some host lists, and its record
  // there.
  struct Owner {
    const HostStatus* host;
    const DiskRecord* disk;
  };
  std::map<std::string, Owner, std::less<>> owner;
  for (const HostStatus& h : hosts) {
    for (const DiskRecord& d : h.record.disks) {
      auto [it, inserted] = owner.emplace(d.disk_id, Owner{&h, &d});
      if (inserted) continue;
      JUKE_LOG_WARN(Log(),
                    "Disk listed by two hosts diskID={} hostID={} "
                    "otherHostID={}",
                    d.disk_id, it->second.host->record.host_id,
                    h.record.host_id);
      if (Preferred(h, *it->second.host)) it->second = Owner{&h, &d};
    }
  }

  // Disks that share a file system share its capacity.
  std::map<std::string, int, std::less<>> sharing;  // by file system
  for (const auto& [disk_id, o] : owner) {
    if (!o.disk->filesystem.empty()) ++sharing[o.disk->filesystem];
  }

  std::vector<MapDisk> disks;
  std::map<std::string, std::string, std::less<>> path;  // by disk id
  for (const auto& [disk_id, o] : owner) {
    const HostRecord& r = o.host->record;
    MapDisk d;
    d.disk_id = disk_id;
    d.host_id = r.host_id;
    d.address = r.address;
    d.labels = r.labels;
    if (d.labels.host.empty()) d.labels.host = r.host_id;
    d.weight = WeightFromCapacity(o.disk->capacity_bytes);
    if (!o.disk->filesystem.empty()) d.weight /= sharing[o.disk->filesystem];
    d.up = o.host->up && o.disk->state != kDiskFailed;
    path[disk_id] = o.disk->path;
    disks.push_back(std::move(d));
  }

  // Disks that no host lists any more stay, down, unless removed.
  if (previous != nullptr) {
    for (const MapDisk& p : previous->disks()) {
      if (owner.count(p.disk_id) > 0) continue;
      auto o = overrides.find(p.disk_id);
      if (o != overrides.end() && o->second.removed) continue;
      MapDisk d = p;
      d.up = false;
      disks.push_back(std::move(d));
    }
  }

  // Then what the host's Kubernetes cluster says about it. A disk its
  // JukeNode does not list is out.
  std::set<std::string, std::less<>> unlisted;
  for (MapDisk& d : disks) {
    auto m = members.find(d.host_id);
    if (m == members.end()) continue;
    const MemberRecord& member = m->second;
    d.labels.cluster = member.cluster;
    if (!member.region.empty()) d.labels.region = member.region;
    if (!member.zone.empty()) d.labels.zone = member.zone;
    if (member.down) d.up = false;
    if (member.disks.has_value()) {
      auto p = path.find(d.disk_id);
      const MemberDisk* listed = nullptr;
      for (const MemberDisk& md : *member.disks) {
        if (p != path.end() && md.path == p->second) listed = &md;
      }
      if (listed == nullptr) {
        unlisted.insert(d.disk_id);
      } else if (listed->weight.has_value()) {
        d.weight = *listed->weight;
      }
    }
  }

  // The admin's word comes last; a draining or leaving member is out too.
  for (MapDisk& d : disks) {
    auto m = members.find(d.host_id);
    bool leaving =
        m != members.end() && (m->second.state == MemberState::kDraining ||
                               m->second.state == MemberState::kLeaving);
    auto o = overrides.find(d.disk_id);
    const DiskOverride* over = o == overrides.end() ? nullptr : &o->second;
    d.in = !leaving && unlisted.count(d.disk_id) == 0 &&
           (over == nullptr || (over->in.value_or(true) && !over->removed));
    if (over != nullptr && over->weight.has_value()) d.weight = *over->weight;
  }
  return ClusterMap::Create(0, std::move(disks));
}

}  // namespace juke
