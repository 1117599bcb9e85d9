#include "src/csi/requests.h"

#include <xxhash.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "src/common/status.h"
#include "src/node/filesystem.h"
#include "src/volume/volume_record.h"

namespace juke::csi {
namespace {

using ::csi::v1::VolumeCapability;

constexpr uint64_t kDefaultSize = 1ull << 30;

absl::StatusOr<int> ParseReplicas(absl::string_view value) {
  if (value.size() != 1 || value[0] < '1' || value[0] > '5') {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter replicas must be 1 to 5, not \"",
                     absl::CHexEscape(value), "\""));
  }
  return value[0] - '0';
}

}  // namespace

std::string VolumeIdForName(absl::string_view name) {
  XXH128_hash_t h = XXH3_128bits(name.data(), name.size());
  return absl::StrFormat("csi-%016x%016x", h.high64, h.low64);
}

std::string SnapshotIdForName(absl::string_view name) {
  XXH128_hash_t h = XXH3_128bits(name.data(), name.size());
  return absl::StrFormat("snap-%016x%016x", h.high64, h.low64);
}

absl::StatusOr<uint64_t> SizeForRange(const ::csi::v1::CapacityRange* range,
                                      uint64_t chunk_size) {
  int64_t required = range != nullptr ? range->required_bytes() : 0;
  int64_t limit = range != nullptr ? range->limit_bytes() : 0;
  if (required < 0 || limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("capacity_range must not be negative (required_bytes ",
                     required, ", limit_bytes ", limit, ")"));
  }
  if (limit != 0 && limit < required) {
    return absl::InvalidArgumentError(
        absl::StrCat("capacity_range limit_bytes ", limit,
                     " is below required_bytes ", required));
  }
  const auto max = static_cast<int64_t>(kMaxVolumeSize);
  uint64_t size = 0;
  if (required == 0) {
    // No minimum: the default, or the largest size under the limit.
    size = kDefaultSize;
    if (limit != 0 && static_cast<uint64_t>(limit) < size) {
      size = static_cast<uint64_t>(limit) / chunk_size * chunk_size;
    }
  } else {
    if (required > max) {
      return absl::OutOfRangeError(
          absl::StrCat("required_bytes ", required,
                       " is above the largest volume, ", kMaxVolumeSize));
    }
    size = (static_cast<uint64_t>(required) + chunk_size - 1) / chunk_size *
           chunk_size;
  }
  if (size == 0 || (limit != 0 && size > static_cast<uint64_t>(limit))) {
    return absl::OutOfRangeError(absl::StrCat(
        "no volume size fits capacity_range [", required, ", ", limit,
        "]: sizes are multiples of ", chunk_size, " bytes"));
  }
  if (size > kMaxVolumeSize) {
    return absl::OutOfRangeError(absl::StrCat(
        "volume size ", size, " is above the largest, ", kMaxVolumeSize));
  }
  return size;
}

absl::StatusOr<uint64_t> ExpandedSize(const ::csi::v1::CapacityRange& range,
                                      uint64_t current, uint64_t chunk_size) {
  if (range.required_bytes() == 0 && range.limit_bytes() == 0) {
    return absl::InvalidArgumentError(
        "capacity_range asks for no size: set required_bytes");
  }
  uint64_t size = current;
  if (range.required_bytes() != 0 || range.limit_bytes() < 0) {
    JUKE_ASSIGN_OR_RETURN(uint64_t wanted, SizeForRange(&range, chunk_size));
    size = std::max(size, wanted);
  }
  const int64_t limit = range.limit_bytes();
  if (limit != 0 && size > static_cast<uint64_t>(limit)) {
    return absl::OutOfRangeError(absl::StrCat("volume is ", current,
                                              " bytes, above limit_bytes ",
                                              limit, "; volumes never shrink"));
  }
  return size;
}

absl::Status CheckCapability(const VolumeCapability& capability) {
  using Mode = VolumeCapability::AccessMode;
  switch (capability.access_mode().mode()) {
    case Mode::SINGLE_NODE_WRITER:
    case Mode::SINGLE_NODE_READER_ONLY:
    case Mode::MULTI_NODE_READER_ONLY:
    case Mode::SINGLE_NODE_SINGLE_WRITER:
    case Mode::SINGLE_NODE_MULTI_WRITER:
      break;
    case Mode::MULTI_NODE_SINGLE_WRITER:
    case Mode::MULTI_NODE_MULTI_WRITER:
      return absl::InvalidArgumentError(
          "access mode " +
          VolumeCapability::AccessMode::Mode_Name(
              capability.access_mode().mode()) +
          " is not supported: a volume has one writer node at a time");
    default:
      return absl::InvalidArgumentError(
          "volume_capability has no supported access_mode");
  }
  if (capability.has_block()) return absl::OkStatus();
  if (!capability.has_mount()) {
    return absl::InvalidArgumentError(
        "volume_capability needs an access_type, block or mount");
  }
  std::string fstype = FsType(capability);
  if (fstype != "ext4" && fstype != "xfs") {
    return absl::InvalidArgumentError(absl::StrCat(
        "fs_type \"", fstype, "\" is not supported; use ext4 or xfs"));
  }
  std::vector<std::string> flags(capability.mount().mount_flags().begin(),
                                 capability.mount().mount_flags().end());
  absl::StatusOr<node::MountParams> params =
      node::ParseMountOptions(fstype, flags, /*read_only=*/false);
  if (!params.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mount_flags: ", params.status().message()));
  }
  return absl::OkStatus();
}

std::string FsType(const VolumeCapability& capability) {
  const std::string& t = capability.mount().fs_type();
  return t.empty() ? "ext4" : t;
}

bool IsReadOnlyMode(const VolumeCapability& capability) {
  using Mode = VolumeCapability::AccessMode;
  Mode::Mode m = capability.access_mode().mode();
  return m == Mode::SINGLE_NODE_READER_ONLY ||
         m == Mode::MULTI_NODE_READER_ONLY;
}

absl::StatusOr<VolumeParameters> ParseParameters(
    const google::protobuf::Map<std::string, std::string>& parameters) {
  VolumeParameters p;
  for (const auto& [key, value] : parameters) {
    if (key == "replicas") {
      JUKE_ASSIGN_OR_RETURN(p.replicas, ParseReplicas(value));
    } else if (key == "failureDomain") {
      absl::StatusOr<FailureDomain> level = ParseFailureDomain(value);
      if (!level.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "parameter failureDomain: ", level.status().message()));
      }
      p.failure_domain = *level;
    } else if (!absl::StartsWith(key, "csi.storage.k8s.io/")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown parameter \"", absl::CHexEscape(key),
                       "\"; known: replicas, failureDomain"));
    }
  }
  return p;
}

absl::StatusOr<MutableParameters> ParseMutableParameters(
    const google::protobuf::Map<std::string, std::string>& parameters) {
  MutableParameters p;
  for (const auto& [key, value] : parameters) {
    if (key == "replicas") {
      JUKE_ASSIGN_OR_RETURN(p.replicas, ParseReplicas(value));
    } else if (!absl::StartsWith(key, "csi.storage.k8s.io/")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown mutable parameter \"", absl::CHexEscape(key),
                       "\"; known: replicas"));
    }
  }
  return p;
}

std::string EncodePageToken(absl::string_view last_id) {
  return absl::BytesToHexString(last_id);
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view token) {
  auto bad = [&] {
    return absl::AbortedError(
        "starting_token is not one that this plugin handed out");
  };
  if (token.size() % 2 != 0 || token.size() > 2 * kMaxVolumeIdLength) {
    return bad();
  }
  for (char c : token) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) ||
        absl::ascii_isupper(static_cast<unsigned char>(c))) {
      return bad();
    }
  }
  std::string id = absl::HexStringToBytes(token);
  if (!ValidateVolumeId(id).ok()) return bad();
  return id;
}

}  // namespace juke::csi
