#include "src/storage/fault_injecting_file_system.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

#include "src/common/checksum.h"
#include "src/common/status.h"

namespace juke::storage {
namespace {

absl::string_view OpName(FaultOp op) {
  switch (op) {
    case FaultOp::kOpen:
      return "open";
    case FaultOp::kRead:
      return "read";
    case FaultOp::kWrite:
      return "write";
    case FaultOp::kSync:
      return "sync";
    case FaultOp::kRemove:
      return "remove";
    case FaultOp::kMetadata:
      return "metadata";
  }
  return "?";
}

class FaultInjectingFile : public File {
 public:
  FaultInjectingFile(FaultInjectingFileSystem* fs, std::string path,
                     std::unique_ptr<File> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}

  absl::Status ReadAt(uint64_t offset, std::span<uint8_t> buf) override {
    auto decision = fs_->Check(FaultOp::kRead, path_);
    JUKE_RETURN_IF_ERROR(decision.status);
    return base_->ReadAt(offset, buf);
  }

  absl::Status WriteAt(uint64_t offset,
                       std::span<const uint8_t> data) override {
    auto decision = fs_->Check(FaultOp::kWrite, path_);
    if (decision.tear_bytes.has_value()) {
      size_t keep = std::min(*decision.tear_bytes, data.size());
      JUKE_RETURN_IF_ERROR(WritePrefix(offset, data.first(keep)));
    }
    JUKE_RETURN_IF_ERROR(decision.status);
    return base_->WriteAt(offset, data);
  }

  absl::Status Sync() override {
    auto decision = fs_->Check(FaultOp::kSync, path_);
    JUKE_RETURN_IF_ERROR(decision.status);
    return base_->Sync();
  }

 private:
  // Writes `prefix` at `offset` (block-aligned) through the base file, which
  // may do direct I/O only: whole blocks go as they are, and a trailing
  // partial block is merged into the block already on disk.
  absl::Status WritePrefix(uint64_t offset, std::span<const uint8_t> prefix) {
    size_t whole = prefix.size() / kBlockSize * kBlockSize;
    if (whole > 0) {
      JUKE_RETURN_IF_ERROR(base_->WriteAt(offset, prefix.first(whole)));
    }
    size_t rest = prefix.size() - whole;
    if (rest == 0) return absl::OkStatus();

    auto* block =
        static_cast<uint8_t*>(std::aligned_alloc(kBlockSize, kBlockSize));
    std::unique_ptr<uint8_t, decltype(&std::free)> owner(block, &std::free);
    std::span<uint8_t> span(block, kBlockSize);
    JUKE_RETURN_IF_ERROR(base_->ReadAt(offset + whole, span));
    std::memcpy(block, prefix.data() + whole, rest);
    JUKE_RETURN_IF_ERROR(base_->WriteAt(offset + whole, span));
    return base_->Sync();
  }

  FaultInjectingFileSystem* const fs_;
  const std::string path_;
  const std::unique_ptr<File> base_;
};

}  // namespace

void FaultInjectingFileSystem::AddRule(FaultRule rule) {
  absl::MutexLock lock(&mu_);
  rules_.push_back(RuleState{std::move(rule)});
}

void FaultInjectingFileSystem::Reset() {
  absl::MutexLock lock(&mu_);
  rules_.clear();
  crashed_ = false;
}

bool FaultInjectingFileSystem::crashed() const {
  absl::MutexLock lock(&mu_);
  return crashed_;
}

uint64_t FaultInjectingFileSystem::injected_faults() const {
  absl::MutexLock lock(&mu_);
  return injected_faults_;
}

void FaultInjectingFileSystem::FailNth(FaultOp op, uint64_t n, int error,
                                       absl::string_view path_contains) {
  FaultRule rule;
  rule.op = op;
  rule.skip = n > 0 ? n - 1 : 0;
  rule.error = error;
  rule.path_contains.assign(path_contains.data(), path_contains.size());
  AddRule(std::move(rule));
}

void FaultInjectingFileSystem::FailAlways(FaultOp op, int error,
                                          absl::string_view path_contains) {
  FaultRule rule;
  rule.op = op;
  rule.count = FaultRule::kForever;
  rule.error = error;
  rule.path_contains.assign(path_contains.data(), path_contains.size());
  AddRule(std::move(rule));
}

FaultInjectingFileSystem::Decision FaultInjectingFileSystem::Check(
    FaultOp op, const std::string& path) {
  Decision decision;
  int error = 0;
  {
    absl::MutexLock lock(&mu_);
    if (crashed_) {
      ++injected_faults_;
      decision.status = absl::UnavailableError(absl::StrCat(
          OpName(op), " ", path, ": file system crashed (injected)"));
      return decision;
    }
    for (RuleState& state : rules_) {
      const FaultRule& rule = state.rule;
      if (rule.op != op) continue;
      if (path.find(rule.path_contains) == std::string::npos) continue;
      uint64_t index = state.seen++;
      if (index < rule.skip) continue;
      if (rule.count != FaultRule::kForever &&
          index - rule.skip >= rule.count) {
        continue;
      }
      decision.delay += rule.delay;
      if (error == 0 && rule.error != 0) {
        error = rule.error;
        if (op == FaultOp::kWrite && rule.tear_bytes.has_value()) {
          decision.tear_bytes = rule.tear_bytes;
          crashed_ = true;
        }
      }
    }
    if (error != 0) ++injected_faults_;
  }

  if (decision.delay > absl::ZeroDuration()) absl::SleepFor(decision.delay);
  if (error != 0) {
    decision.status = ErrnoToStatus(
        error, absl::StrCat(OpName(op), " ", path, " (injected)"));
  }
  return decision;
}

absl::StatusOr<std::unique_ptr<File>> FaultInjectingFileSystem::OpenFile(
    const std::string& path) {
  JUKE_RETURN_IF_ERROR(Check(FaultOp::kOpen, path).status);
  JUKE_ASSIGN_OR_RETURN(std::unique_ptr<File> base, base_->OpenFile(path));
  return std::make_unique<FaultInjectingFile>(this, path, std::move(base));
}

absl::Status FaultInjectingFileSystem::RemoveFile(const std::string& path) {
  JUKE_RETURN_IF_ERROR(Check(FaultOp::kRemove, path).status);
  return base_->RemoveFile(path);
}

absl::Status FaultInjectingFileSystem::CreateDirs(const std::string& path) {
  JUKE_RETURN_IF_ERROR(Check(FaultOp::kMetadata, path).status);
  return base_->CreateDirs(path);
}

absl::StatusOr<std::vector<std::string>> FaultInjectingFileSystem::ListDir(
    const std::string& path) {
  JUKE_RETURN_IF_ERROR(Check(FaultOp::kMetadata, path).status);
  return base_->ListDir(path);
}

absl::StatusOr<FileSystemStats> FaultInjectingFileSystem::Stat(
    const std::string& path) {
  JUKE_RETURN_IF_ERROR(Check(FaultOp::kMetadata, path).status);
  return base_->Stat(path);
}

absl::StatusOr<std::string> FaultInjectingFileSystem::ReadFile(
    const std::string& path) {
  JUKE_RETURN_IF_ERROR(Check(FaultOp::kMetadata, path).status);
  return base_->ReadFile(path);
}

absl::Status FaultInjectingFileSystem::WriteFile(const std::string& path,
                                                 absl::string_view contents) {
  JUKE_RETURN_IF_ERROR(Check(FaultOp::kMetadata, path).status);
  return base_->WriteFile(path, contents);
}

}  // namespace juke::storage
