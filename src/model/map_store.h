#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/common/etcd_client.h"
#include "src/model/cluster_map.h"

// The cluster map in etcd (docs/etcd-layout.md): the current map, the
// history of recent epochs, and the admin's overrides per disk.
//
//   MapStore store(etcd.get());
//   JUKE_ASSIGN_OR_RETURN(ClusterMap map, store.Load());
//   ...  // After hosts or overrides changed:
//   JUKE_ASSIGN_OR_RETURN(ClusterMap next, store.Refresh());
//
// Publishing is a compare-and-swap on the current map's key: of two
// publishers that read the same epoch, one writes the next epoch and the
// other reads again and builds on the winner's map. So epochs are never
// reused and no published map is overwritten unseen.
//
// Thread-safe. The client must outlive the store.
namespace juke {

// /juke/v1/map/current -> the current map, JSON with its epoch.
inline constexpr char kMapCurrentKey[] = "/juke/v1/map/current";
// /juke/v1/map/epochs/<epoch, 20 digits> -> the map of that epoch.
inline constexpr char kMapEpochsPrefix[] = "/juke/v1/map/epochs/";
// /juke/v1/disk-admin/<escaped disk id> -> DiskOverride JSON.
inline constexpr char kDiskAdminPrefix[] = "/juke/v1/disk-admin/";

// /juke/v1/map/pins/<epoch, 20 digits>/<escaped volume id> -> "": the
// volume places its chunks with that epoch's map, which therefore stays in
// the history while the pin exists.
inline constexpr char kMapPinsPrefix[] = "/juke/v1/map/pins/";

std::string MapEpochKey(uint64_t epoch);
std::string MapPinKey(uint64_t epoch, absl::string_view volume_id);
std::string MapPinPrefix(uint64_t epoch);
std::string DiskAdminKey(absl::string_view disk_id);

struct MapStoreOptions {
  // How many of the latest epochs the history keeps.
  uint64_t history = 100;
  // How often Publish() and Refresh() read again after losing a race to
  // another publisher before they give up with Aborted.
  int max_attempts = 20;
};

class MapStore {
 public:
  explicit MapStore(EtcdClient* etcd, MapStoreOptions options = {});

  // The current map. NotFound when none was ever published.
  absl::StatusOr<ClusterMap> Load();

  // The map of `epoch` from the history. NotFound when it was pruned or
  // never existed.
  absl::StatusOr<ClusterMap> LoadEpoch(uint64_t epoch);

  // Makes `content` (its epoch is ignored) the current map. Returns the
  // current map unchanged when it has the same content; otherwise writes
  // it as the next epoch, keeps it in the history and prunes the epoch
  // that falls out of it. Aborted when other publishers kept winning.
  absl::StatusOr<ClusterMap> Publish(const ClusterMap& content);

  // Builds the next map from the hosts, the overrides and the current map
  // (BuildMap()) and publishes it, building again if another publisher
  // got in between. Returns the current map afterwards.
  absl::StatusOr<ClusterMap> Refresh();

 private:
  // The current map, if any, with the mod revision of its key (0: none).
  struct Current {
    std::optional<ClusterMap> map;
    int64_t mod_revision = 0;
  };

  absl::StatusOr<Current> LoadCurrent();

  // Publishes what `build` makes of the current map, retrying when another
  // publisher wins the race.
  absl::StatusOr<ClusterMap> PublishBuilt(
      absl::string_view what,
      const std::function<absl::StatusOr<ClusterMap>(const Current&)>& build);

  EtcdClient* const etcd_;
  const MapStoreOptions options_;
};

// Every override, by disk id. InvalidArgument, naming the key, for one
// that cannot be read: an admin's decision is never ignored.
absl::StatusOr<DiskOverrides> LoadDiskOverrides(EtcdClient& etcd);

// Marks the disk in or out. NotFound when the current map has no such disk.
// Takes effect with the next Refresh().
absl::Status SetDiskIn(EtcdClient& etcd, absl::string_view disk_id, bool in);

// Sets the disk's weight, or goes back to its capacity for nullopt.
// InvalidArgument for a weight outside [0, kMaxDiskWeight]; NotFound as
// SetDiskIn().
absl::Status SetDiskWeight(EtcdClient& etcd, absl::string_view disk_id,
                           std::optional<double> weight);

// Marks the disk removed: it is out at once and leaves the map once no host
// lists it. For disks that are gone for good, after their data has moved
// away. NotFound as SetDiskIn().
absl::Status RemoveDisk(EtcdClient& etcd, absl::string_view disk_id);

// MapStore(&etcd).Refresh(), for daemons and the CLI.
absl::StatusOr<ClusterMap> RefreshMap(EtcdClient& etcd);

}  // namespace juke
