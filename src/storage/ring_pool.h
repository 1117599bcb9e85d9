#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "src/common/logging.h"

namespace juke::storage {

// A few io_uring instances shared by every file of a file system. Each call
// takes a ring of its own, submits one request on it and waits for that
// request, so up to kMaxRings calls run at once and the rest wait for a
// ring. Where the kernel refuses io_uring (an old kernel, a seccomp profile
// that blocks it) the calls fall back to plain system calls, logged once.
// Thread-safe.
class RingPool {
 public:
  static constexpr size_t kMaxRings = 4;

  // The kinds of request Run submits.
  enum class Op { kRead, kWrite, kDataSync };

  RingPool();
  ~RingPool();
  RingPool(const RingPool&) = delete;
  RingPool& operator=(const RingPool&) = delete;

  // Runs one request and waits for it. Returns what the system call would:
  // the byte count (0 for kDataSync) or -errno. EINTR and EAGAIN are
  // returned too; the caller decides whether to try again.
  int Run(Op op, int fd, void* buf, size_t len, uint64_t offset);

 private:
  // A ring, waiting while all are busy; nullptr without io_uring.
  std::unique_ptr<io_uring> Acquire();
  void Release(std::unique_ptr<io_uring> ring);
  // Closes a ring that a failed submission left unusable.
  void Discard(std::unique_ptr<io_uring> ring);

  // Sets *usable to false when the ring must not be used again.
  static int RunOnRing(io_uring* ring, Op op, int fd, void* buf, size_t len,
                       uint64_t offset, bool* usable);
  static int RunSyscall(Op op, int fd, void* buf, size_t len, uint64_t offset);

  const Logger log_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<io_uring>> free_ ABSL_GUARDED_BY(mu_);
  size_t created_ ABSL_GUARDED_BY(mu_) = 0;  // free ones and ones in use
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace juke::storage
