#include "src/storage/ring_pool.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace juke::storage {
namespace {

// One request at a time per ring; a little room does no harm.
constexpr unsigned kRingEntries = 4;

}  // namespace

RingPool::RingPool() : log_(GetLogger("storage")) {}

RingPool::~RingPool() {
  absl::MutexLock lock(&mu_);
  for (auto& ring : free_) io_uring_queue_exit(ring.get());
}

int RingPool::Run(Op op, int fd, void* buf, size_t len, uint64_t offset) {
  std::unique_ptr<io_uring> ring = Acquire();
  if (ring == nullptr) return RunSyscall(op, fd, buf, len, offset);
  bool usable = true;
  int res = RunOnRing(ring.get(), op, fd, buf, len, offset, &usable);
  if (usable) {
    Release(std::move(ring));
  } else {
    Discard(std::move(ring));
  }
  return res;
}

std::unique_ptr<io_uring> RingPool::Acquire() {
  auto has_free = +[](RingPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
    return !p->free_.empty();
  };
  absl::MutexLock lock(&mu_);
  while (true) {
    if (unavailable_) return nullptr;
    if (!free_.empty()) {
      std::unique_ptr<io_uring> ring = std::move(free_.back());
      free_.pop_back();
      return ring;
    }
    if (created_ < kMaxRings) break;
    mu_.Await(absl::Condition(has_free, this));
  }

  auto ring = std::make_unique<io_uring>();
  int r = io_uring_queue_init(kRingEntries, ring.get(), 0);
  if (r < 0 && created_ == 0) {
    unavailable_ = true;
    JUKE_LOG_WARN(log_, "io_uring unavailable, using plain system calls err={}",
                  std::strerror(-r));
    return nullptr;
  }
  if (r < 0) {
    // Out of memory for another ring, say; the existing ones will do.
    mu_.Await(absl::Condition(has_free, this));
    std::unique_ptr<io_uring> reused = std::move(free_.back());
    free_.pop_back();
    return reused;
  }
  ++created_;
  return ring;
}

void RingPool::Release(std::unique_ptr<io_uring> ring) {
  absl::MutexLock lock(&mu_);
  free_.push_back(std::move(ring));
}

void RingPool::Discard(std::unique_ptr<io_uring> ring) {
  io_uring_queue_exit(ring.get());
  absl::MutexLock lock(&mu_);
  --created_;
  JUKE_LOG_WARN(log_, "Discarded an io_uring after a failed submission");
}

int RingPool::RunOnRing(io_uring* ring, Op op, int fd, void* buf, size_t len,
                        uint64_t offset, bool* usable) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  if (sqe == nullptr) {
    *usable = false;
    return -EBUSY;
  }
  switch (op) {
    case Op::kRead:
      io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), offset);
      break;
    case Op::kWrite:
      io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(len), offset);
      break;
    case Op::kDataSync:
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      break;
  }

  int r;
  do {
    r = io_uring_submit(ring);
  } while (r == -EINTR || r == -EAGAIN);
  if (r <= 0) {
    // The request may still sit in the submission queue, and would go out
    // with the next one, pointing at a buffer long gone.
    *usable = false;
    return r < 0 ? r : -EIO;
  }

  // Once submitted, the request owns the buffer until it completes, so
  // this waits for it whatever happens.
  io_uring_cqe* cqe = nullptr;
  do {
    r = io_uring_wait_cqe(ring, &cqe);
  } while (r < 0);
  int res = cqe->res;
  io_uring_cqe_seen(ring, cqe);
  return res;
}

int RingPool::RunSyscall(Op op, int fd, void* buf, size_t len,
                         uint64_t offset) {
  ssize_t r = 0;
  switch (op) {
    case Op::kRead:
      r = pread(fd, buf, len, static_cast<off_t>(offset));
      break;
    case Op::kWrite:
      r = pwrite(fd, buf, len, static_cast<off_t>(offset));
      break;
    case Op::kDataSync:
      r = fdatasync(fd);
      break;
  }
  return r < 0 ? -errno : static_cast<int>(r);
}

}  // namespace juke::storage
