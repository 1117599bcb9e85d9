#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "src/common/rate_limiter.h"
#include "src/model/cluster_map.h"
#include "src/volume/chunk_clients.h"
#include "src/volume/mover.h"
#include "src/volume/recovery.h"
#include "src/volume/volume_catalog.h"

namespace juke {

struct VolumeIoOptions {
  // A write is acknowledged once every up replica has it durably and at
  // least this many did (capped at the volume's replica count).
  int min_replicas = 2;
  absl::Duration rpc_timeout = absl::Seconds(10);
  // How long a writer fenced by a snapshot's barrier waits for it to go.
  absl::Duration barrier_wait = absl::Seconds(60);
  // A chunk's dirty mark goes once no write to it was made for this long
  // (SettleDirty()).
  absl::Duration dirty_idle = absl::Seconds(2);
};

// Reads and writes byte ranges of one volume over its replicas, as the
// holder of one attachment (its generation goes with every write).
//
// Writes go to every replica of each chunk in parallel. Replicas that are
// down in the map, or that fail, are recorded stale in etcd before the
// write is acknowledged, so no later read is served from them. A replica
// that answers "fenced" means either a snapshot's barrier (the volume is
// still attached here: the writer waits for the barrier to go, takes a new
// generation and writes again) or that the volume was attached elsewhere:
// the write fails with FailedPrecondition, and so does every later one.
//
// Reads go to the first replica (in placement order) that is up and not
// stale, check the data against its block checksums, and move on to the
// next replica on any error; a replica that returned bad data is repaired
// with the good copy.
//
// Before its first write to a chunk, the writer marks the chunk dirty in
// etcd: a write that reached some replicas and not others and was never
// acknowledged (the writer or its host died, or it lost etcd while
// replicas failed) leaves them disagreeing with no stale mark, and reads
// would then depend on which replica answers. The writer drops the mark
// once the chunk has been idle with every write acknowledged; a chunk
// where a write failed, and every chunk a previous writer left marked, is
// settled: its first current replica stays as it is and the others are
// marked stale, so recovery makes them equal to it (docs/recovery.md,
// "Dirty chunks").
//
// The writer also recovers the volume's stale replicas (RecoverStale()),
// since only it can keep its own writes to a chunk out while the chunk is
// copied.
//
// Offsets and lengths are multiples of 4096. Thread-safe.
class VolumeClient : public MoveHolder {
 public:
  // `map` is the current cluster map; chunks are placed as the record says
  // (LoadVolumePlacement()).
  // REQUIRES: record holds an attachment when writes are to be made.
  static absl::StatusOr<std::unique_ptr<VolumeClient>> Open(
      VolumeCatalog* catalog, ChunkClientPool* clients, VolumeRecord record,
      ClusterMap map, VolumeIoOptions options = {});

  // The size reads and writes may reach; it grows with Grow().
  uint64_t size() const { return size_.load(); }
  // The record as the volume was opened: its id and shape.
  const VolumeRecord& record() const { return record_; }

  // Lets reads and writes reach `new_size` bytes, once the catalog holds
  // the volume at that size or more (FailedPrecondition otherwise, and for
  // a size below the current one). The same size is a no-op.
  absl::Status Grow(uint64_t new_size);

  absl::Status Read(uint64_t offset, std::span<uint8_t> out);
  absl::Status Write(uint64_t offset, std::span<const uint8_t> data);

  // Takes the hosts' current addresses and up/down states from `map`
  // (a daemon that restarted may listen elsewhere). Placement stays that
  // of the map the client was opened with.
  void UpdateLiveMap(ClusterMap map);

  // Settles this writer's dirty chunks that saw no write for `idle` (see
  // above); RecoverStale() calls it with the options' dirty_idle, and the
  // writer's holder with zero before it lets the volume go. A chunk with
  // no current replica up stays dirty for a later call. FailedPrecondition
  // without a writer attachment.
  absl::Status SettleDirty(absl::Duration idle);

  // One pass over the volume's stale marks: copies each chunk onto its
  // stale replica from a current one, with this writer's writes to that
  // chunk held back meanwhile, and clears the mark. Replicas that cannot
  // be recovered yet (down) are counted waiting. FailedPrecondition without
  // a writer attachment or once fenced.
  absl::StatusOr<RecoveryProgress> RecoverStale(RateLimiter* limiter);

  // One pass of the volume's move to the current map's placement, when the
  // map changed (mover.h): copies each moving chunk with this writer's
  // writes to it held back, and switches placement with all writes held.
  absl::StatusOr<MoveProgress> Move(RateLimiter* limiter);

  // MoveHolder, for Move().
  uint64_t generation() const override { return generation_.load(); }
  absl::Status WithChunkHeld(uint64_t chunk,
                             absl::FunctionRef<absl::Status()> fn) override;
  absl::Status WithWritesHeld(absl::FunctionRef<absl::Status()> fn) override;
  absl::Status Adopt(const VolumeRecord& record) override;
  void ForgetStale(uint64_t chunk, const std::string& disk_id) override;

 private:
  VolumeClient(VolumeCatalog* catalog, ChunkClientPool* clients,
               VolumeRecord record, VolumePlacement placement, ClusterMap live,
               VolumeIoOptions options,
               std::set<std::pair<uint64_t, std::string>> stale);

  // A chunk this writer marked dirty, or found marked when it opened.
  struct DirtyChunk {
    int writing = 0;  // writes in flight
    absl::Time last_write = absl::InfinitePast();
    // A write failed, or the mark was inherited: the replicas may differ.
    bool diverged = false;
    int64_t mod_revision = 0;  // of an inherited mark; 0 for this writer's
  };

  // Around every write to a chunk, under its lock held shared: marks it
  // dirty in etcd first if it is not yet, and notes how the write ended.
  absl::Status BeginWrite(uint64_t chunk);
  void EndWrite(uint64_t chunk, bool ok);
  // The checksums of every block of the chunk on one replica (a zero
  // block's where it wrote none), read without the data.
  absl::StatusOr<std::vector<uint32_t>> ReplicaChecksums(const MapDisk& disk,
                                                         uint64_t chunk);
  // Settles one chunk. REQUIRES: ChunkLock(chunk) held exclusively.
  absl::Status SettleChunk(uint64_t chunk, const DirtyChunk& dirty);

  // One piece of a request that falls in a single chunk.
  absl::Status ReadInChunk(uint64_t chunk, uint64_t offset,
                           std::span<uint8_t> out);
  absl::Status WriteInChunk(uint64_t chunk, uint64_t offset,
                            std::span<const uint8_t> data);
  // WriteInChunk's replicated write. REQUIRES: ChunkLock(chunk) held.
  absl::Status WriteReplicas(uint64_t chunk, uint64_t offset,
                             std::span<const uint8_t> data);
  absl::Status CheckRange(uint64_t offset, uint64_t length) const;
  bool IsStale(uint64_t chunk, const std::string& disk);
  absl::Status CheckNotFenced();
  // A write or copy at generation `used` was fenced. When the fence is a
  // snapshot's barrier, waits for it to go and takes a new generation for
  // this writer; returns whether the writer may go on. Otherwise, or when
  // the volume was attached elsewhere, the writer is fenced for good.
  bool ResumeAfterFence(uint64_t used);
  std::shared_ptr<const ClusterMap> Live();
  std::shared_ptr<const VolumePlacement> Placement();
  // Writes to a chunk hold its lock shared; recovering it holds it
  // exclusively. Chunks share a fixed set of locks.
  absl::Mutex& ChunkLock(uint64_t chunk) {
    return chunk_locks_[chunk % kChunkLocks];
  }

  static constexpr size_t kChunkLocks = 64;
  // Checksums asked for per request: a 64 MiB chunk's.
  static constexpr uint64_t kMaxChecksumsPerRead = 16384;

  VolumeCatalog* const catalog_;
  ChunkClientPool* const clients_;
  // The volume as opened: its id and shape. Its placement is placement_.
  const VolumeRecord record_;
  const VolumeIoOptions options_;
  // The attachment's generation; a new one after each snapshot barrier.
  std::atomic<uint64_t> generation_;
  std::atomic<uint64_t> size_;
  absl::Mutex resume_mu_;  // one resume at a time

  absl::Mutex chunk_locks_[kChunkLocks];
  absl::Mutex mu_;
  std::set<std::pair<uint64_t, std::string>> stale_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, DirtyChunk> dirty_ ABSL_GUARDED_BY(mu_);
  bool fenced_ ABSL_GUARDED_BY(mu_) = false;
  // Addresses and states of the disks.
  std::shared_ptr<const ClusterMap> live_ ABSL_GUARDED_BY(mu_);
  // Which disks hold each chunk; changes only with every write held back.
  std::shared_ptr<const VolumePlacement> placement_ ABSL_GUARDED_BY(mu_);
};

// Raises the volume's generation on every daemon of the map, so that no
// older writer can write again, before a new writer starts. A daemon that
// cannot be reached is retried until it is fenced or the pool marks its
// host down (its lease ran out): a daemon learns every fence from etcd
// before it serves again, and one cut off from etcd stops taking writes
// half a lease TTL after it last reached etcd, before the pool can count
// it down. Unavailable if neither happens within `wait`.
absl::Status FenceVolumeEverywhere(EtcdClient* etcd, ChunkClientPool* clients,
                                   const ClusterMap& map,
                                   absl::string_view volume_id,
                                   uint64_t generation,
                                   absl::Duration wait = absl::Seconds(30));

// Deletes the volume: marks it deleting (FailedPrecondition while it is
// attached; NotFound when there is no such volume), deletes its chunks from
// every disk of the current map, then removes its record. When a disk is
// down the volume stays marked deleting and the error says so; calling
// again once the disk is back finishes the delete.
absl::Status DeleteVolume(VolumeCatalog* catalog, EtcdClient* etcd,
                          ChunkClientPool* clients, absl::string_view id);

// Deletes every chunk of the volume from every up disk in the map. Returns
// Unavailable when a disk that may hold chunks is down; call again later.
absl::Status DeleteVolumeChunks(ChunkClientPool* clients, const ClusterMap& map,
                                absl::string_view volume_id,
                                uint64_t generation);

}  // namespace juke
