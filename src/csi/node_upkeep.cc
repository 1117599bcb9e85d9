// The node plugin's upkeep of the volumes it stages read-write. Only a
// volume's writer can recover or move it while it is attached (the storage
// daemons leave attached volumes alone), so the node plugin does it, as
// `juke volume attach` does for the volume it holds (docs/recovery.md).

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "src/common/logging.h"
#include "src/common/rate_limiter.h"
#include "src/csi/node_service.h"
#include "src/csi/rpc.h"

namespace juke::csi {
namespace {

// One recovery pass, then one move pass, over one volume.
void Upkeep(NodeVolume& volume, RateLimiter* limiter) {
  const std::string& id = volume.record().id;
  absl::StatusOr<RecoveryProgress> recovered = volume.RecoverStale(limiter);
  absl::StatusOr<MoveProgress> moved =
      recovered.ok() ? volume.Move(limiter) : recovered.status();
  if (!moved.ok()) {
    // A writer that was fenced (the volume went to another node) or let
    // go has nothing left to do here until it is unstaged.
    if (absl::IsFailedPrecondition(moved.status())) {
      JUKE_LOG_DEBUG(Log(), "Upkeep skipped volumeID={} err={}", id,
                     moved.status());
    } else {
      JUKE_LOG_WARN(Log(), "Upkeep pass failed volumeID={} err={}", id,
                    moved.status());
    }
    return;
  }
  if (recovered->recovered > 0 || recovered->waiting > 0) {
    JUKE_LOG_INFO(Log(),
                  "Recovery pass volumeID={} marks={} recovered={} "
                  "waiting={} bytes={}",
                  id, recovered->marks, recovered->recovered,
                  recovered->waiting, recovered->bytes);
  }
  if (!moved->phase.empty()) {
    JUKE_LOG_INFO(Log(),
                  "Move pass volumeID={} phase={} fromEpoch={} toEpoch={} "
                  "chunks={} copied={} dropped={} waiting={} reason={}",
                  id, moved->phase, moved->from_epoch, moved->to_epoch,
                  moved->chunks, moved->copied, moved->dropped, moved->waiting,
                  moved->reason);
  }
}

}  // namespace

void NodeService::UpkeepLoop() {
  RateLimiter limiter(options_.upkeep_rate_bytes);
  while (
      !stop_upkeep_.WaitForNotificationWithTimeout(options_.upkeep_interval)) {
    // The passes copy chunks: they run without the lock, so that the RPCs
    // go on meanwhile; each volume stays alive while its pass runs.
    std::vector<std::shared_ptr<NodeVolume>> writers;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, s] : staged_) {
        if (s.volume != nullptr && !s.read_only) writers.push_back(s.volume);
      }
    }
    for (const std::shared_ptr<NodeVolume>& v : writers) {
      if (stop_upkeep_.HasBeenNotified()) break;
      Upkeep(*v, &limiter);
    }
  }
}

}  // namespace juke::csi
