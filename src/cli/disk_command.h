#pragma once

#include <ostream>
#include <string>

#include "absl/time/time.h"

// `juke disk`: an admin's decisions about one disk of the pool: take it
// out (its data moves to other disks), bring it back in.
namespace juke::cli {

struct DiskOptions {
  std::string action;  // out, in
  std::string etcd_endpoints;
  std::string disk_id;
  absl::Duration timeout = absl::Seconds(10);
};

// Runs the action; returns the exit code (0, 1 on failure).
int RunDisk(const DiskOptions& options, std::ostream& out, std::ostream& err);

}  // namespace juke::cli
