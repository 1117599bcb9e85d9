#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/time/time.h"

// `juke chunk`: raw chunk access on one storage daemon, for checking a host
// by hand and for the demo. It bypasses replication: a chunk written here
// lives only on the disk named. Volumes are the way to store data.
namespace juke::cli {

struct ChunkOptions {
  std::string action;  // write, read or list
  std::string etcd_endpoints;
  std::string host;     // host id; its address comes from etcd
  std::string disk;     // disk id; empty for the host's first healthy disk
  std::string volume;   // volume id of the chunk
  uint64_t index = 0;   // chunk index
  uint64_t offset = 0;  // byte offset in the chunk
  uint64_t length = 0;  // read: bytes (0 = 4 MiB)
  uint64_t generation = 1;
  std::string from;  // write: the file to send
  std::string to;    // read: the file to fill ("-" for stdout)
  absl::Duration timeout = absl::Seconds(10);
};

// Runs the action; returns the exit code (0, 1 on failure, 2 on usage).
int RunChunk(const ChunkOptions& options, std::ostream& out, std::ostream& err);

}  // namespace juke::cli
