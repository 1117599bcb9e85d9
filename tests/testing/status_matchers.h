#pragma once

#include "gmock/gmock.h"

// gMock matchers for absl::Status and absl::StatusOr:
//
//   EXPECT_THAT(client->Delete(key), IsOkAndHolds(true));
//   EXPECT_THAT(client->Put(key, value), IsOk());
namespace juke::testing {

MATCHER(IsOk, "is OK") {
  if constexpr (requires { arg.status(); }) {
    *result_listener << arg.status();
    return arg.ok();
  } else {
    *result_listener << arg;
    return arg.ok();
  }
}

MATCHER_P(IsOkAndHolds, expected,
          "is OK and holds " + ::testing::PrintToString(expected)) {
  if (!arg.ok()) {
    *result_listener << arg.status();
    return false;
  }
  *result_listener << "holds " << ::testing::PrintToString(*arg);
  return *arg == expected;
}

}  // namespace juke::testing
