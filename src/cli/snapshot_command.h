#pragma once

#include <ostream>
#include <string>

#include "absl/time/time.h"

// `juke snapshot`: take, list and delete snapshots of volumes from the
// command line (docs/snapshots.md).
namespace juke::cli {

struct SnapshotOptions {
  std::string action;  // create, list, delete
  std::string etcd_endpoints;
  std::string id;         // create, delete
  std::string volume_id;  // create: the source; list: only its snapshots
  absl::Duration timeout = absl::Seconds(10);
};

// Runs the action; returns the exit code (0, 1 on failure, 2 on usage).
int RunSnapshot(const SnapshotOptions& options, std::ostream& out,
                std::ostream& err);

}  // namespace juke::cli
