#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace juke {

// Paces background work (recovery copies) to a byte rate, so foreground
// I/O keeps most of the disks and the network. A token bucket holding at
// most one second's worth: Acquire() takes `bytes` and sleeps as long as
// the bucket is in debt. A rate of 0 never waits. Thread-safe.
class RateLimiter {
 public:
  explicit RateLimiter(uint64_t bytes_per_second);

  void Acquire(uint64_t bytes);

  uint64_t bytes_per_second() const { return rate_; }

 private:
  const uint64_t rate_;
  absl::Mutex mu_;
  // Bytes that may go at once; negative while in debt.
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace juke
