#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/model/host_record.h"
#include "src/model/host_registry.h"
#include "src/model/member.h"

// The cluster map: every disk of the pool with where it sits in the failure
// hierarchy (region > zone > cluster > host > disk), its weight and its
// state. Placement (placement.h) is computed from it alone, so every process
// holding the same map places every chunk alike. Each published map has an
// epoch, one more than the map it replaced (map_store.h).
//
//   JUKE_ASSIGN_OR_RETURN(std::vector<HostStatus> hosts, ListHosts(etcd));
//   JUKE_ASSIGN_OR_RETURN(ClusterMap content,
//                         BuildMap(hosts, overrides, &previous));
//
// A ClusterMap is an immutable value: thread-compatible, cheap to share by
// const reference, copied when needed.
namespace juke {

// The largest weight a disk may have. Weights are relative, so any unit
// works; BuildMap() uses GiB of capacity.
inline constexpr double kMaxDiskWeight = 1e9;

// One disk as the map knows it.
struct MapDisk {
  std::string disk_id;
  std::string host_id;
  std::string address;  // The gRPC host:port of its host's storage daemon.
  // Where it sits. `host` is never empty in a built map: BuildMap() takes
  // the host id when the host gave no name.
  HostLabels labels;
  // Its share of the data relative to other disks; 0 takes no data.
  double weight = 0;
  // Whether it can serve I/O now: its host is alive and it has not failed.
  bool up = false;
  // Whether the admin lets it hold data. Only `out` moves data away.
  bool in = true;

  bool operator==(const MapDisk&) const = default;
};

class ClusterMap {
 public:
  // The empty map of epoch 0, as before any map was published.
  ClusterMap() = default;

  // Sorts `disks` by id. InvalidArgument for an empty or repeated disk id,
  // an empty host id, or a weight that is not a number in
  // [0, kMaxDiskWeight].
  static absl::StatusOr<ClusterMap> Create(uint64_t epoch,
                                           std::vector<MapDisk> disks);

  uint64_t epoch() const { return epoch_; }
  // Sorted by disk id.
  const std::vector<MapDisk>& disks() const { return disks_; }

  // Returns the disk, or nullptr when the map has none of that id.
  const MapDisk* FindDisk(absl::string_view disk_id) const;

  // The same map under another epoch.
  ClusterMap WithEpoch(uint64_t epoch) const;

  // Whether both maps hold the same disks, whatever their epochs.
  bool SameContent(const ClusterMap& other) const {
    return disks_ == other.disks_;
  }

  // Whether both maps place every chunk alike: the same disks with the same
  // hosts, failure-domain labels, weights and in/out states. Addresses and
  // up/down states may differ.
  bool SamePlacement(const ClusterMap& other) const;

  bool operator==(const ClusterMap&) const = default;

 private:
  ClusterMap(uint64_t epoch, std::vector<MapDisk> disks)
      : epoch_(epoch), disks_(std::move(disks)) {}

  uint64_t epoch_ = 0;
  std::vector<MapDisk> disks_;
};

// JSON with lowerCamelCase fields, as docs/etcd-layout.md shows.
// InvalidArgument when a string is not valid UTF-8.
absl::StatusOr<std::string> EncodeClusterMap(const ClusterMap& map);

// InvalidArgument for text that is not JSON, a field of the wrong type, or
// content that ClusterMap::Create() refuses. Unknown fields are ignored.
absl::StatusOr<ClusterMap> DecodeClusterMap(absl::string_view json);

// The levels of the failure hierarchy that placement can keep replicas
// apart at, from the smallest.
enum class FailureDomain { kHost, kCluster, kZone, kRegion };

// "host", "cluster", "zone" or "region"; InvalidArgument for anything else.
absl::StatusOr<FailureDomain> ParseFailureDomain(absl::string_view name);
absl::string_view FailureDomainName(FailureDomain level);

// Identifies the domain of `disk` at `level`: the labels from the region
// down to that level, each length-prefixed, so that two hosts named alike
// in different zones are different domains.
std::string FailureDomainKey(const MapDisk& disk, FailureDomain level);

// What an admin decided about one disk (docs/etcd-layout.md). Unset fields
// leave the disk as its host reports it.
struct DiskOverride {
  // false: the disk is out and holds no data.
  std::optional<bool> in;
  // Replaces the weight taken from the disk's capacity.
  std::optional<double> weight;
  // The disk is gone for good: BuildMap() drops it once no host lists it.
  bool removed = false;

  bool operator==(const DiskOverride&) const = default;
};

using DiskOverrides = std::map<std::string, DiskOverride, std::less<>>;

absl::StatusOr<std::string> EncodeDiskOverride(const DiskOverride& o);
// InvalidArgument for bad JSON, wrong types or a weight out of range.
absl::StatusOr<DiskOverride> DecodeDiskOverride(absl::string_view json);

// The weight of a disk of `capacity_bytes` without an override: its
// capacity in GiB. BuildMap() divides it among the disks that share a file
// system.
double WeightFromCapacity(uint64_t capacity_bytes);

// Builds the content of the next map (epoch 0; publishing numbers it)
// from the hosts as ListHosts() returns them, the admin's overrides and the
// previous map (nullptr when there is none):
//
// - a disk that a host lists is up when the host is up and the disk has
//   not failed; it is in unless an override says out; its weight is the
//   override's or its capacity in GiB;
// - a disk of the previous map that no host lists any more (its host lost
//   it, or the host record cannot be read) stays, down, with its previous
//   weight: data is never forgotten silently. Only an override marking it
//   removed drops it;
// - a disk id listed by two hosts is taken from the one that is up, else
//   from the smaller host id.
//
// - a host with a member record (member.h) takes the record's cluster,
//   and its region and zone where set; its disks are down while the
//   member is marked down, and out while it is draining or leaving; when
//   the record lists disks, the host's disks at other paths are out, and
//   a listed disk with a weight takes it (an override's weight still wins).
//
// InvalidArgument when the result is not a valid map (see Create()).
absl::StatusOr<ClusterMap> BuildMap(const std::vector<HostStatus>& hosts,
                                    const DiskOverrides& overrides,
                                    const ClusterMap* previous,
                                    const Members& members = {});

}  // namespace juke
