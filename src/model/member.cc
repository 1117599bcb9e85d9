#include "src/model/member.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "src/common/status.h"
#include "src/model/keys.h"

namespace juke {
namespace {

using Json = nlohmann::json;

constexpr std::pair<MemberState, absl::string_view> kStateNames[] = {
    {MemberState::kActive, "active"},
    {MemberState::kDraining, "draining"},
    {MemberState::kLeaving, "leaving"},
};

// Reads the string field `name` into `out`; absent is empty.
absl::Status ReadString(const Json& object, const char* name,
                        std::string* out) {
  auto it = object.find(name);
  if (it == object.end()) return absl::OkStatus();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("member record: field '", name, "' is not a string"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

}  // namespace

absl::string_view MemberStateName(MemberState state) {
  for (const auto& [s, name] : kStateNames) {
    if (s == state) return name;
  }
  return "unknown";
}

absl::StatusOr<MemberState> ParseMemberState(absl::string_view name) {
  for (const auto& [s, n] : kStateNames) {
    if (n == name) return s;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown member state '", name,
                   "'; expected active, draining or leaving"));
}

std::string MemberKey(absl::string_view host_id) {
  return absl::StrCat(kMembersPrefix, EscapeKeySegment(host_id));
}

absl::StatusOr<std::string> EncodeMember(const MemberRecord& m) {
  if (m.host_id.empty() || m.cluster.empty()) {
    return absl::InvalidArgumentError(
        "member record needs a host id and a cluster");
  }
  Json j = {{"hostId", m.host_id},
            {"cluster", m.cluster},
            {"region", m.region},
            {"zone", m.zone},
            {"state", std::string(MemberStateName(m.state))},
            {"down", m.down},
            {"reason", m.reason}};
  if (m.disks.has_value()) {
    Json disks = Json::array();
    for (const MemberDisk& d : *m.disks) {
      Json disk = {{"path", d.path}};
      if (d.weight.has_value()) disk["weight"] = *d.weight;
      disks.push_back(std::move(disk));
    }
    j["disks"] = std::move(disks);
  }
  try {
    return j.dump();
  } catch (const Json::exception&) {
    return absl::InvalidArgumentError(
        absl::StrCat("member record of host '", absl::CHexEscape(m.host_id),
                     "' holds a string that is not valid UTF-8"));
  }
}

absl::StatusOr<MemberRecord> DecodeMember(absl::string_view json) {
  Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    return absl::InvalidArgumentError("member record is not a JSON object");
  }
  MemberRecord m;
  std::string state = "active";
  JUKE_RETURN_IF_ERROR(ReadString(j, "hostId", &m.host_id));
  JUKE_RETURN_IF_ERROR(ReadString(j, "cluster", &m.cluster));
  JUKE_RETURN_IF_ERROR(ReadString(j, "region", &m.region));
  JUKE_RETURN_IF_ERROR(ReadString(j, "zone", &m.zone));
  JUKE_RETURN_IF_ERROR(ReadString(j, "state", &state));
  JUKE_RETURN_IF_ERROR(ReadString(j, "reason", &m.reason));
  if (auto it = j.find("down"); it != j.end()) {
    if (!it->is_boolean()) {
      return absl::InvalidArgumentError(
          "member record: field 'down' is not a boolean");
    }
    m.down = it->get<bool>();
  }
  if (auto it = j.find("disks"); it != j.end()) {
    if (!it->is_array()) {
      return absl::InvalidArgumentError(
          "member record: field 'disks' is not an array");
    }
    m.disks.emplace();
    for (const Json& d : *it) {
      MemberDisk disk;
      if (!d.is_object()) {
        return absl::InvalidArgumentError(
            "member record: a disk is not an object");
      }
      JUKE_RETURN_IF_ERROR(ReadString(d, "path", &disk.path));
      if (auto w = d.find("weight"); w != d.end()) {
        if (!w->is_number() || w->get<double>() < 0) {
          return absl::InvalidArgumentError(
              "member record: a disk's weight is not a number >= 0");
        }
        disk.weight = w->get<double>();
      }
      m.disks->push_back(std::move(disk));
    }
  }
  if (m.host_id.empty()) {
    return absl::InvalidArgumentError("member record without a host id");
  }
  JUKE_ASSIGN_OR_RETURN(m.state, ParseMemberState(state));
  return m;
}

absl::StatusOr<Members> LoadMembers(EtcdClient& etcd) {
  absl::StatusOr<std::vector<EtcdKeyValue>> kvs =
      etcd.GetPrefix(kMembersPrefix);
  if (!kvs.ok()) return Annotate(kvs.status(), "load members");
  Members members;
  for (const EtcdKeyValue& kv : *kvs) {
    absl::StatusOr<MemberRecord> m = DecodeMember(kv.value);
    if (!m.ok()) return Annotate(m.status(), kv.key);
    if (MemberKey(m->host_id) != kv.key) {
      return absl::InvalidArgumentError(
          absl::StrCat(kv.key, ": holds the record of host '",
                       absl::CHexEscape(m->host_id), "'"));
    }
    std::string host_id = m->host_id;
    members.emplace(std::move(host_id), *std::move(m));
  }
  return members;
}

absl::Status PutMember(EtcdClient& etcd, const MemberRecord& member) {
  JUKE_ASSIGN_OR_RETURN(std::string value, EncodeMember(member));
  return Annotate(etcd.Put(MemberKey(member.host_id), value),
                  absl::StrCat("write member record of ", member.host_id));
}

absl::Status DeleteMember(EtcdClient& etcd, absl::string_view host_id) {
  absl::StatusOr<bool> deleted = etcd.Delete(MemberKey(host_id));
  if (!deleted.ok()) {
    return Annotate(deleted.status(),
                    absl::StrCat("delete member record of ", host_id));
  }
  return absl::OkStatus();
}

}  // namespace juke
