#pragma once

#include <ostream>
#include <string>

#include "absl/time/time.h"

// `juke volume`: the volume catalog from the command line: create, list,
// show the health of, attach as a block device, detach, recover and delete
// volumes.
namespace juke::cli {

struct VolumeOptions {
  std::string action;  // create, list, status, attach, detach, recover,
                       // delete
  std::string etcd_endpoints;
  std::string id;
  std::string size;  // create: "64MiB", "10GiB", or bytes
  int replicas = 3;
  std::string failure_domain = "host";
  absl::Duration timeout = absl::Seconds(10);
  std::string node;  // attach, detach: this machine's host name
  bool take_over = false;
  std::string state_dir = "/run/juke";
  uint64_t recovery_rate_mib = 64;
};

// Runs the action; returns the exit code (0, 1 on failure, 2 on usage).
int RunVolume(const VolumeOptions& options, std::ostream& out,
              std::ostream& err);

// Parses "4096", "64MiB", "10GiB", "1TiB" (binary units; "K", "M", "G",
// "T" alone mean the same). False for anything else.
bool ParseSize(const std::string& text, uint64_t* bytes);

}  // namespace juke::cli
