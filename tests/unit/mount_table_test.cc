#include "backend/fanotify/mount_table.h"

#include <gtest/gtest.h>

namespace fstrail {
namespace {

TEST(MountTable, ParsesIdMountPointAndTypeAfterOptionalFields) {
  auto mounts = parse_mountinfo(
      "22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
      "36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 propagate_from:2 - ext3 /dev/root rw\n"
      "garbage line\n"
      "40 36 0:50 / /x rw - tmpfs tmpfs rw");
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0].id, 22);
  EXPECT_EQ(mounts[0].mount_point, "/proc");
  EXPECT_EQ(mounts[0].fs_type, "proc");
  EXPECT_EQ(mounts[1].id, 36);
  EXPECT_EQ(mounts[1].mount_point, "/mnt/my dir");
  EXPECT_EQ(mounts[1].fs_type, "ext3");
  EXPECT_EQ(mounts[2].mount_point, "/x");
  EXPECT_EQ(mounts[2].fs_type, "tmpfs");
}

TEST(MountTable, UnescapesOctalOnly) {
  EXPECT_EQ(unescape_mountinfo("a\\011b\\012c\\134d"), "a\tb\nc\\d");
  EXPECT_EQ(unescape_mountinfo("a\\9b\\"), "a\\9b\\");
}

}  // namespace
}  // namespace fstrail
