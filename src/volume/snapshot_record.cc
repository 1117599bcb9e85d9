#include "src/volume/snapshot_record.h"

#include <exception>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

#include "src/model/keys.h"
#include "src/volume/volume_record.h"

namespace juke {

absl::string_view SnapshotStateName(SnapshotState state) {
  switch (state) {
    case SnapshotState::kCreating:
      return "creating";
    case SnapshotState::kReady:
      return "ready";
    case SnapshotState::kDeleting:
      return "deleting";
  }
  return "unknown";
}

absl::StatusOr<std::string> EncodeSnapshotRecord(const SnapshotRecord& r) {
  nlohmann::json stale = nlohmann::json::array();
  for (const auto& [chunk, disk] : r.stale) stale.push_back({chunk, disk});
  nlohmann::json j = {
      {"id", r.id},
      {"sourceVolumeId", r.source_volume_id},
      {"sizeBytes", r.size_bytes},
      {"replicas", r.replicas},
      {"failureDomain", std::string(FailureDomainName(r.failure_domain))},
      {"chunkSize", r.chunk_size},
      {"state", std::string(SnapshotStateName(r.state))},
      {"createdAt", r.created_at},
      {"epoch", r.epoch},
      {"placementEpoch", r.placement_epoch},
      {"stale", stale},
      {"absentDisks", r.absent_disks},
  };
  // Disk ids come from labels and may hold any byte: never throw on them.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<SnapshotRecord> DecodeSnapshotRecord(absl::string_view json) {
  // nlohmann reports malformed input by throwing; this is the one place
  // where that becomes a Status.
  try {
    nlohmann::json j = nlohmann::json::parse(json.begin(), json.end());
    SnapshotRecord r;
    r.id = j.at("id").get<std::string>();
    r.source_volume_id = j.at("sourceVolumeId").get<std::string>();
    r.size_bytes = j.at("sizeBytes").get<uint64_t>();
    r.replicas = j.at("replicas").get<int>();
    absl::StatusOr<FailureDomain> level =
        ParseFailureDomain(j.at("failureDomain").get<std::string>());
    if (!level.ok()) return level.status();
    r.failure_domain = *level;
    r.chunk_size = j.at("chunkSize").get<uint64_t>();
    std::string state = j.at("state").get<std::string>();
    if (state == "creating") {
      r.state = SnapshotState::kCreating;
    } else if (state == "ready") {
      r.state = SnapshotState::kReady;
    } else if (state == "deleting") {
      r.state = SnapshotState::kDeleting;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot record has unknown state \"", state, "\""));
    }
    r.created_at = j.at("createdAt").get<int64_t>();
    r.epoch = j.value("epoch", uint64_t{0});
    r.placement_epoch = j.value("placementEpoch", uint64_t{0});
    if (j.contains("stale")) {
      for (const nlohmann::json& m : j.at("stale")) {
        r.stale.emplace(m.at(0).get<uint64_t>(), m.at(1).get<std::string>());
      }
    }
    if (j.contains("absentDisks")) {
      for (const nlohmann::json& d : j.at("absentDisks")) {
        r.absent_disks.insert(d.get<std::string>());
      }
    }
    if (absl::Status s = ValidateVolumeId(r.id); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot record has a bad id: ", s.message()));
    }
    return r;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot record is not valid JSON: ", e.what()));
  }
}

std::string SnapshotKey(absl::string_view snapshot_id) {
  return absl::StrCat(kSnapshotsPrefix, EscapeKeySegment(snapshot_id));
}

std::string SnapshotPinName(absl::string_view snapshot_id) {
  return absl::StrCat("snapshot/", snapshot_id);
}

}  // namespace juke
