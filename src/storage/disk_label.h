#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

#include "src/storage/chunk_store.h"
#include "src/storage/file_system.h"

// The LABEL file at the root of every disk directory says which pool, host
// and disk the directory belongs to, so that a disk moved to another
// machine, swapped with another one or wiped is refused rather than served
// with the wrong chunks. The format is described in docs/chunk-store.md.
namespace juke::storage {

inline constexpr int kDiskLabelFormatVersion = 1;
inline constexpr char kDiskLabelFileName[] = "LABEL";

struct DiskLabel {
  int format_version = kDiskLabelFormatVersion;
  DiskIdentity identity;
  absl::Time created_at;
};

// Text form: one key=value a line, values C-escaped.
std::string EncodeDiskLabel(const DiskLabel& label);
// DataLoss for text that is not a label; FailedPrecondition for a label of
// a newer format than this build reads.
absl::StatusOr<DiskLabel> DecodeDiskLabel(absl::string_view text);

// FailedPrecondition naming the expected and the found ids, and how to fix
// it, unless `found` carries the `expected` identity.
absl::Status CheckDiskLabel(const DiskLabel& found,
                            const DiskIdentity& expected,
                            absl::string_view dir);

// Reads and checks the label of the disk directory `dir`. A directory
// without a label that holds no chunk store (no index/ nor chunks/) is
// labelled with `expected` when `create_if_missing`, creating it if needed,
// and is NotFound otherwise. A directory with store contents but no label
// is FailedPrecondition: the disk may have been wiped or swapped.
absl::StatusOr<DiskLabel> LoadOrCreateDiskLabel(FileSystem* fs,
                                                const std::string& dir,
                                                const DiskIdentity& expected,
                                                bool create_if_missing);

}  // namespace juke::storage
