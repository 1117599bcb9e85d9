#include "src/node/mountinfo.h"

#include <stdlib.h>
#include <sys/sysmacros.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace juke::node {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const absl::string_view digits = s.substr(i + 1, 3);
      int value = 0;
      bool octal = true;
      for (char c : digits) {
        octal &= c >= '0' && c <= '7';
        value = value * 8 + (c - '0');
      }
      if (octal) {
        out.push_back(static_cast<char>(value));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

absl::StatusOr<MountEntry> ParseMountInfoLine(absl::string_view line) {
  // id parent major:minor root mount_point options [optional...] - fstype
  // source super_options
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, ' ', absl::SkipEmpty());
  size_t dash = 0;
  for (size_t i = 6; i < fields.size(); ++i) {
    if (fields[i] == "-") {
      dash = i;
      break;
    }
  }
  if (fields.size() < 7 || dash == 0 || dash + 2 >= fields.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed mountinfo line: ", line));
  }
  MountEntry entry;
  std::pair<absl::string_view, absl::string_view> dev =
      absl::StrSplit(fields[2], absl::MaxSplits(':', 1));
  unsigned major_number = 0;
  unsigned minor_number = 0;
  if (!absl::SimpleAtoi(fields[0], &entry.id) ||
      !absl::SimpleAtoi(fields[1], &entry.parent_id) ||
      !absl::SimpleAtoi(dev.first, &major_number) ||
      !absl::SimpleAtoi(dev.second, &minor_number)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed mountinfo line: ", line));
  }
  entry.device = makedev(major_number, minor_number);
  entry.root = Unescape(fields[3]);
  entry.mount_point = Unescape(fields[4]);
  entry.options = std::string(fields[5]);
  entry.fstype = Unescape(fields[dash + 1]);
  entry.source = Unescape(fields[dash + 2]);
  return entry;
}

absl::StatusOr<std::vector<MountEntry>> ReadMountInfo() {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return absl::UnavailableError("cannot read /proc/self/mountinfo");
  std::vector<MountEntry> entries;
  std::string line;
  while (std::getline(in, line)) {
    absl::StatusOr<MountEntry> entry = ParseMountInfoLine(line);
    if (!entry.ok()) return entry.status();
    entries.push_back(*std::move(entry));
  }
  return entries;
}

std::string CanonicalPath(absl::string_view path) {
  std::filesystem::path p = std::filesystem::absolute(std::string(path));
  p = p.lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  char resolved[PATH_MAX];
  if (realpath(p.c_str(), resolved) != nullptr) return resolved;
  // Resolve the parent only; keep the last component as it is.
  if (p.has_parent_path() && p != p.root_path() &&
      realpath(p.parent_path().c_str(), resolved) != nullptr) {
    return (std::filesystem::path(resolved) / p.filename()).string();
  }
  return p.string();
}

absl::StatusOr<bool> IsMountPoint(absl::string_view path) {
  const std::string canonical = CanonicalPath(path);
  absl::StatusOr<std::vector<MountEntry>> entries = ReadMountInfo();
  if (!entries.ok()) return entries.status();
  for (const MountEntry& entry : *entries) {
    if (entry.mount_point == canonical) return true;
  }
  return false;
}

}  // namespace juke::node
