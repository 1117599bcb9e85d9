#pragma once

#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

#include "src/common/checksum.h"

// Helpers shared by the storage tests.
namespace juke::storage::testing {

// A fresh directory under /tmp, removed with everything in it on
// destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/juke-storage-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// `blocks` blocks of bytes that depend on every bit of `seed`.
inline std::vector<uint8_t> Pattern(uint64_t seed, size_t blocks) {
  std::vector<uint8_t> out(blocks * kBlockSize);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < out.size(); i += 8) {
    // splitmix64
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (int b = 0; b < 8; ++b) out[i + b] = static_cast<uint8_t>(z >> (8 * b));
  }
  return out;
}

// Makes RocksDB's own writes fail with "no space" while `full` is set.
class NoSpaceRocksFileSystem : public rocksdb::FileSystemWrapper {
 public:
  NoSpaceRocksFileSystem()
      : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}

  const char* Name() const override { return "NoSpaceRocksFileSystem"; }

  rocksdb::IOStatus NewWritableFile(
      const std::string& fname, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    if (full) return rocksdb::IOStatus::NoSpace("injected");
    rocksdb::IOStatus s =
        target()->NewWritableFile(fname, options, result, dbg);
    if (s.ok()) *result = std::make_unique<File>(std::move(*result), &full);
    return s;
  }

  std::atomic<bool> full{false};

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> base,
         const std::atomic<bool>* full)
        : rocksdb::FSWritableFileOwnerWrapper(std::move(base)), full_(full) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (*full_) return rocksdb::IOStatus::NoSpace("injected");
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data,
                             const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (*full_) return rocksdb::IOStatus::NoSpace("injected");
      return target()->Append(data, options, info, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
      if (*full_) return rocksdb::IOStatus::NoSpace("injected");
      return target()->Sync(options, dbg);
    }

   private:
    const std::atomic<bool>* full_;
  };
};

}  // namespace juke::storage::testing
