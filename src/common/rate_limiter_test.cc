#include "src/common/rate_limiter.h"

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace juke {
namespace {

TEST(RateLimiterTest, ZeroRateNeverWaits) {
  RateLimiter limiter(0);
  absl::Time start = absl::Now();
  for (int i = 0; i < 1000; ++i) limiter.Acquire(1ull << 30);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(RateLimiterTest, PacesToTheRateAfterTheFirstSecondsWorth) {
  // 1 MiB/s: the first MiB goes at once, the next two take about 2 s.
  RateLimiter limiter(1 << 20);
  limiter.Acquire(1 << 20);
  absl::Time start = absl::Now();
  for (int i = 0; i < 8; ++i) limiter.Acquire(256 << 10);
  // A lower bound only: a busy machine may be slower, never faster.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1900));
}

}  // namespace
}  // namespace juke
