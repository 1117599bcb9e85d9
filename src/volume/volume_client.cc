#include "src/volume/volume_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstring>
#include <future>
#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "src/common/checksum.h"
#include "src/common/grpc_status.h"
#include "src/common/logging.h"
#include "src/common/status.h"
#include "src/model/host_registry.h"
#include "src/model/map_store.h"
#include "src/model/placement.h"
#include "src/volume/snapshots.h"

namespace juke {
namespace {

namespace v1 = storage::v1;

Logger Log() {
  static const Logger log = GetLogger("volume");
  return log;
}

// The outcome of one replica's write.
struct ReplicaWrite {
  std::string disk_id;
  absl::Status status;
};

}  // namespace

absl::StatusOr<std::unique_ptr<VolumeClient>> VolumeClient::Open(
    VolumeCatalog* catalog, ChunkClientPool* clients, VolumeRecord record,
    ClusterMap map, VolumeIoOptions options) {
  JUKE_ASSIGN_OR_RETURN(auto stale, catalog->StaleMarks(record.id));
  JUKE_ASSIGN_OR_RETURN(VolumePlacement placement,
                        LoadVolumePlacement(catalog, record, map));
  std::unique_ptr<VolumeClient> client(new VolumeClient(
      catalog, clients, std::move(record), std::move(placement), std::move(map),
      options, std::move(stale)));
  if (client->generation_ == 0) return client;

  // The chunks an earlier writer left dirty are settled before this one
  // writes, so that no read depends on which replica answers.
  JUKE_ASSIGN_OR_RETURN(std::vector<DirtyMark> marks,
                        catalog->ListDirty(client->record_.id));
  if (marks.empty()) return client;
  {
    absl::MutexLock lock(&client->mu_);
    for (const DirtyMark& m : marks) {
      DirtyChunk& d = client->dirty_[m.chunk];
      d.diverged = true;
      d.mod_revision = m.mod_revision;
    }
  }
  absl::Status settled = client->SettleDirty(absl::ZeroDuration());
  JUKE_LOG_INFO(Log(),
                "Dirty chunks of an earlier writer settled volumeID={} "
                "chunks={} err={}",
                client->record_.id, marks.size(), settled);
  return client;
}

VolumeClient::VolumeClient(VolumeCatalog* catalog, ChunkClientPool* clients,
                           VolumeRecord record, VolumePlacement placement,
                           ClusterMap live, VolumeIoOptions options,
                           std::set<std::pair<uint64_t, std::string>> stale)
    : catalog_(catalog),
      clients_(clients),
      record_(std::move(record)),
      options_(options),
      generation_(
          record_.attachment.has_value() ? record_.attachment->generation : 0),
      size_(record_.size_bytes),
      stale_(std::move(stale)),
      live_(std::make_shared<const ClusterMap>(std::move(live))),
      placement_(
          std::make_shared<const VolumePlacement>(std::move(placement))) {}

void VolumeClient::UpdateLiveMap(ClusterMap map) {
  auto live = std::make_shared<const ClusterMap>(std::move(map));
  absl::MutexLock lock(&mu_);
  live_ = std::move(live);
}

std::shared_ptr<const ClusterMap> VolumeClient::Live() {
  absl::MutexLock lock(&mu_);
  return live_;
}

std::shared_ptr<const VolumePlacement> VolumeClient::Placement() {
  absl::MutexLock lock(&mu_);
  return placement_;
}

absl::Status VolumeClient::CheckRange(uint64_t offset, uint64_t length) const {
  if (offset % kBlockSize != 0 || length % kBlockSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset ", offset, " and length ", length,
                     " must be multiples of 4096"));
  }
  const uint64_t size = size_.load();
  if (offset > size || length > size - offset) {
    return absl::OutOfRangeError(absl::StrCat(
        "range ", offset, "+", length, " is past the end of volume ",
        record_.id, " (", size, " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status VolumeClient::Grow(uint64_t new_size) {
  const uint64_t size = size_.load();
  if (new_size == size) return absl::OkStatus();
  if (new_size < size) {
    return absl::FailedPreconditionError(
        absl::StrCat("volume ", record_.id, " is ", size,
                     " bytes; shrinking to ", new_size, " would drop data"));
  }
  // Only the catalog grows a volume; the device follows it, never leads.
  JUKE_ASSIGN_OR_RETURN(VolumeRecord now, catalog_->Get(record_.id));
  if (new_size > now.size_bytes || new_size % record_.chunk_size != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", record_.id, " is ", now.size_bytes,
        " bytes in the catalog; it cannot be served as ", new_size));
  }
  // Concurrent growers race only to sizes the catalog allows; keep the
  // largest.
  uint64_t seen = size;
  while (seen < new_size && !size_.compare_exchange_weak(seen, new_size)) {
  }
  JUKE_LOG_INFO(Log(), "Volume grown volumeID={} oldSize={} newSize={}",
                record_.id, size, new_size);
  return absl::OkStatus();
}

bool VolumeClient::IsStale(uint64_t chunk, const std::string& disk) {
  absl::MutexLock lock(&mu_);
  return stale_.count({chunk, disk}) > 0;
}

absl::Status VolumeClient::Read(uint64_t offset, std::span<uint8_t> out) {
  JUKE_RETURN_IF_ERROR(CheckRange(offset, out.size()));
  uint64_t done = 0;
  while (done < out.size()) {
    uint64_t pos = offset + done;
    uint64_t chunk = pos / record_.chunk_size;
    uint64_t in_chunk = pos % record_.chunk_size;
    uint64_t n =
        std::min<uint64_t>(out.size() - done, record_.chunk_size - in_chunk);
    // One request carries at most 4 MiB.
    n = std::min<uint64_t>(n, 4ull << 20);
    JUKE_RETURN_IF_ERROR(ReadInChunk(chunk, in_chunk, out.subspan(done, n)));
    done += n;
  }
  return absl::OkStatus();
}

absl::Status VolumeClient::Write(uint64_t offset,
                                 std::span<const uint8_t> data) {
  JUKE_RETURN_IF_ERROR(CheckRange(offset, data.size()));
  if (generation_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", record_.id, " is not attached read-write here"));
  }
  uint64_t done = 0;
  while (done < data.size()) {
    uint64_t pos = offset + done;
    uint64_t chunk = pos / record_.chunk_size;
    uint64_t in_chunk = pos % record_.chunk_size;
    uint64_t n =
        std::min<uint64_t>(data.size() - done, record_.chunk_size - in_chunk);
    n = std::min<uint64_t>(n, 4ull << 20);
    JUKE_RETURN_IF_ERROR(WriteInChunk(chunk, in_chunk, data.subspan(done, n)));
    done += n;
  }
  return absl::OkStatus();
}

absl::Status VolumeClient::ReadInChunk(uint64_t chunk, uint64_t offset,
                                       std::span<uint8_t> out) {
  JUKE_ASSIGN_OR_RETURN(std::vector<std::string> disks,
                        Placement()->ReadReplicas(record_, chunk));

  absl::Status last = absl::UnavailableError("no replica is up and current");
  std::vector<const MapDisk*> bad;  // replicas that returned bad data
  std::shared_ptr<const ClusterMap> live = Live();
  for (const std::string& disk_id : disks) {
    const MapDisk* disk = live->FindDisk(disk_id);
    if (disk == nullptr || !disk->up || IsStale(chunk, disk_id)) continue;

    v1::ReadChunkRequest req;
    req.set_disk_id(disk_id);
    req.mutable_chunk()->set_volume_id(record_.id);
    req.mutable_chunk()->set_index(chunk);
    req.set_offset(offset);
    req.set_length(out.size());
    v1::ReadChunkResponse resp;
    grpc::ClientContext ctx;
    SetDeadlineAfter(&ctx, options_.rpc_timeout);
    absl::Status s = FromGrpcStatus(
        clients_->For(disk->address)->ReadChunk(&ctx, req, &resp));

    if (absl::IsNotFound(s)) {
      // A chunk never written reads as zeros.
      std::memset(out.data(), 0, out.size());
      return absl::OkStatus();
    }
    if (s.ok()) {
      // Check end to end: what arrived is what the disk vouched for.
      const auto* bytes = reinterpret_cast<const uint8_t*>(resp.data().data());
      std::vector<uint32_t> sums = BlockChecksums({bytes, resp.data().size()});
      if (resp.data().size() != out.size() ||
          !std::equal(sums.begin(), sums.end(), resp.checksums().begin(),
                      resp.checksums().end())) {
        s = absl::DataLossError("checksum mismatch on the wire");
      }
    }
    if (!s.ok()) {
      JUKE_LOG_WARN(Log(),
                    "Replica read failed, trying the next volumeID={} "
                    "chunk={} diskID={} err={}",
                    record_.id, chunk, disk_id, s);
      if (absl::IsDataLoss(s)) bad.push_back(disk);
      last = s;
      continue;
    }

    std::memcpy(out.data(), resp.data().data(), out.size());
    // Repair the copies that failed their checksums by writing the good
    // data back to every replica; a read-only holder cannot, and leaves it
    // to recovery.
    if (!bad.empty() && generation_ != 0) {
      absl::Status repaired = WriteInChunk(chunk, offset, out);
      for (const MapDisk* b : bad) {
        JUKE_LOG_INFO(Log(),
                      "Replica repaired volumeID={} chunk={} diskID={} "
                      "err={}",
                      record_.id, chunk, b->disk_id, repaired);
      }
    }
    return absl::OkStatus();
  }
  return Annotate(last,
                  absl::StrCat("read volume ", record_.id, " chunk ", chunk));
}

absl::Status VolumeClient::CheckNotFenced() {
  absl::MutexLock lock(&mu_);
  if (fenced_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", record_.id, " was attached elsewhere; this writer ",
        "(generation ", generation_.load(), ") is fenced"));
  }
  return absl::OkStatus();
}

absl::Status VolumeClient::BeginWrite(uint64_t chunk) {
  {
    absl::MutexLock lock(&mu_);
    auto it = dirty_.find(chunk);
    if (it != dirty_.end()) {
      ++it->second.writing;
      return absl::OkStatus();
    }
  }
  // Two writes may both mark it; the mark is the same.
  JUKE_RETURN_IF_ERROR(
      Annotate(catalog_->MarkDirty(record_.id, chunk, generation_.load()),
               absl::StrCat("write volume ", record_.id, " chunk ", chunk,
                            ": mark it dirty")));
  absl::MutexLock lock(&mu_);
  ++dirty_[chunk].writing;
  return absl::OkStatus();
}

void VolumeClient::EndWrite(uint64_t chunk, bool ok) {
  absl::MutexLock lock(&mu_);
  DirtyChunk& d = dirty_[chunk];
  --d.writing;
  d.last_write = absl::Now();
  if (!ok) d.diverged = true;
}

absl::Status VolumeClient::SettleDirty(absl::Duration idle) {
  if (generation_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", record_.id, " is not attached read-write here"));
  }
  std::vector<uint64_t> due;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const auto& [chunk, d] : dirty_) {
      if (d.writing == 0 && now - d.last_write >= idle) due.push_back(chunk);
    }
  }
  absl::Status result;
  for (uint64_t chunk : due) {
    absl::MutexLock chunk_lock(&ChunkLock(chunk));
    DirtyChunk dirty;
    {
      absl::MutexLock lock(&mu_);
      auto it = dirty_.find(chunk);
      if (it == dirty_.end() || it->second.writing != 0) continue;
      dirty = it->second;
    }
    absl::Status s = SettleChunk(chunk, dirty);
    if (!s.ok() && result.ok()) result = s;
  }
  return result;
}

absl::StatusOr<std::vector<uint32_t>> VolumeClient::ReplicaChecksums(
    const MapDisk& disk, uint64_t chunk) {
  std::vector<uint32_t> sums;
  sums.reserve(record_.chunk_size / kBlockSize);
  for (uint64_t offset = 0; offset < record_.chunk_size;
       offset += kMaxChecksumsPerRead * kBlockSize) {
    const uint64_t length = std::min<uint64_t>(
        kMaxChecksumsPerRead * kBlockSize, record_.chunk_size - offset);
    v1::ReadChunkRequest req;
    req.set_disk_id(disk.disk_id);
    req.mutable_chunk()->set_volume_id(record_.id);
    req.mutable_chunk()->set_index(chunk);
    req.set_offset(offset);
    req.set_length(length);
    req.set_checksums_only(true);
    v1::ReadChunkResponse resp;
    grpc::ClientContext ctx;
    SetDeadlineAfter(&ctx, options_.rpc_timeout);
    absl::Status s = FromGrpcStatus(
        clients_->For(disk.address)->ReadChunk(&ctx, req, &resp));
    if (absl::IsNotFound(s)) {
      // A chunk never written reads as zeros, like one written with zeros.
      sums.assign(record_.chunk_size / kBlockSize, ZeroBlockChecksum());
      return sums;
    }
    JUKE_RETURN_IF_ERROR(s);
    if (static_cast<uint64_t>(resp.checksums_size()) != length / kBlockSize) {
      return absl::DataLossError(
          absl::StrCat("disk ", disk.disk_id, " sent ", resp.checksums_size(),
                       " checksums for ", length / kBlockSize, " blocks"));
    }
    sums.insert(sums.end(), resp.checksums().begin(), resp.checksums().end());
  }
  return sums;
}

absl::Status VolumeClient::SettleChunk(uint64_t chunk,
                                       const DirtyChunk& dirty) {
  std::vector<std::string> stale;
  if (dirty.diverged) {
    // The first current replica that answers is what reads see: it stays.
    // Every other replica that holds other data, or cannot tell, is stale
    // until recovery copies the kept one over it.
    std::shared_ptr<const VolumePlacement> placement = Placement();
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> readers,
                          placement->ReadReplicas(record_, chunk));
    JUKE_ASSIGN_OR_RETURN(std::vector<std::string> writers,
                          placement->WriteReplicas(record_, chunk));
    std::shared_ptr<const ClusterMap> live = Live();
    std::map<std::string, std::vector<uint32_t>> content;
    for (const std::string& d : writers) {
      const MapDisk* disk = live->FindDisk(d);
      if (disk == nullptr || !disk->up || IsStale(chunk, d)) continue;
      absl::StatusOr<std::vector<uint32_t>> sums =
          ReplicaChecksums(*disk, chunk);
      if (sums.ok()) content[d] = *std::move(sums);
    }
    std::string kept;
    for (const std::string& d : readers) {
      if (content.count(d) > 0) {
        kept = d;
        break;
      }
    }
    if (kept.empty()) {
      return absl::UnavailableError(
          absl::StrCat("volume ", record_.id, " chunk ", chunk,
                       " stays dirty: no current replica answers"));
    }
    for (const std::string& d : writers) {
      if (d == kept || IsStale(chunk, d)) continue;
      auto it = content.find(d);
      if (it == content.end() || it->second != content[kept]) {
        stale.push_back(d);
      }
    }
  }
  const uint64_t generation = generation_.load();
  JUKE_ASSIGN_OR_RETURN(
      bool settled, catalog_->SettleDirty(record_.id, chunk, dirty.mod_revision,
                                          stale, generation));
  if (!settled) {
    // A snapshot's barrier took the fence up meanwhile (a later call
    // settles it), or another writer holds the volume (it settles it).
    return absl::AbortedError(absl::StrCat("volume ", record_.id, " chunk ",
                                           chunk, " stays dirty: generation ",
                                           generation, " is not the fence"));
  }
  absl::MutexLock lock(&mu_);
  for (const std::string& d : stale) stale_.emplace(chunk, d);
  dirty_.erase(chunk);
  return absl::OkStatus();
}

absl::Status VolumeClient::WriteInChunk(uint64_t chunk, uint64_t offset,
                                        std::span<const uint8_t> data) {
  JUKE_RETURN_IF_ERROR(CheckNotFenced());
  absl::ReaderMutexLock chunk_lock(&ChunkLock(chunk));
  JUKE_RETURN_IF_ERROR(BeginWrite(chunk));
  absl::Status s = WriteReplicas(chunk, offset, data);
  EndWrite(chunk, s.ok());
  return s;
}

absl::Status VolumeClient::WriteReplicas(uint64_t chunk, uint64_t offset,
                                         std::span<const uint8_t> data) {
  v1::WriteChunkRequest req;
  req.mutable_chunk()->set_volume_id(record_.id);
  req.mutable_chunk()->set_index(chunk);
  req.set_offset(offset);
  req.set_data(data.data(), data.size());
  for (uint32_t c : BlockChecksums(data)) req.add_checksums(c);

  std::vector<std::string> disks;
  std::vector<ReplicaWrite> results;
  int ok = 0;
  for (int attempt = 0;; ++attempt) {
    JUKE_RETURN_IF_ERROR(CheckNotFenced());
    const uint64_t generation = generation_.load();
    req.set_generation(generation);
    JUKE_ASSIGN_OR_RETURN(disks, Placement()->WriteReplicas(record_, chunk));

    // Every up replica at once; down ones are stale from the start.
    results.clear();
    std::vector<std::future<absl::Status>> pending;
    std::shared_ptr<const ClusterMap> live = Live();
    for (const std::string& disk_id : disks) {
      const MapDisk* disk = live->FindDisk(disk_id);
      results.push_back({disk_id, absl::UnavailableError("host is down")});
      if (disk == nullptr || !disk->up) {
        pending.emplace_back();
        continue;
      }
      auto* stub = clients_->For(disk->address);
      pending.push_back(std::async(std::launch::async, [&, stub, disk_id] {
        v1::WriteChunkRequest mine = req;
        mine.set_disk_id(disk_id);
        v1::WriteChunkResponse resp;
        grpc::ClientContext ctx;
        SetDeadlineAfter(&ctx, options_.rpc_timeout);
        return FromGrpcStatus(stub->WriteChunk(&ctx, mine, &resp));
      }));
    }
    ok = 0;
    bool fenced = false;
    for (size_t i = 0; i < results.size(); ++i) {
      if (pending[i].valid()) results[i].status = pending[i].get();
      if (results[i].status.ok()) ++ok;
      if (absl::IsFailedPrecondition(results[i].status)) fenced = true;
    }
    if (!fenced) break;

    // A snapshot's barrier fences the writer for a moment: the write goes
    // again, whole, with the writer's new generation.
    if (attempt < 3 && ResumeAfterFence(generation)) continue;
    {
      absl::MutexLock lock(&mu_);
      fenced_ = true;
    }
    JUKE_LOG_WARN(Log(), "Writer fenced volumeID={} generation={}", record_.id,
                  generation);
    return CheckNotFenced();
  }

  int needed = std::min(options_.min_replicas, Placement()->replicas);
  if (ok < needed) {
    return absl::UnavailableError(absl::StrCat(
        "write volume ", record_.id, " chunk ", chunk, ": ", ok, " of ",
        disks.size(), " replicas took it; ", needed, " needed"));
  }

  // The replicas that missed it must never serve a read again until
  // recovery brings them back: record that before acknowledging.
  for (const ReplicaWrite& r : results) {
    if (r.status.ok() || IsStale(chunk, r.disk_id)) continue;
    JUKE_RETURN_IF_ERROR(Annotate(
        catalog_->MarkStale(record_.id, chunk, r.disk_id, generation_.load()),
        absl::StrCat("record replica ", r.disk_id, " stale")));
    absl::MutexLock lock(&mu_);
    stale_.emplace(chunk, r.disk_id);
  }
  return absl::OkStatus();
}

bool VolumeClient::ResumeAfterFence(uint64_t used) {
  absl::MutexLock lock(&resume_mu_);
  // Another write of this writer resumed meanwhile.
  if (generation_.load() != used) return true;
  if (!record_.attachment.has_value()) return false;
  const absl::Time deadline = absl::Now() + options_.barrier_wait;
  while (true) {
    absl::StatusOr<VolumeRecord> renewed =
        catalog_->Renew(record_.id, record_.attachment->node, used);
    if (renewed.ok()) {
      generation_.store(renewed->attachment->generation);
      return true;
    }
    // Unavailable: the barrier is still up. Anything else: the volume is
    // attached elsewhere now, or etcd cannot say; stay fenced.
    if (!absl::IsUnavailable(renewed.status()) || absl::Now() > deadline) {
      JUKE_LOG_WARN(Log(),
                    "Writer cannot resume volumeID={} generation={} err={}",
                    record_.id, used, renewed.status());
      return false;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::StatusOr<RecoveryProgress> VolumeClient::RecoverStale(
    RateLimiter* limiter) {
  if (generation_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "volume ", record_.id, " is not attached read-write here"));
  }
  JUKE_RETURN_IF_ERROR(CheckNotFenced());
  absl::Status settled = SettleDirty(options_.dirty_idle);
  if (!settled.ok()) {
    JUKE_LOG_INFO(Log(), "Dirty chunks wait volumeID={} err={}", record_.id,
                  settled);
  }
  JUKE_ASSIGN_OR_RETURN(std::vector<StaleMark> marks,
                        catalog_->ListStaleMarks(record_.id));
  std::map<uint64_t, std::set<std::string>> stale;
  for (const StaleMark& m : marks) stale[m.chunk].insert(m.disk_id);

  RecoveryProgress progress;
  progress.marks = marks.size();
  for (const StaleMark& mark : marks) {
    absl::MutexLock chunk_lock(&ChunkLock(mark.chunk));
    // The replica count may have changed with a move since the volume was
    // opened; the placement knows the current one.
    std::shared_ptr<const VolumePlacement> placement = Placement();
    VolumeRecord shape = record_;
    shape.replicas = placement->replicas;
    const uint64_t generation = generation_.load();
    absl::StatusOr<uint64_t> copied = CopyReplica(
        clients_, placement->read, *Live(), shape, mark.chunk, mark.disk_id,
        stale[mark.chunk], generation, limiter, options_.rpc_timeout);
    if (absl::IsFailedPrecondition(copied.status()) &&
        absl::StrContains(copied.status().message(), "fenced") &&
        !ResumeAfterFence(generation)) {
      absl::MutexLock lock(&mu_);
      fenced_ = true;
    }
    JUKE_RETURN_IF_ERROR(CheckNotFenced());
    if (!copied.ok()) {
      JUKE_LOG_INFO(Log(),
                    "Replica not recovered yet volumeID={} chunk={} "
                    "diskID={} err={}",
                    record_.id, mark.chunk, mark.disk_id, copied.status());
      ++progress.waiting;
      continue;
    }
    progress.bytes += *copied;
    // Only this writer marks replicas of the volume while it holds it, and
    // it cannot have marked this one during the copy: the mark is the one
    // read above unless something is badly wrong, and then it stays.
    JUKE_ASSIGN_OR_RETURN(bool cleared,
                          catalog_->ClearStaleIfUnchanged(record_.id, mark, 0));
    if (!cleared) {
      ++progress.waiting;
      continue;
    }
    ++progress.recovered;
    stale[mark.chunk].erase(mark.disk_id);
    absl::MutexLock lock(&mu_);
    stale_.erase({mark.chunk, mark.disk_id});
  }
  return progress;
}

absl::StatusOr<MoveProgress> VolumeClient::Move(RateLimiter* limiter) {
  for (int attempt = 0;; ++attempt) {
    JUKE_RETURN_IF_ERROR(CheckNotFenced());
    const uint64_t generation = generation_.load();
    absl::StatusOr<MoveProgress> progress =
        MoveVolume(catalog_, clients_, *Live(), record_.id, this, limiter,
                   options_.rpc_timeout);
    const bool fenced =
        absl::IsFailedPrecondition(progress.status()) &&
        (absl::StrContains(progress.status().message(), "fenced") ||
         absl::StrContains(progress.status().message(), "no longer attached"));
    if (!fenced) return progress;
    // A snapshot's barrier fenced this writer: go on with its new
    // generation. Anything else took the volume away for good.
    if (!ResumeAfterFence(generation)) {
      absl::MutexLock lock(&mu_);
      fenced_ = true;
      return progress;
    }
    if (attempt == 2) {
      return absl::AbortedError(absl::StrCat(
          "move of volume ", record_.id,
          " was held by snapshots three times in a row; the next pass goes "
          "on"));
    }
  }
}

absl::Status VolumeClient::WithChunkHeld(uint64_t chunk,
                                         absl::FunctionRef<absl::Status()> fn) {
  absl::MutexLock chunk_lock(&ChunkLock(chunk));
  return fn();
}

absl::Status VolumeClient::WithWritesHeld(
    absl::FunctionRef<absl::Status()> fn) {
  // Always in index order, and no one else holds two at once.
  for (absl::Mutex& m : chunk_locks_) m.Lock();
  absl::Status s = fn();
  for (absl::Mutex& m : chunk_locks_) m.Unlock();
  return s;
}

absl::Status VolumeClient::Adopt(const VolumeRecord& record) {
  std::shared_ptr<const ClusterMap> live = Live();
  JUKE_ASSIGN_OR_RETURN(VolumePlacement placement,
                        LoadVolumePlacement(catalog_, record, *live));
  JUKE_ASSIGN_OR_RETURN(auto stale, catalog_->StaleMarks(record_.id));
  auto next = std::make_shared<const VolumePlacement>(std::move(placement));
  absl::MutexLock lock(&mu_);
  placement_ = std::move(next);
  stale_ = std::move(stale);
  return absl::OkStatus();
}

void VolumeClient::ForgetStale(uint64_t chunk, const std::string& disk_id) {
  absl::MutexLock lock(&mu_);
  stale_.erase({chunk, disk_id});
}

absl::Status FenceVolumeEverywhere(EtcdClient* etcd, ChunkClientPool* clients,
                                   const ClusterMap& map,
                                   absl::string_view volume_id,
                                   uint64_t generation, absl::Duration wait) {
  std::map<std::string, std::string> pending;  // address -> host id
  for (const MapDisk& d : map.disks()) {
    if (d.up) pending.emplace(d.address, d.host_id);
  }
  absl::Time deadline = absl::Now() + wait;
  absl::Status last;
  while (true) {
    for (auto it = pending.begin(); it != pending.end();) {
      v1::FenceVolumeRequest req;
      req.set_volume_id(std::string(volume_id));
      req.set_generation(generation);
      v1::FenceVolumeResponse resp;
      grpc::ClientContext ctx;
      SetDeadlineAfter(&ctx, absl::Seconds(5));
      absl::Status s = FromGrpcStatus(
          clients->For(it->first)->FenceVolume(&ctx, req, &resp));
      if (s.ok()) {
        it = pending.erase(it);
        continue;
      }
      if (!absl::IsUnavailable(s) && !absl::IsDeadlineExceeded(s)) {
        return Annotate(
            s, absl::StrCat("fence volume ", volume_id, " on ", it->second));
      }
      last = Annotate(
          s, absl::StrCat("fence volume ", volume_id, " on ", it->second));
      ++it;
    }
    if (pending.empty()) return absl::OkStatus();

    // Hosts whose lease has run out will learn the fence before serving.
    JUKE_ASSIGN_OR_RETURN(std::vector<HostStatus> hosts, ListHosts(*etcd));
    for (const HostStatus& h : hosts) {
      if (h.up) continue;
      for (auto it = pending.begin(); it != pending.end();) {
        it = it->second == h.record.host_id ? pending.erase(it) : ++it;
      }
    }
    if (pending.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          "could not fence every daemon within ", absl::FormatDuration(wait),
          "; last error: ", last.message()));
    }
    JUKE_LOG_INFO(Log(),
                  "Waiting for unreachable daemons to be fenced or marked "
                  "down volumeID={} pending={}",
                  volume_id, pending.size());
    absl::SleepFor(absl::Milliseconds(500));
  }
}

absl::Status DeleteVolume(VolumeCatalog* catalog, EtcdClient* etcd,
                          ChunkClientPool* clients, absl::string_view id) {
  JUKE_ASSIGN_OR_RETURN(VolumeRecord v, catalog->MarkDeleting(id));
  // A clone given up while it was being filled leaves the internal
  // snapshot of its source behind; it goes with the clone.
  if (v.source.has_value() && v.source->kind == VolumeSource::Kind::kVolume) {
    JUKE_RETURN_IF_ERROR(DeleteSnapshot(etcd, clients, CloneSnapshotId(id)));
  }
  JUKE_ASSIGN_OR_RETURN(ClusterMap map, RefreshMap(*etcd));
  absl::Status chunks = DeleteVolumeChunks(clients, map, id, v.generation);
  if (!chunks.ok()) {
    return absl::Status(chunks.code(),
                        absl::StrCat("volume ", id, " is marked deleting, but ",
                                     chunks.message()));
  }
  JUKE_RETURN_IF_ERROR(catalog->Remove(id));
  JUKE_LOG_INFO(Log(), "Volume deleted volumeID={}", id);
  return absl::OkStatus();
}

absl::Status DeleteVolumeChunks(ChunkClientPool* clients, const ClusterMap& map,
                                absl::string_view volume_id,
                                uint64_t generation) {
  absl::Status result;
  for (const MapDisk& d : map.disks()) {
    if (!d.up) {
      result = absl::UnavailableError(absl::StrCat(
          "disk ", d.disk_id, " on ", d.host_id,
          " is down; its chunks of the volume remain until it returns"));
      continue;
    }
    auto* stub = clients->For(d.address);
    JUKE_ASSIGN_OR_RETURN(
        std::vector<uint64_t> chunks,
        ListChunkIndexes(stub, d.disk_id, volume_id, absl::Seconds(10)));
    for (uint64_t chunk : chunks) {
      v1::DeleteChunkRequest del;
      del.set_disk_id(d.disk_id);
      del.mutable_chunk()->set_volume_id(std::string(volume_id));
      del.mutable_chunk()->set_index(chunk);
      del.set_generation(generation);
      v1::DeleteChunkResponse resp;
      grpc::ClientContext ctx;
      SetDeadlineAfter(&ctx, absl::Seconds(10));
      absl::Status s = FromGrpcStatus(stub->DeleteChunk(&ctx, del, &resp));
      if (!s.ok() && !absl::IsNotFound(s)) return s;
    }
  }
  return result;
}

}  // namespace juke
