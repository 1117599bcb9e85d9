#include "src/model/host_record.h"

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace juke {
namespace {

using Json = nlohmann::json;

bool IsUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;  // Cut short.
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF.
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

// Reads typed fields out of one JSON object, remembering the first
// problem instead of throwing.
class ObjectReader {
 public:
  ObjectReader(const Json& object, std::string where)
      : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) Fail("", "an object");
  }

  void String(const char* name, std::string* out) {
    const Json* v = Find(name);
    if (v == nullptr) return;
    if (!v->is_string()) return Fail(name, "a string");
    *out = v->get<std::string>();
  }

  void Unsigned(const char* name, uint64_t* out) {
    const Json* v = Find(name);
    if (v == nullptr) return;
    if (!v->is_number_unsigned()) return Fail(name, "a non-negative integer");
    *out = v->get<uint64_t>();
  }

  void Signed(const char* name, int64_t* out) {
    const Json* v = Find(name);
    if (v == nullptr) return;
    if (!v->is_number_integer() ||
        (v->is_number_unsigned() &&
         v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      return Fail(name, "an integer");
    }
    *out = v->get<int64_t>();
  }

  // Returns the array field, or nullptr when absent or not an array.
  const Json* Array(const char* name) {
    const Json* v = Find(name);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      Fail(name, "an array");
      return nullptr;
    }
    return v;
  }

  // Returns the object field, or nullptr when absent or not an object.
  const Json* Object(const char* name) {
    const Json* v = Find(name);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) {
      Fail(name, "an object");
      return nullptr;
    }
    return v;
  }

  const absl::Status& status() const { return status_; }

 private:
  // Absent and null fields read as empty.
  const Json* Find(const char* name) {
    if (!status_.ok() || !object_.is_object()) return nullptr;
    auto it = object_.find(name);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
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

Json ToJson(const HostRecord& r) {
  Json disks = Json::array();
  for (const DiskRecord& d : r.disks) {
    disks.push_back({{"diskId", d.disk_id},
                     {"path", d.path},
                     {"state", d.state},
                     {"capacityBytes", d.capacity_bytes},
                     {"usedBytes", d.used_bytes},
                     {"availableBytes", d.available_bytes},
                     {"chunkCount", d.chunk_count},
                     {"filesystem", d.filesystem}});
  }
  return {{"hostId", r.host_id},
          {"poolId", r.pool_id},
          {"address", r.address},
          {"labels",
           {{"region", r.labels.region},
            {"zone", r.labels.zone},
            {"cluster", r.labels.cluster},
            {"host", r.labels.host}}},
          {"disks", std::move(disks)},
          {"startedAt", r.started_at},
          {"version", r.version}};
}

// The one place where nlohmann's exceptions (invalid UTF-8 on output) are
// turned into a status.
absl::StatusOr<std::string> Dump(const Json& json, absl::string_view what) {
  try {
    return json.dump();
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("encode ", what, ": ", e.what()));
  }
}

}  // namespace

void DiskSpaceSum::Add(const DiskRecord& disk) {
  if (!disk.filesystem.empty() &&
      !filesystems_.insert(disk.filesystem).second) {
    ++shared_disks_;
    return;
  }
  capacity_bytes_ += disk.capacity_bytes;
  available_bytes_ += disk.available_bytes;
}

absl::Status ValidateHostRecord(const HostRecord& r) {
  if (r.host_id.empty() || r.host_id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("host id must have 1 to ",
                                                   kMaxIdLength, " bytes, has ",
                                                   r.host_id.size()));
  }
  if (r.pool_id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "host ", r.host_id, ": pool id longer than ", kMaxIdLength));
  }
  if (r.address.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("host ", r.host_id, ": no address"));
  }
  std::set<std::string> disk_ids;
  for (const DiskRecord& d : r.disks) {
    if (d.disk_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("host ", r.host_id, ": disk without id"));
    }
    if (!disk_ids.insert(d.disk_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("host ", r.host_id, ": disk ", d.disk_id, " twice"));
    }
    if (d.state != kDiskHealthy && d.state != kDiskDegraded &&
        d.state != kDiskFailed) {
      return absl::InvalidArgumentError(
          absl::StrCat("host ", r.host_id, ": disk ", d.disk_id,
                       ": unknown state \"", d.state, "\""));
    }
  }
  std::vector<absl::string_view> strings = {
      r.host_id,     r.pool_id,        r.address,     r.labels.region,
      r.labels.zone, r.labels.cluster, r.labels.host, r.version};
  for (const DiskRecord& d : r.disks) {
    strings.push_back(d.disk_id);
    strings.push_back(d.path);
    strings.push_back(d.filesystem);
  }
  for (absl::string_view s : strings) {
    if (!IsUtf8(s)) {
      return absl::InvalidArgumentError(
          absl::StrCat("host record: string is not valid UTF-8"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> EncodeHostRecord(const HostRecord& record) {
  return Dump(ToJson(record), "host record");
}

absl::StatusOr<HostRecord> DecodeHostRecord(absl::string_view text) {
  Json json = Json::parse(text.begin(), text.end(), /*cb=*/nullptr,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError("host record is not valid JSON");
  }

  HostRecord r;
  ObjectReader top(json, "host record");
  top.String("hostId", &r.host_id);
  top.String("poolId", &r.pool_id);
  top.String("address", &r.address);
  top.Signed("startedAt", &r.started_at);
  top.String("version", &r.version);
  if (const Json* labels = top.Object("labels")) {
    ObjectReader l(*labels, "host record.labels");
    l.String("region", &r.labels.region);
    l.String("zone", &r.labels.zone);
    l.String("cluster", &r.labels.cluster);
    l.String("host", &r.labels.host);
    if (!l.status().ok()) return l.status();
  }
  if (const Json* disks = top.Array("disks")) {
    for (size_t i = 0; i < disks->size(); ++i) {
      DiskRecord d;
      ObjectReader dr((*disks)[i], absl::StrCat("host record.disks[", i, "]"));
      dr.String("diskId", &d.disk_id);
      dr.String("path", &d.path);
      dr.String("state", &d.state);
      dr.Unsigned("capacityBytes", &d.capacity_bytes);
      dr.Unsigned("usedBytes", &d.used_bytes);
      dr.Unsigned("availableBytes", &d.available_bytes);
      dr.Unsigned("chunkCount", &d.chunk_count);
      dr.String("filesystem", &d.filesystem);
      if (!dr.status().ok()) return dr.status();
      r.disks.push_back(std::move(d));
    }
  }
  if (!top.status().ok()) return top.status();
  if (r.host_id.empty()) {
    return absl::InvalidArgumentError("host record has no hostId");
  }
  return r;
}

absl::StatusOr<std::string> EncodeAliveRecord(absl::string_view host_id,
                                              absl::string_view address,
                                              int64_t lease_id,
                                              int64_t since_unix_seconds) {
  Json json = {{"hostId", std::string(host_id)},
               {"address", std::string(address)},
               {"leaseId", lease_id},
               {"since", since_unix_seconds}};
  return Dump(json, "alive record");
}

}  // namespace juke
