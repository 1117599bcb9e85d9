#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

#include "src/model/cluster_map.h"

// Deterministic placement of chunk replicas on the disks of a cluster map:
// weighted rendezvous hashing in the manner of CRUSH's straw2, with no two
// replicas in one failure domain. docs/placement.md explains the algorithm
// and its properties.
//
//   JUKE_ASSIGN_OR_RETURN(std::vector<std::string> disks,
//                         PlaceChunk(map, volume_id, 7, 3,
//                                    FailureDomain::kHost));
//   // disks[0] is the primary.
//
// The result depends only on the map's disks, the volume id, the chunk
// index, the replica count and the level: every process, machine and
// version computes the same placement. Any change of the algorithm that
// alters a placement moves data and must come with a migration; the golden
// vectors of placement_test.cc guard against accidental ones.
namespace juke {

inline constexpr int kMinReplicas = 1;
inline constexpr int kMaxReplicas = 5;

// OK when chunks of `replicas` replicas can be placed on `map` with no two
// in one domain at `level`. InvalidArgument for a replica count outside
// [kMinReplicas, kMaxReplicas]; FailedPrecondition when the disks that are
// in and have a weight span fewer domains than replicas, e.g. "3 replicas
// need 3 distinct hosts; the map has 2 hosts with disks in".
absl::Status CheckPlaceable(const ClusterMap& map, int replicas,
                            FailureDomain level);

// Returns the ids of the disks that hold the replicas of chunk
// `chunk_index` of `volume_id`, primary first, each in a different domain
// at `level`. Disks that are down keep their placements (writes skip them
// and recovery catches them up); disks that are out or weigh nothing get
// none. Errors as CheckPlaceable(); nothing is returned then.
absl::StatusOr<std::vector<std::string>> PlaceChunk(const ClusterMap& map,
                                                    absl::string_view volume_id,
                                                    uint64_t chunk_index,
                                                    int replicas,
                                                    FailureDomain level);

// PlaceChunk() for many chunks on one map and level: the map is digested
// once. An immutable value, thread-safe; it copies what it needs from the
// map.
class ChunkPlacer {
 public:
  ChunkPlacer(const ClusterMap& map, FailureDomain level);

  absl::Status CheckPlaceable(int replicas) const;

  absl::StatusOr<std::vector<std::string>> Place(absl::string_view volume_id,
                                                 uint64_t chunk_index,
                                                 int replicas) const;

 private:
  // A disk that may hold data.
  struct Candidate {
    std::string disk_id;
    uint64_t weight_units = 0;  // The weight in units of 1/65536; > 0.
    uint32_t domain = 0;        // Index of its domain at the level.
  };

  FailureDomain level_;
  std::vector<Candidate> candidates_;
  uint32_t domain_count_ = 0;
};

// The arithmetic that placement rests on, exposed for its tests.
namespace placement_internal {

// Bits of fraction in FixedLog2() results.
inline constexpr int kLogFractionBits = 48;

// log2(x) * 2^kLogFractionBits, within a few units, from integer
// arithmetic only (a table and a short series), so that every machine
// computes the same value to the last bit. What placement uses.
// REQUIRES: x > 0.
uint64_t FixedLog2(uint64_t x);

// The same, one bit at a time by repeated squaring: slower, and the
// reference that FixedLog2() and its table are built from and tested
// against. REQUIRES: x > 0.
uint64_t Log2BitByBit(uint64_t x);

// The stable 64-bit hash of (volume id, chunk index, disk id).
uint64_t PlacementHash(absl::string_view volume_id, uint64_t chunk_index,
                       absl::string_view disk_id);

}  // namespace placement_internal
}  // namespace juke
