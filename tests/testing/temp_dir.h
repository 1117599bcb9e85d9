#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

// A fresh directory for one test's files, removed with everything in it
// when the object goes away. Set JUKE_KEEP_TEST_DIRS=1 to keep it for a
// post-mortem. Created under $TEST_TMPDIR, else $TMPDIR, else /tmp.
namespace juke::testing {

class TempDir {
 public:
  static absl::StatusOr<std::unique_ptr<TempDir>> Create(
      absl::string_view prefix);
  ~TempDir();

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}

  const std::string path_;
};

}  // namespace juke::testing
