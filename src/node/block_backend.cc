#include "src/node/block_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

#include "src/common/status.h"

namespace juke::node {

absl::Status BlockBackend::Resize(uint64_t new_size) {
  return absl::UnimplementedError("this backend cannot be resized");
}

absl::Status CheckRange(uint64_t offset, uint64_t length, uint64_t size) {
  if (offset % kSectorSize != 0 || length % kSectorSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offset ", offset, " or length ", length, " is not sector aligned"));
  }
  if (offset > size || length > size - offset) {
    return absl::OutOfRangeError(
        absl::StrCat("range ", offset, "+", length, " is past the end ", size));
  }
  return absl::OkStatus();
}

MemoryBackend::MemoryBackend(uint64_t size) : size_(size) {}

uint64_t MemoryBackend::size() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

absl::Status MemoryBackend::ReadAt(uint64_t offset, std::span<uint8_t> data) {
  absl::MutexLock lock(&mu_);
  JUKE_RETURN_IF_ERROR(fault_);
  JUKE_RETURN_IF_ERROR(CheckRange(offset, data.size(), size_));
  uint64_t done = 0;
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_chunk = pos % kChunkSize;
    const uint64_t n =
        std::min<uint64_t>(kChunkSize - in_chunk, data.size() - done);
    auto it = chunks_.find(pos / kChunkSize);
    if (it == chunks_.end()) {
      std::memset(data.data() + done, 0, n);
    } else {
      std::memcpy(data.data() + done, it->second.data() + in_chunk, n);
    }
    done += n;
  }
  return absl::OkStatus();
}

absl::Status MemoryBackend::WriteAt(uint64_t offset,
                                    std::span<const uint8_t> data) {
  absl::MutexLock lock(&mu_);
  JUKE_RETURN_IF_ERROR(fault_);
  JUKE_RETURN_IF_ERROR(CheckRange(offset, data.size(), size_));
  uint64_t done = 0;
  while (done < data.size()) {
    const uint64_t pos = offset + done;
    const uint64_t in_chunk = pos % kChunkSize;
    const uint64_t n =
        std::min<uint64_t>(kChunkSize - in_chunk, data.size() - done);
    std::vector<uint8_t>& chunk = chunks_[pos / kChunkSize];
    if (chunk.empty()) chunk.resize(kChunkSize, 0);
    std::memcpy(chunk.data() + in_chunk, data.data() + done, n);
    done += n;
  }
  return absl::OkStatus();
}

absl::Status MemoryBackend::Flush() {
  absl::MutexLock lock(&mu_);
  JUKE_RETURN_IF_ERROR(fault_);
  ++flushes_;
  return absl::OkStatus();
}

absl::Status MemoryBackend::Resize(uint64_t new_size) {
  absl::MutexLock lock(&mu_);
  if (new_size % kSectorSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("size ", new_size, " is not sector aligned"));
  }
  if (new_size < size_) {
    // Forget what lies past the new end so that growing again reads zeros.
    chunks_.erase(chunks_.lower_bound((new_size + kChunkSize - 1) / kChunkSize),
                  chunks_.end());
    auto last = chunks_.find(new_size / kChunkSize);
    if (last != chunks_.end()) {
      std::fill(last->second.begin() + new_size % kChunkSize,
                last->second.end(), 0);
    }
  }
  size_ = new_size;
  return absl::OkStatus();
}

void MemoryBackend::SetFault(absl::Status status) {
  absl::MutexLock lock(&mu_);
  fault_ = std::move(status);
}

int MemoryBackend::flush_count() const {
  absl::MutexLock lock(&mu_);
  return flushes_;
}

absl::StatusOr<std::unique_ptr<FileBackend>> FileBackend::Open(
    absl::string_view path, uint64_t size) {
  const std::string name(path);
  const int fd = open(name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", name));
  std::unique_ptr<FileBackend> backend(new FileBackend(fd, 0));

  struct stat st {};
  if (fstat(fd, &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("stat ", name));
  }
  uint64_t current = static_cast<uint64_t>(st.st_size);
  if (size > current) {
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("extend ", name));
    }
    current = size;
  }
  if (current % kSectorSize != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": size ", current, " is not a multiple of ", kSectorSize));
  }
  backend->size_ = current;
  return backend;
}

FileBackend::~FileBackend() { close(fd_); }

absl::Status FileBackend::ReadAt(uint64_t offset, std::span<uint8_t> data) {
  JUKE_RETURN_IF_ERROR(CheckRange(offset, data.size(), size()));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = pread(fd_, data.data() + done, data.size() - done,
                            static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "pread");
    // The file may be shorter than size() only if it was truncated behind
    // our back; read that as zeros like a hole.
    if (n == 0) {
      std::memset(data.data() + done, 0, data.size() - done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status FileBackend::WriteAt(uint64_t offset,
                                  std::span<const uint8_t> data) {
  JUKE_RETURN_IF_ERROR(CheckRange(offset, data.size(), size()));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = pwrite(fd_, data.data() + done, data.size() - done,
                             static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoToStatus(errno, "pwrite");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status FileBackend::Flush() {
  if (fdatasync(fd_) != 0) return ErrnoToStatus(errno, "fdatasync");
  return absl::OkStatus();
}

absl::Status FileBackend::Resize(uint64_t new_size) {
  if (new_size % kSectorSize != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("size ", new_size, " is not sector aligned"));
  }
  if (ftruncate(fd_, static_cast<off_t>(new_size)) != 0) {
    return ErrnoToStatus(errno, "ftruncate");
  }
  size_ = new_size;
  return absl::OkStatus();
}

}  // namespace juke::node
