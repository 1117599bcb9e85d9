#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// absl::Status is the only error currency in Juke. These helpers convert
// errno values in one place and add context as an error travels up:
//
//   JUKE_RETURN_IF_ERROR(Annotate(file->Sync(), "sync chunk 7"));
namespace juke {

// Maps an errno value to the closest canonical code, keeping the message:
// ENOENT -> NotFound, ENOSPC/EDQUOT -> ResourceExhausted, EINVAL ->
// InvalidArgument, EEXIST -> AlreadyExists, EACCES/EPERM/EROFS ->
// PermissionDenied, EIO/ENXIO/ENODEV -> Unavailable (the disk failed; the
// data may be fine on another replica; DataLoss is kept for checksum
// mismatches), anything else -> Internal.
absl::Status ErrnoToStatus(int err, absl::string_view context);

// Returns `status` with "context: " put before its message; OK stays OK.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace juke

#define JUKE_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status juke_status_ = (expr);        \
    if (!juke_status_.ok()) return juke_status_; \
  } while (0)

#define JUKE_STATUS_CONCAT_INNER_(a, b) a##b
#define JUKE_STATUS_CONCAT_(a, b) JUKE_STATUS_CONCAT_INNER_(a, b)

// JUKE_ASSIGN_OR_RETURN(auto x, FunctionReturningStatusOr());
#define JUKE_ASSIGN_OR_RETURN(lhs, expr)                                    \
  JUKE_ASSIGN_OR_RETURN_IMPL_(JUKE_STATUS_CONCAT_(juke_so_, __LINE__), lhs, \
                              expr)
// `lhs` may be a declaration, so it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define JUKE_ASSIGN_OR_RETURN_IMPL_(so, lhs, expr) \
  auto so = (expr);                                \
  if (!so.ok()) return so.status();                \
  lhs = std::move(so).value()
// NOLINTEND(bugprone-macro-parentheses)
