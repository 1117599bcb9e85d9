#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/common/etcd_client.h"

// What the operator of a host's Kubernetes cluster says about the host
// (docs/etcd-layout.md, "Members"): where it sits, as its Node's topology
// labels and the cluster's name tell, and whether it may serve and hold
// data. A host's storage daemon says what disks it has; its member record
// says how the map treats them. Hosts without a member record (a pool run
// without Kubernetes) are taken as their daemons describe them.
//
//   MemberRecord m;
//   m.host_id = "node-1";
//   m.cluster = "prod-1";
//   m.state = MemberState::kDraining;
//   JUKE_RETURN_IF_ERROR(PutMember(etcd, m));
//
// Plain values: thread-compatible.

namespace juke {

// /juke/v1/members/<escaped host id> -> member record JSON.
inline constexpr char kMembersPrefix[] = "/juke/v1/members/";

enum class MemberState {
  // Holds data.
  kActive,
  // Its node is draining: its disks are out and their data moves away.
  kDraining,
  // Its Node is gone: its disks are out, and once nothing depends on them
  // the host leaves the pool.
  kLeaving,
};

// "active", "draining", "leaving".
absl::string_view MemberStateName(MemberState state);
// InvalidArgument for any other name.
absl::StatusOr<MemberState> ParseMemberState(absl::string_view name);

// A disk its node's JukeNode lists: the directory, and its share of the data
// (none: its capacity in GiB, as for any disk).
struct MemberDisk {
  std::string path;
  std::optional<double> weight;
  bool operator==(const MemberDisk&) const = default;
};

struct MemberRecord {
  std::string host_id;
  std::string cluster;  // The Kubernetes cluster that the host is a node of.
  std::string region;   // Empty: as the daemon says.
  std::string zone;     // Empty: as the daemon says.
  MemberState state = MemberState::kActive;
  // Its Node has been NotReady past the grace period: its disks are down,
  // whatever its daemon says, and their chunks are served from elsewhere.
  bool down = false;
  std::string reason;  // Why it is in this state, for people.
  // The disks its node gives, when its JukeNode lists them: the daemon's
  // other disks are out of the map. None: every disk the daemon serves.
  std::optional<std::vector<MemberDisk>> disks;
  bool operator==(const MemberRecord&) const = default;
};

using Members = std::map<std::string, MemberRecord, std::less<>>;

std::string MemberKey(absl::string_view host_id);

// InvalidArgument for an empty host or cluster, or a string that is not
// valid UTF-8.
absl::StatusOr<std::string> EncodeMember(const MemberRecord& member);
// InvalidArgument for text that is not a JSON object, a field of the wrong
// type, an unknown state or an empty host id. Unknown fields are ignored.
absl::StatusOr<MemberRecord> DecodeMember(absl::string_view json);

// Every member record, by host id. InvalidArgument, naming the key, for one
// that cannot be read.
absl::StatusOr<Members> LoadMembers(EtcdClient& etcd);
absl::Status PutMember(EtcdClient& etcd, const MemberRecord& member);
// Idempotent.
absl::Status DeleteMember(EtcdClient& etcd, absl::string_view host_id);

}  // namespace juke
