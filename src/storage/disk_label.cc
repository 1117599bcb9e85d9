#include "src/storage/disk_label.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "src/common/logging.h"
#include "src/common/status.h"

namespace juke::storage {
namespace {

constexpr char kHeader[] = "# Juke disk label. Do not edit.";

std::string Describe(const DiskIdentity& id) {
  return absl::StrCat("pool_id=", absl::CEscape(id.pool_id),
                      " host_id=", absl::CEscape(id.host_id),
                      " disk_id=", absl::CEscape(id.disk_id));
}

}  // namespace

std::string EncodeDiskLabel(const DiskLabel& label) {
  return absl::StrCat(kHeader, "\n", "format_version=", label.format_version,
                      "\n", "pool_id=", absl::CEscape(label.identity.pool_id),
                      "\n", "host_id=", absl::CEscape(label.identity.host_id),
                      "\n", "disk_id=", absl::CEscape(label.identity.disk_id),
                      "\n", "created_at=",
                      absl::FormatTime(absl::RFC3339_sec, label.created_at,
                                       absl::UTCTimeZone()),
                      "\n");
}

absl::StatusOr<DiskLabel> DecodeDiskLabel(absl::string_view text) {
  std::map<std::string, std::string, std::less<>> fields;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line.front() == '#') continue;
    std::vector<absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    std::string value;
    if (kv.size() != 2 || !absl::CUnescape(kv[1], &value)) {
      return absl::DataLossError(absl::StrCat("disk label: malformed line '",
                                              absl::CEscape(line), "'"));
    }
    fields.insert_or_assign(std::string{kv[0]}, std::move(value));
  }

  DiskLabel label;
  auto version = fields.find("format_version");
  if (version == fields.end() ||
      !absl::SimpleAtoi(version->second, &label.format_version)) {
    return absl::DataLossError("disk label: no format_version");
  }
  if (label.format_version > kDiskLabelFormatVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("disk label: format version ", label.format_version,
                     " is newer than this build reads (",
                     kDiskLabelFormatVersion, "); upgrade the storage daemon"));
  }
  for (auto [key, out] : {std::pair{"pool_id", &label.identity.pool_id},
                          std::pair{"host_id", &label.identity.host_id},
                          std::pair{"disk_id", &label.identity.disk_id}}) {
    auto it = fields.find(key);
    if (it == fields.end()) {
      return absl::DataLossError(absl::StrCat("disk label: no ", key));
    }
    *out = it->second;
  }
  auto created = fields.find("created_at");
  std::string err;
  if (created == fields.end() ||
      !absl::ParseTime(absl::RFC3339_full, created->second, &label.created_at,
                       &err)) {
    return absl::DataLossError(
        absl::StrCat("disk label: no valid created_at ", err));
  }
  return label;
}

absl::Status CheckDiskLabel(const DiskLabel& found,
                            const DiskIdentity& expected,
                            absl::string_view dir) {
  const DiskIdentity& id = found.identity;
  if (id.pool_id == expected.pool_id && id.host_id == expected.host_id &&
      id.disk_id == expected.disk_id) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "disk ", dir, " belongs elsewhere: expected ", Describe(expected),
      ", found ", Describe(id), " (labelled ",
      absl::FormatTime(absl::RFC3339_sec, found.created_at,
                       absl::UTCTimeZone()),
      "); check that the right disk is mounted at ", dir,
      ", or wipe the directory to reuse the disk here (its chunks are lost)"));
}

absl::StatusOr<DiskLabel> LoadOrCreateDiskLabel(FileSystem* fs,
                                                const std::string& dir,
                                                const DiskIdentity& expected,
                                                bool create_if_missing) {
  std::string path = absl::StrCat(dir, "/", kDiskLabelFileName);
  absl::StatusOr<std::string> text = fs->ReadFile(path);
  if (text.ok()) {
    absl::StatusOr<DiskLabel> label = DecodeDiskLabel(*text);
    if (!label.ok()) return Annotate(label.status(), path);
    JUKE_RETURN_IF_ERROR(CheckDiskLabel(*label, expected, dir));
    return label;
  }
  if (!absl::IsNotFound(text.status())) return text.status();

  // No label: a blank disk, or one whose label was lost.
  absl::StatusOr<std::vector<std::string>> entries = fs->ListDir(dir);
  if (!entries.ok() && !absl::IsNotFound(entries.status())) {
    return entries.status();
  }
  if (entries.ok()) {
    for (const std::string& name : *entries) {
      if (name == "index" || name == "chunks") {
        return absl::FailedPreconditionError(absl::StrCat(
            "disk ", dir,
            ": label missing, disk may have been wiped or "
            "swapped: it holds ",
            name, "/ but no ", kDiskLabelFileName,
            "; restore the label if this is the disk of ", Describe(expected),
            ", or empty the directory to reuse the disk (its chunks are "
            "lost)"));
      }
    }
  }
  if (!create_if_missing) {
    return absl::NotFoundError(absl::StrCat(
        "disk ", dir, " has no label and create_if_missing is off"));
  }

  DiskLabel label;
  label.identity = expected;
  label.created_at = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  JUKE_RETURN_IF_ERROR(fs->CreateDirs(dir));
  JUKE_RETURN_IF_ERROR(fs->WriteFile(path, EncodeDiskLabel(label)));
  JUKE_LOG_INFO(GetLogger("storage"),
                "Disk labelled path={} poolID={} hostID={} diskID={}", dir,
                expected.pool_id, expected.host_id, expected.disk_id);
  return label;
}

}  // namespace juke::storage
