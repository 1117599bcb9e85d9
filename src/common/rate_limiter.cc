#include "src/common/rate_limiter.h"

#include <algorithm>

#include "absl/time/clock.h"

namespace juke {

RateLimiter::RateLimiter(uint64_t bytes_per_second)
    : rate_(bytes_per_second),
      tokens_(static_cast<double>(bytes_per_second)),
      last_(absl::Now()) {}

void RateLimiter::Acquire(uint64_t bytes) {
  if (rate_ == 0) return;
  absl::Duration wait;
  {
    absl::MutexLock lock(&mu_);
    absl::Time now = absl::Now();
    const auto rate = static_cast<double>(rate_);
    tokens_ =
        std::min(rate, tokens_ + absl::ToDoubleSeconds(now - last_) * rate);
    last_ = now;
    tokens_ -= static_cast<double>(bytes);
    if (tokens_ < 0) wait = absl::Seconds(-tokens_ / rate);
  }
  absl::SleepFor(wait);
}

}  // namespace juke
