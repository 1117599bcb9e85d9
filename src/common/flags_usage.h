#ifndef JUKE_COMMON_FLAGS_USAGE_H_
#define JUKE_COMMON_FLAGS_USAGE_H_

#include "absl/strings/string_view.h"

namespace juke {

// Sets the program's usage message and makes --help list the flags that
// the program's own main file defines (Abseil's default looks for a file
// named after the program, which ours are not). Call before parsing.
void SetFlagsUsage(absl::string_view message);

}  // namespace juke

#endif  // JUKE_COMMON_FLAGS_USAGE_H_
