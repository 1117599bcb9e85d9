#include "src/storage/disk_label.h"

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

#include "src/storage/test_util.h"

namespace juke::storage {
namespace {

using testing::TempDir;

DiskIdentity Identity() { return {"pool-1", "host-a", "disk-0"}; }

TEST(DiskLabelTest, EncodeDecodeRoundTripsAnyIdBytes) {
  DiskLabel label;
  label.identity = {"pool=1\nx", "host \"a\"", std::string("d\0k", 3)};
  label.created_at = absl::FromUnixSeconds(1700000000);
  auto decoded = DecodeDiskLabel(EncodeDiskLabel(label));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->identity.pool_id, label.identity.pool_id);
  EXPECT_EQ(decoded->identity.host_id, label.identity.host_id);
  EXPECT_EQ(decoded->identity.disk_id, label.identity.disk_id);
  EXPECT_EQ(decoded->created_at, label.created_at);
  EXPECT_EQ(decoded->format_version, kDiskLabelFormatVersion);
}

TEST(DiskLabelTest, DecodeRejectsTextThatIsNoLabel) {
  EXPECT_TRUE(absl::IsDataLoss(DecodeDiskLabel("hello").status()));
  EXPECT_TRUE(absl::IsDataLoss(DecodeDiskLabel("").status()));
  EXPECT_TRUE(absl::IsDataLoss(
      DecodeDiskLabel("format_version=1\npool_id=p\n").status()));
}

TEST(DiskLabelTest, DecodeRejectsANewerFormat) {
  DiskLabel label;
  label.identity = Identity();
  label.format_version = kDiskLabelFormatVersion + 1;
  auto decoded = DecodeDiskLabel(EncodeDiskLabel(label));
  EXPECT_TRUE(absl::IsFailedPrecondition(decoded.status())) << decoded.status();
}

TEST(DiskLabelTest, MismatchNamesExpectedAndFoundIds) {
  DiskLabel found;
  found.identity = {"pool-1", "host-b", "disk-0"};
  absl::Status s = CheckDiskLabel(found, Identity(), "/disks/d0");
  EXPECT_TRUE(absl::IsFailedPrecondition(s));
  EXPECT_TRUE(absl::StrContains(s.message(),
                                "expected pool_id=pool-1 "
                                "host_id=host-a"))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(),
                                "found pool_id=pool-1 "
                                "host_id=host-b"))
      << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "wipe")) << s;
}

TEST(DiskLabelTest, LabelsABlankDirectoryAndAcceptsItLater) {
  TempDir dir;
  std::unique_ptr<FileSystem> fs = NewUringFileSystem();
  std::string disk = dir.path() + "/new-disk";
  auto created = LoadOrCreateDiskLabel(fs.get(), disk, Identity(), true);
  ASSERT_TRUE(created.ok()) << created.status();
  auto again = LoadOrCreateDiskLabel(fs.get(), disk, Identity(), false);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->created_at, created->created_at);
  EXPECT_EQ(again->identity.host_id, "host-a");
}

TEST(DiskLabelTest, ToleratesForeignEntriesLikeLostAndFound) {
  TempDir dir;
  std::unique_ptr<FileSystem> fs = NewUringFileSystem();
  ASSERT_TRUE(fs->CreateDirs(dir.path() + "/lost+found").ok());
  EXPECT_TRUE(
      LoadOrCreateDiskLabel(fs.get(), dir.path(), Identity(), true).ok());
}

}  // namespace
}  // namespace juke::storage
