#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#include "src/node/loop_device.h"
#include "src/node/mountinfo.h"

// Helpers shared by the node data path tests.
namespace juke::node::testing {

// Why the kernel facilities these tests need are missing, or "" if they
// are all there: root, /dev/fuse and /dev/loop-control.
inline std::string MissingFacility() {
  if (geteuid() != 0) return "needs root";
  for (const char* dev : {"/dev/fuse", "/dev/loop-control"}) {
    const int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0) return absl::StrCat("cannot open ", dev);
    close(fd);
  }
  return "";
}

inline std::vector<uint8_t> RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) {
      out[i + j] = static_cast<uint8_t>(v >> (8 * j));
    }
  }
  return out;
}

// Mounts at or below `dir`, and loop devices backed by files below it.
inline std::vector<std::string> Leftovers(const std::string& dir) {
  const std::string prefix = absl::StrCat(CanonicalPath(dir), "/");
  std::vector<std::string> found;
  auto mounts = ReadMountInfo();
  if (mounts.ok()) {
    for (const MountEntry& m : *mounts) {
      if (absl::StartsWith(m.mount_point, prefix)) {
        found.push_back(absl::StrCat("mount ", m.mount_point));
      }
    }
  }
  auto loops = ListLoopDevices();
  if (loops.ok()) {
    for (const LoopInfo& l : *loops) {
      if (absl::StartsWith(l.backing_file, prefix)) {
        found.push_back(
            absl::StrCat("/dev/loop", l.number, " on ", l.backing_file));
      }
    }
  }
  return found;
}

// An aligned buffer for O_DIRECT.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size) : size_(size) {
    if (posix_memalign(&data_, 4096, size) != 0) data_ = nullptr;
  }
  ~AlignedBuffer() { free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data() const { return static_cast<uint8_t*>(data_); }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_;
};

}  // namespace juke::node::testing
