#include "tests/testing/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"

#include "src/common/status.h"

namespace juke::testing {

absl::StatusOr<std::unique_ptr<TempDir>> TempDir::Create(
    absl::string_view prefix) {
  const char* base = std::getenv("TEST_TMPDIR");
  if (base == nullptr || *base == '\0') base = std::getenv("TMPDIR");
  if (base == nullptr || *base == '\0') base = "/tmp";
  std::string pattern = absl::StrCat(base, "/", prefix, "-XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return ErrnoToStatus(errno, absl::StrCat("mkdtemp ", pattern));
  }
  return std::unique_ptr<TempDir>(new TempDir(buffer.data()));
}

TempDir::~TempDir() {
  const char* keep = std::getenv("JUKE_KEEP_TEST_DIRS");
  if (keep != nullptr && *keep != '\0' && *keep != '0') return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace juke::testing
