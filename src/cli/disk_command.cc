#include "src/cli/disk_command.h"

#include <memory>

#include "absl/status/statusor.h"

#include "src/common/etcd_client.h"
#include "src/model/map_store.h"

namespace juke::cli {

int RunDisk(const DiskOptions& o, std::ostream& out, std::ostream& err) {
  auto fail = [&err](absl::string_view message) {
    err << "juke disk: " << message << "\n";
    return 1;
  };
  EtcdClientOptions eo;
  eo.timeout = o.timeout;
  absl::StatusOr<std::unique_ptr<EtcdClient>> etcd =
      EtcdClient::Create(o.etcd_endpoints, eo);
  if (!etcd.ok()) return fail(etcd.status().message());

  const bool in = o.action == "in";
  if (absl::Status s = SetDiskIn(**etcd, o.disk_id, in); !s.ok()) {
    return fail(s.message());
  }
  absl::StatusOr<ClusterMap> map = RefreshMap(**etcd);
  if (!map.ok()) return fail(map.status().message());
  out << "disk " << o.disk_id << " is " << (in ? "in" : "out")
      << " from cluster map epoch " << map->epoch() << "\n";
  if (in) {
    out << "it takes its share of new chunks, and volumes move part of "
           "their chunks onto it in the background\n";
  } else {
    out << "the chunks it holds are copied to other disks in the background "
           "and only then dropped from it; `juke volume status ID` shows "
           "each volume's move\n";
  }
  return 0;
}

}  // namespace juke::cli
