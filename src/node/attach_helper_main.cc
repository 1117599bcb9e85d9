// A minimal attachment owner for the signal tests: attaches a fresh
// in-memory volume under a state directory, reports the device, and
// detaches on SIGTERM the way a real owner must.
//
//   node_attach_helper <state_dir> <ready_file>
//
// Writes the device path to <ready_file> once attached.

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "src/common/signals.h"
#include "src/node/attachment.h"
#include "src/node/block_backend.h"

int main(int argc, char** argv) {
  // Before any thread starts, so that only the wait below takes SIGTERM.
  juke::BlockTerminationSignals();
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <state_dir> <ready_file>\n", argv[0]);
    return 2;
  }
  auto backend = std::make_shared<juke::node::MemoryBackend>(64 << 20);
  auto attachment = juke::node::Attachment::Attach(backend, argv[1]);
  if (!attachment.ok()) {
    std::fprintf(stderr, "attach: %s\n",
                 attachment.status().ToString().c_str());
    return 3;
  }
  const std::string ready = argv[2];
  {
    std::ofstream out(ready + ".tmp");
    out << (*attachment)->device_path() << "\n";
  }
  std::rename((ready + ".tmp").c_str(), ready.c_str());

  juke::WaitForTerminationSignal();
  const absl::Status status = (*attachment)->Detach();
  if (!status.ok()) {
    std::fprintf(stderr, "detach: %s\n", status.ToString().c_str());
    return 4;
  }
  return 0;
}
