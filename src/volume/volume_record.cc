#include "src/volume/volume_record.h"

#include <exception>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

#include "src/model/keys.h"

namespace juke {

absl::Status ValidateVolumeId(absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError("volume id is empty");
  if (id.size() > kMaxVolumeIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "volume id is ", id.size(), " bytes; at most ", kMaxVolumeIdLength));
  }
  if (id == "." || id == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("volume id \"", id, "\" is not allowed"));
  }
  for (char c : id) {
    unsigned char u = static_cast<unsigned char>(c);
    if (!absl::ascii_isalnum(u) && c != '.' && c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("volume id \"", absl::CHexEscape(id),
                       "\" has a character outside [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateVolumeShape(const VolumeRecord& r) {
  if (absl::Status s = ValidateVolumeId(r.id); !s.ok()) return s;
  if (r.chunk_size < kMinChunkSize || r.chunk_size > kMaxChunkSize ||
      (r.chunk_size & (r.chunk_size - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk size ", r.chunk_size,
                     " is not a power of two from 64 KiB to 64 MiB"));
  }
  if (r.size_bytes == 0) {
    return absl::InvalidArgumentError("volume size is 0");
  }
  if (r.size_bytes > kMaxVolumeSize) {
    return absl::OutOfRangeError(
        absl::StrCat("volume size ", r.size_bytes, " is above the limit of ",
                     kMaxVolumeSize, " bytes (1 PiB)"));
  }
  if (r.size_bytes % r.chunk_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("volume size ", r.size_bytes,
                     " is not a multiple of the chunk size ", r.chunk_size));
  }
  if (r.replicas < 1 || r.replicas > 5) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas is ", r.replicas, "; use 1 to 5"));
  }
  // 0: no other count asked for.
  for (int n : {r.moving_to_replicas, r.wanted_replicas}) {
    if (n < 0 || n > 5) {
      return absl::InvalidArgumentError(
          absl::StrCat("replica count ", n, " to move to is not 1 to 5"));
    }
  }
  return absl::OkStatus();
}

absl::string_view VolumeStateName(VolumeState state) {
  return state == VolumeState::kReady ? "ready" : "deleting";
}

absl::StatusOr<std::string> EncodeVolumeRecord(const VolumeRecord& r) {
  nlohmann::json j = {
      {"id", r.id},
      {"sizeBytes", r.size_bytes},
      {"replicas", r.replicas},
      {"failureDomain", std::string(FailureDomainName(r.failure_domain))},
      {"chunkSize", r.chunk_size},
      {"state", std::string(VolumeStateName(r.state))},
      {"createdAt", r.created_at},
      {"generation", r.generation},
      {"placementEpoch", r.placement_epoch},
  };
  if (r.moving_to_epoch != 0) j["movingToEpoch"] = r.moving_to_epoch;
  if (r.leaving_epoch != 0) j["leavingEpoch"] = r.leaving_epoch;
  if (r.moving_to_replicas != 0) j["movingToReplicas"] = r.moving_to_replicas;
  if (r.wanted_replicas != 0) j["wantedReplicas"] = r.wanted_replicas;
  if (r.source.has_value()) {
    j["source"] = {
        {"kind", r.source->kind == VolumeSource::Kind::kSnapshot ? "snapshot"
                                                                 : "volume"},
        {"id", r.source->id}};
  }
  if (r.populating) j["populating"] = true;
  if (r.barrier.has_value()) {
    j["snapshotBarrier"] = {{"snapshotId", r.barrier->snapshot_id},
                            {"generation", r.barrier->generation},
                            {"until", r.barrier->until}};
  }
  if (r.attachment.has_value()) {
    j["attachment"] = {{"node", r.attachment->node},
                       {"readOnly", r.attachment->read_only},
                       {"generation", r.attachment->generation},
                       {"attachedAt", r.attachment->attached_at}};
  }
  // Every id and node name was validated as ASCII, so dump cannot throw.
  return j.dump();
}

absl::StatusOr<VolumeRecord> DecodeVolumeRecord(absl::string_view json) {
  // nlohmann reports malformed input by throwing; this is the one place
  // where that becomes a Status.
  try {
    nlohmann::json j = nlohmann::json::parse(json.begin(), json.end());
    VolumeRecord r;
    r.id = j.at("id").get<std::string>();
    r.size_bytes = j.at("sizeBytes").get<uint64_t>();
    r.replicas = j.at("replicas").get<int>();
    absl::StatusOr<FailureDomain> level =
        ParseFailureDomain(j.at("failureDomain").get<std::string>());
    if (!level.ok()) return level.status();
    r.failure_domain = *level;
    r.chunk_size = j.at("chunkSize").get<uint64_t>();
    std::string state = j.at("state").get<std::string>();
    if (state == "ready") {
      r.state = VolumeState::kReady;
    } else if (state == "deleting") {
      r.state = VolumeState::kDeleting;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("volume record has unknown state \"", state, "\""));
    }
    r.created_at = j.at("createdAt").get<int64_t>();
    r.generation = j.at("generation").get<uint64_t>();
    r.placement_epoch = j.value("placementEpoch", uint64_t{0});
    r.moving_to_epoch = j.value("movingToEpoch", uint64_t{0});
    r.leaving_epoch = j.value("leavingEpoch", uint64_t{0});
    r.moving_to_replicas = j.value("movingToReplicas", 0);
    r.wanted_replicas = j.value("wantedReplicas", 0);
    if (j.contains("source")) {
      const nlohmann::json& src = j.at("source");
      std::string kind = src.at("kind").get<std::string>();
      if (kind != "snapshot" && kind != "volume") {
        return absl::InvalidArgumentError(absl::StrCat(
            "volume record has unknown source kind \"", kind, "\""));
      }
      r.source = VolumeSource{kind == "snapshot" ? VolumeSource::Kind::kSnapshot
                                                 : VolumeSource::Kind::kVolume,
                              src.at("id").get<std::string>()};
    }
    r.populating = j.value("populating", false);
    if (j.contains("snapshotBarrier")) {
      const nlohmann::json& b = j.at("snapshotBarrier");
      r.barrier = SnapshotBarrier{b.at("snapshotId").get<std::string>(),
                                  b.at("generation").get<uint64_t>(),
                                  b.at("until").get<int64_t>()};
    }
    if (j.contains("attachment")) {
      const nlohmann::json& a = j.at("attachment");
      r.attachment = Attachment{a.at("node").get<std::string>(),
                                a.at("readOnly").get<bool>(),
                                a.at("generation").get<uint64_t>(),
                                a.at("attachedAt").get<int64_t>()};
    }
    if (absl::Status s = ValidateVolumeShape(r); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("volume record is invalid: ", s.message()));
    }
    return r;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("volume record is not valid JSON: ", e.what()));
  }
}

std::string VolumeKey(absl::string_view volume_id) {
  return absl::StrCat(kVolumesPrefix, EscapeKeySegment(volume_id));
}

std::string StaleVolumePrefix(absl::string_view volume_id) {
  return absl::StrCat(kStalePrefix, EscapeKeySegment(volume_id), "/");
}

std::string StaleKey(absl::string_view volume_id, uint64_t chunk_index,
                     absl::string_view disk_id) {
  return absl::StrCat(StaleVolumePrefix(volume_id),
                      absl::StrFormat("%020d", chunk_index), "/",
                      EscapeKeySegment(disk_id));
}

std::string DirtyVolumePrefix(absl::string_view volume_id) {
  return absl::StrCat(kDirtyPrefix, EscapeKeySegment(volume_id), "/");
}

std::string DirtyKey(absl::string_view volume_id, uint64_t chunk_index) {
  return absl::StrCat(DirtyVolumePrefix(volume_id),
                      absl::StrFormat("%020d", chunk_index));
}

}  // namespace juke
