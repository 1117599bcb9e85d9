#include "src/volume/mover.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/placement.h"
#include "src/volume/recovery.h"

namespace juke {
namespace {

namespace v1 = storage::v1;

Logger Log() {
  static const Logger log = GetLogger("mover");
  return log;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A daemon refused a write or delete because a newer writer fenced it.
bool IsFenced(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) &&
         absl::StrContains(s.message(), "fenced");
}

// Stale marks of one volume by chunk, then disk.
using MarksByChunk = std::map<uint64_t, std::map<std::string, StaleMark>>;

absl::StatusOr<MarksByChunk> LoadMarks(VolumeCatalog* catalog,
                                       absl::string_view id) {
  JUKE_ASSIGN_OR_RETURN(std::vector<StaleMark> marks,
                        catalog->ListStaleMarks(id));
  MarksByChunk by_chunk;
  for (StaleMark& m : marks) {
    std::string disk = m.disk_id;
    by_chunk[m.chunk].emplace(std::move(disk), std::move(m));
  }
  return by_chunk;
}

bool IsMarked(const MarksByChunk& marks, uint64_t chunk,
              const std::string& disk) {
  auto it = marks.find(chunk);
  return it != marks.end() && it->second.count(disk) > 0;
}

// What one pass works with.
struct Pass {
  VolumeCatalog* catalog;
  ChunkClientPool* clients;
  const ClusterMap& live;
  MoveHolder* holder;
  RateLimiter* limiter;
  absl::Duration rpc_timeout;
  VersionedVolume volume;
  uint64_t generation;
  MoveProgress* progress;

  const VolumeRecord& record() const { return volume.record; }

  void Wait(std::string reason) {
    ++progress->waiting;
    if (progress->reason.empty()) progress->reason = std::move(reason);
  }

  absl::StatusOr<std::vector<std::string>> Place(const ClusterMap& map,
                                                 int replicas,
                                                 uint64_t chunk) const {
    return PlaceChunk(map, record().id, chunk, replicas,
                      record().failure_domain);
  }

  // Runs `fn` with the holder's writes to `chunk` held back, if any.
  absl::Status WithChunk(uint64_t chunk, absl::FunctionRef<absl::Status()> fn) {
    if (holder == nullptr) return fn();
    return holder->WithChunkHeld(chunk, fn);
  }

  // Replaces the record with `next` unless it changed since the pass read
  // it; the holder adopts the new placement with its writes held back.
  absl::StatusOr<bool> Commit(const VolumeRecord& next,
                              const std::vector<std::string>& drop_keys) {
    bool committed = false;
    auto commit = [&]() -> absl::Status {
      JUKE_ASSIGN_OR_RETURN(
          committed, catalog->ReplaceIfUnchanged(volume, next, drop_keys));
      if (committed && holder != nullptr) return holder->Adopt(next);
      return absl::OkStatus();
    };
    if (holder == nullptr) {
      JUKE_RETURN_IF_ERROR(commit());
    } else {
      JUKE_RETURN_IF_ERROR(holder->WithWritesHeld(commit));
    }
    if (!committed) Wait("the volume changed during the pass");
    return committed;
  }

  absl::StatusOr<bool> Start();
  absl::StatusOr<std::set<uint64_t>> ExistingChunks(const ClusterMap& from,
                                                    const MarksByChunk& marks);
  absl::StatusOr<bool> Copy();
  absl::StatusOr<bool> Drop();
};

// Starts a move when the current map places the volume elsewhere, or it
// is to have another replica count.
absl::StatusOr<bool> Pass::Start() {
  const VolumeRecord& r = record();
  const int wanted = TargetReplicas(r);
  const bool new_map =
      r.placement_epoch != 0 && r.placement_epoch != live.epoch();
  if (!new_map && wanted == r.replicas) return false;
  if (new_map && wanted == r.replicas) {
    JUKE_ASSIGN_OR_RETURN(ClusterMap placed, catalog->PlacementMap(r, live));
    // PlacementMap() hands back the live map itself when both place alike.
    // Then the volume just follows the epoch: its old one can leave the map
    // history, and later passes need not load and compare it again.
    if (placed.epoch() == live.epoch()) {
      VolumeRecord next = r;
      next.placement_epoch = live.epoch();
      next.wanted_replicas = 0;
      JUKE_RETURN_IF_ERROR(Commit(next, {}).status());
      return false;
    }
  }
  if (absl::Status s = CheckPlaceable(live, wanted, r.failure_domain);
      !s.ok()) {
    Wait(
        absl::StrCat("the current map cannot place the volume: ", s.message()));
    return false;
  }
  // Another replica count on the same map is a move within one epoch.
  VolumeRecord next = r;
  next.moving_to_epoch = live.epoch();
  next.moving_to_replicas = wanted;
  next.wanted_replicas = 0;
  JUKE_ASSIGN_OR_RETURN(bool started, Commit(next, {}));
  if (started) {
    JUKE_LOG_INFO(Log(),
                  "Move started volumeID={} fromEpoch={} toEpoch={} "
                  "fromReplicas={} toReplicas={}",
                  r.id, r.placement_epoch, next.moving_to_epoch, r.replicas,
                  wanted);
  }
  return started;
}

// The indexes of the chunks that exist, from the disks of the old
// placement. NotFound-free: a chunk that no listed current replica could
// vouch for (its disks are down) makes the pass wait instead.
absl::StatusOr<std::set<uint64_t>> Pass::ExistingChunks(
    const ClusterMap& from, const MarksByChunk& marks) {
  std::set<uint64_t> chunks;
  std::set<std::string> listed;
  for (const MapDisk& d : from.disks()) {
    if (!d.up) continue;
    absl::StatusOr<std::vector<uint64_t>> on_disk = ListChunkIndexes(
        clients->For(d.address), d.disk_id, record().id, rpc_timeout);
    if (!on_disk.ok()) continue;
    chunks.insert(on_disk->begin(), on_disk->end());
    listed.insert(d.disk_id);
  }
  if (listed.size() == from.disks().size()) return chunks;

  // Some disk could not be listed. A chunk is known absent when one of its
  // current replicas was listed without it.
  const uint64_t count = record().size_bytes / record().chunk_size;
  for (uint64_t c = 0; c < count; ++c) {
    if (chunks.count(c) > 0) continue;
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> replicas,
                          Place(from, record().replicas, c));
    bool vouched = std::any_of(
        replicas.begin(), replicas.end(), [&](const std::string& d) {
          return listed.count(d) > 0 && !IsMarked(marks, c, d);
        });
    if (!vouched) {
      return absl::UnavailableError(
          absl::StrCat("chunk ", c, " may exist only on disks that are down"));
    }
  }
  return chunks;
}

// The copy phase. Returns whether the volume switched to the new
// placement.
absl::StatusOr<bool> Pass::Copy() {
  const VolumeRecord& r = record();
  progress->phase = "copying";
  progress->from_epoch = r.placement_epoch;
  progress->to_epoch = r.moving_to_epoch;
  JUKE_ASSIGN_OR_RETURN(ClusterMap from,
                        catalog->EpochMap(r.id, r.placement_epoch, live));
  JUKE_ASSIGN_OR_RETURN(ClusterMap to,
                        catalog->EpochMap(r.id, r.moving_to_epoch, live));
  JUKE_ASSIGN_OR_RETURN(MarksByChunk marks, LoadMarks(catalog, r.id));
  absl::StatusOr<std::set<uint64_t>> chunks = ExistingChunks(from, marks);
  if (absl::IsUnavailable(chunks.status())) {
    Wait(std::string(chunks.status().message()));
    return false;
  }
  JUKE_RETURN_IF_ERROR(chunks.status());

  for (uint64_t c : *chunks) {
    ++progress->chunks;
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> old_replicas,
                          Place(from, r.replicas, c));
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> new_replicas,
                          Place(to, MovingToReplicas(r), c));
    std::vector<std::string> sources;
    for (const std::string& d : old_replicas) {
      if (!IsMarked(marks, c, d)) sources.push_back(d);
    }
    for (const std::string& target : new_replicas) {
      if (Contains(old_replicas, target)) continue;
      absl::Status s = WithChunk(c, [&]() -> absl::Status {
        JUKE_ASSIGN_OR_RETURN(uint64_t bytes,
                              CopyChunk(clients, live, r, c, sources, target,
                                        generation, limiter, rpc_timeout));
        progress->bytes += bytes;
        if (!IsMarked(marks, c, target)) return absl::OkStatus();
        // The copy also brings a replica that missed writes up to date.
        const StaleMark& mark = marks[c][target];
        JUKE_ASSIGN_OR_RETURN(
            bool cleared,
            catalog->ClearStaleIfUnchanged(
                r.id, mark, holder == nullptr ? volume.mod_revision : 0));
        if (!cleared) {
          return absl::AbortedError("the replica was marked stale again");
        }
        if (holder != nullptr) holder->ForgetStale(c, target);
        return absl::OkStatus();
      });
      if (IsFenced(s)) {
        if (holder != nullptr) return s;
        // A writer attached; it goes on with the move.
        Wait("a writer attached the volume; it takes the move over");
        return false;
      }
      if (!s.ok()) {
        JUKE_LOG_INFO(Log(),
                      "Copy not made yet volumeID={} chunk={} diskID={} "
                      "err={}",
                      r.id, c, target, s);
        Wait(std::string(s.message()));
        continue;
      }
      ++progress->copied;
    }
  }
  if (progress->waiting > 0) return false;

  // Every chunk needs a current replica in the new placement before reads
  // go there.
  JUKE_ASSIGN_OR_RETURN(marks, LoadMarks(catalog, r.id));
  for (const auto& entry : marks) {
    const uint64_t c = entry.first;
    const std::map<std::string, StaleMark>& by_disk = entry.second;
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> new_replicas,
                          Place(to, MovingToReplicas(r), c));
    bool current = std::any_of(
        new_replicas.begin(), new_replicas.end(),
        [&](const std::string& d) { return by_disk.count(d) == 0; });
    if (!current) {
      Wait(absl::StrCat("chunk ", c,
                        " has no current replica in the new placement yet"));
      return false;
    }
  }
  VolumeRecord next = r;
  next.placement_epoch = r.moving_to_epoch;
  // A record from before placement was pinned placed with the map of its
  // day; the copies to drop are those the new placement does not use.
  next.leaving_epoch =
      r.placement_epoch != 0 ? r.placement_epoch : r.moving_to_epoch;
  next.moving_to_epoch = 0;
  next.replicas = MovingToReplicas(r);
  next.moving_to_replicas = 0;
  if (next.wanted_replicas == next.replicas) next.wanted_replicas = 0;
  JUKE_ASSIGN_OR_RETURN(bool switched, Commit(next, {}));
  if (switched) {
    JUKE_LOG_INFO(Log(),
                  "Move switched placement volumeID={} epoch={} replicas={} "
                  "copies={}",
                  r.id, next.placement_epoch, next.replicas, progress->copied);
  }
  return switched;
}

// The drop phase. Returns whether the move is finished.
absl::StatusOr<bool> Pass::Drop() {
  const VolumeRecord& r = record();
  progress->phase = "dropping";
  progress->from_epoch = r.leaving_epoch;
  progress->to_epoch = r.placement_epoch;
  JUKE_ASSIGN_OR_RETURN(ClusterMap leaving,
                        catalog->EpochMap(r.id, r.leaving_epoch, live));
  JUKE_ASSIGN_OR_RETURN(ClusterMap placed, catalog->PlacementMap(r, live));
  for (const MapDisk& d : leaving.disks()) {
    // A disk removed from the pool holds nothing that anyone will read.
    if (live.FindDisk(d.disk_id) == nullptr) continue;
    if (!d.up) {
      Wait(absl::StrCat("disk ", d.disk_id, " is down; its old copies stay ",
                        "until it is back or removed"));
      continue;
    }
    auto* stub = clients->For(d.address);
    absl::StatusOr<std::vector<uint64_t>> chunks =
        ListChunkIndexes(stub, d.disk_id, r.id, rpc_timeout);
    if (!chunks.ok()) {
      Wait(absl::StrCat("list disk ", d.disk_id, ": ",
                        chunks.status().message()));
      continue;
    }
    for (uint64_t c : *chunks) {
      JUKE_ASSIGN_OR_RETURN(std::vector<std::string> replicas,
                            Place(placed, r.replicas, c));
      if (Contains(replicas, d.disk_id)) continue;
      v1::DeleteChunkRequest req;
      req.set_disk_id(d.disk_id);
      req.mutable_chunk()->set_volume_id(r.id);
      req.mutable_chunk()->set_index(c);
      req.set_generation(generation);
      v1::DeleteChunkResponse resp;
      grpc::ClientContext ctx;
      SetDeadlineAfter(&ctx, rpc_timeout);
      absl::Status s = FromGrpcStatus(stub->DeleteChunk(&ctx, req, &resp));
      if (IsFenced(s)) {
        if (holder != nullptr) return s;
        Wait("a writer attached the volume; it takes the move over");
        return false;
      }
      if (!s.ok() && !absl::IsNotFound(s)) {
        Wait(absl::StrCat("delete chunk ", c, " on ", d.disk_id, ": ",
                          s.message()));
        continue;
      }
      ++progress->dropped;
    }
  }
  if (progress->waiting > 0) return false;

  // Marks of replicas the volume no longer has are moot now.
  std::vector<std::string> moot;
  JUKE_ASSIGN_OR_RETURN(MarksByChunk marks, LoadMarks(catalog, r.id));
  for (const auto& [c, by_disk] : marks) {
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> replicas,
                          Place(placed, r.replicas, c));
    for (const auto& [disk, mark] : by_disk) {
      if (!Contains(replicas, disk)) moot.push_back(StaleKey(r.id, c, disk));
    }
  }
  VolumeRecord next = r;
  next.leaving_epoch = 0;
  JUKE_ASSIGN_OR_RETURN(bool finished, Commit(next, moot));
  if (finished) {
    progress->phase = "done";
    JUKE_LOG_INFO(Log(), "Move finished volumeID={} epoch={} dropped={}", r.id,
                  r.placement_epoch, progress->dropped);
  }
  return finished;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> VolumePlacement::ReadReplicas(
    const VolumeRecord& record, uint64_t chunk) const {
  return PlaceChunk(read, record.id, chunk, replicas, record.failure_domain);
}

absl::StatusOr<std::vector<std::string>> VolumePlacement::WriteReplicas(
    const VolumeRecord& record, uint64_t chunk) const {
  JUKE_ASSIGN_OR_RETURN(std::vector<std::string> disks,
                        ReadReplicas(record, chunk));
  if (!moving_to.has_value()) return disks;
  JUKE_ASSIGN_OR_RETURN(std::vector<std::string> more,
                        PlaceChunk(*moving_to, record.id, chunk,
                                   moving_to_replicas, record.failure_domain));
  for (std::string& d : more) {
    if (!Contains(disks, d)) disks.push_back(std::move(d));
  }
  return disks;
}

absl::StatusOr<VolumePlacement> LoadVolumePlacement(VolumeCatalog* catalog,
                                                    const VolumeRecord& record,
                                                    const ClusterMap& live) {
  VolumePlacement p;
  JUKE_ASSIGN_OR_RETURN(p.read, catalog->PlacementMap(record, live));
  p.replicas = record.replicas;
  p.moving_to_replicas = MovingToReplicas(record);
  if (record.moving_to_epoch != 0) {
    JUKE_ASSIGN_OR_RETURN(
        p.moving_to,
        catalog->EpochMap(record.id, record.moving_to_epoch, live));
  }
  return p;
}

absl::StatusOr<MoveProgress> MoveVolume(
    VolumeCatalog* catalog, ChunkClientPool* clients, const ClusterMap& live,
    absl::string_view id, MoveHolder* holder, RateLimiter* limiter,
    absl::Duration rpc_timeout) {
  MoveProgress progress;
  // Start, copy and drop: at most three phase changes in one pass.
  for (int step = 0; step < 3; ++step) {
    absl::StatusOr<VersionedVolume> volume = catalog->GetVersioned(id);
    if (absl::IsNotFound(volume.status())) return progress;
    JUKE_RETURN_IF_ERROR(volume.status());
    const VolumeRecord& r = volume->record;
    if (r.state != VolumeState::kReady) return progress;
    const bool held = r.attachment.has_value() && !r.attachment->read_only;
    uint64_t generation = r.generation;
    if (holder != nullptr) {
      if (!held || r.attachment->generation != holder->generation()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "volume ", id, " is no longer attached to this writer"));
      }
      generation = holder->generation();
    } else if (held) {
      // Its writer moves it.
      if (r.moving_to_epoch != 0 || r.leaving_epoch != 0) {
        const bool copying = r.moving_to_epoch != 0;
        progress.phase = copying ? "copying" : "dropping";
        progress.from_epoch = copying ? r.placement_epoch : r.leaving_epoch;
        progress.to_epoch = copying ? r.moving_to_epoch : r.placement_epoch;
        progress.left_to_writer = true;
        progress.reason = absl::StrCat("attached on ", r.attachment->node,
                                       "; its writer moves it");
      } else if ((r.placement_epoch != 0 &&
                  r.placement_epoch != live.epoch()) ||
                 TargetReplicas(r) != r.replicas) {
        // Due, but its writer has not taken the new map yet.
        progress.phase = "pending";
        progress.from_epoch = r.placement_epoch;
        progress.to_epoch = live.epoch();
        progress.left_to_writer = true;
        progress.reason = absl::StrCat("attached on ", r.attachment->node,
                                       "; its writer starts the move");
      }
      return progress;
    }

    Pass pass{catalog,
              clients,
              live,
              holder,
              limiter,
              rpc_timeout,
              *std::move(volume),
              generation,
              &progress};
    if (pass.record().leaving_epoch != 0) {
      JUKE_RETURN_IF_ERROR(pass.Drop().status());
      return progress;
    }
    bool changed = false;
    if (pass.record().moving_to_epoch != 0) {
      JUKE_ASSIGN_OR_RETURN(changed, pass.Copy());
    } else {
      JUKE_ASSIGN_OR_RETURN(changed, pass.Start());
    }
    if (!changed) return progress;
  }
  return progress;
}

}  // namespace juke
