#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/model/cluster_map.h"

#include "csi/v1/csi.pb.h"

// The pure parts of the CSI driver: how names become volume ids, how
// capacity ranges become sizes, and which capabilities and parameters are
// accepted. Each returns the gRPC code the CSI spec names for bad input.
namespace juke::csi {

// The plugin's name, as GetPluginInfo reports it.
inline constexpr char kDriverName[] = "csi.juke.io";

// The volume id for a CSI volume name: "csi-" and 32 hex digits of a
// 128-bit hash of the whole name. Deterministic, so a retried CreateVolume
// finds the same volume; names of any bytes never reach a key or a path.
std::string VolumeIdForName(absl::string_view name);

// The snapshot id for a CSI snapshot name: "snap-" and 32 hex digits of
// a 128-bit hash of the whole name, like volume ids.
std::string SnapshotIdForName(absl::string_view name);

// The size of a new volume for `range` (nullptr: no range): the smallest
// multiple of `chunk_size` that is at least required_bytes, or 1 GiB (at
// most limit_bytes) when only a limit or nothing is given. InvalidArgument
// for negative values or a limit below the required size; OutOfRange when
// no multiple of the chunk size fits the range or it exceeds the largest
// volume.
absl::StatusOr<uint64_t> SizeForRange(const ::csi::v1::CapacityRange* range,
                                      uint64_t chunk_size);

// The size a volume of `current` bytes grows to for an expansion to
// `range`: required_bytes rounded up as SizeForRange() does, but never
// below `current` (volumes never shrink, so asking for less is a retry
// that is already done). InvalidArgument for negative values, a limit
// below the required size or a range that asks for nothing; OutOfRange
// above the largest volume or when the volume is already above the limit.
absl::StatusOr<uint64_t> ExpandedSize(const ::csi::v1::CapacityRange& range,
                                      uint64_t current, uint64_t chunk_size);

// Checks one volume capability: an access type (mount or block) and a
// supported access mode; for mount, a file system type of "", "ext4" or
// "xfs" and mount flags from the allow-list. InvalidArgument otherwise.
absl::Status CheckCapability(const ::csi::v1::VolumeCapability& capability);

// The file system for a mount capability: its fs_type, "ext4" when empty.
std::string FsType(const ::csi::v1::VolumeCapability& capability);

// Whether the access mode lets only one node write.
bool IsReadOnlyMode(const ::csi::v1::VolumeCapability& capability);

// Volume parameters from a StorageClass: "replicas" (1 to 5, default 3)
// and "failureDomain" (host, cluster, zone, region; default host).
// Unknown keys are InvalidArgument, except the "csi.storage.k8s.io/" ones
// that Kubernetes' sidecars add.
struct VolumeParameters {
  int replicas = 3;
  FailureDomain failure_domain = FailureDomain::kHost;
};
absl::StatusOr<VolumeParameters> ParseParameters(
    const google::protobuf::Map<std::string, std::string>& parameters);

// Mutable parameters (a VolumeAttributesClass's `parameters`), which
// CreateVolume applies over the others and ControllerModifyVolume changes
// on an existing volume: "replicas", parsed as in ParseParameters().
// Unknown keys and bad values are InvalidArgument, except the
// "csi.storage.k8s.io/" ones.
struct MutableParameters {
  std::optional<int> replicas;
};
absl::StatusOr<MutableParameters> ParseMutableParameters(
    const google::protobuf::Map<std::string, std::string>& parameters);

// Page tokens of ListVolumes: the hex of the last id of the page before.
// Aborted for a token that is not one.
std::string EncodePageToken(absl::string_view last_id);
absl::StatusOr<std::string> DecodePageToken(absl::string_view token);

}  // namespace juke::csi
