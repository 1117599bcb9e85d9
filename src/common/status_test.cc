#include "src/common/status.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace juke {
namespace {

TEST(StatusTest, ErrnoMapsToCanonicalCodes) {
  EXPECT_EQ(ErrnoToStatus(ENOENT, "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToStatus(ENOSPC, "x").code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatus(EIO, "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrnoToStatus(EBADF, "x").code(), absl::StatusCode::kInternal);
}

TEST(StatusTest, ErrnoKeepsContextAndReason) {
  absl::Status s = ErrnoToStatus(ENOSPC, "write chunk 7");
  EXPECT_EQ(s.message(), "write chunk 7: No space left on device");
}

TEST(StatusTest, AnnotatePrefixesAndKeepsCode) {
  absl::Status s = Annotate(absl::NotFoundError("no such chunk"), "disk d3");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "disk d3: no such chunk");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "ctx").ok());
}

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::Status Quarter(int x, int* out) {
  JUKE_ASSIGN_OR_RETURN(int half, Half(x));
  JUKE_ASSIGN_OR_RETURN(*out, Half(half));
  return absl::OkStatus();
}

TEST(StatusTest, AssignOrReturnPropagatesErrors) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(Quarter(6, &out).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace juke
