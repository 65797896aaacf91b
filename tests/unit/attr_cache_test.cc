#include "backend/attr_cache.h"

#include <gtest/gtest.h>

namespace fstrail {
namespace {

struct stat file_state(uint32_t mode, uint32_t uid, uint32_t gid, off_t size, time_t mtime, time_t ctime) {
  struct stat st{};
  st.st_dev = 8, st.st_ino = 42, st.st_nlink = 1;
  st.st_mode = S_IFREG | mode, st.st_uid = uid, st.st_gid = gid, st.st_size = size;
  st.st_mtim.tv_sec = mtime, st.st_ctim.tv_sec = ctime;
  return st;
}

TEST(AttrCache, ChmodWithOldAndNewMode) {
  AttrCache cache;
  cache.remember(file_state(0644, 0, 0, 10, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 10, 100, 200), e), EventKind::kChmod);
  EXPECT_EQ(e.old_mode, S_IFREG | 0644u);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);
}

TEST(AttrCache, ChownWithOldAndNewOwner) {
  AttrCache cache;
  cache.remember(file_state(0644, 0, 0, 10, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 65534, 100, 10, 100, 200), e), EventKind::kChown);
  EXPECT_EQ(e.old_uid, 0u);
  EXPECT_EQ(e.new_uid, 65534u);
  EXPECT_EQ(e.old_gid, 0u);
  EXPECT_EQ(e.new_gid, 100u);
  EXPECT_FALSE(e.old_mode);
}

TEST(AttrCache, OnlyChangeTimeMovedIsXattr) {
  AttrCache cache;
  cache.remember(file_state(0644, 0, 0, 10, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 0, 0, 10, 100, 200), e), EventKind::kXattr);
}

TEST(AttrCache, TimestampUpdateHasNoKind) {
  AttrCache cache;
  cache.remember(file_state(0644, 0, 0, 10, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 0, 0, 10, 300, 300), e), std::nullopt);
}

TEST(AttrCache, UnknownBeforeGivesNullOldValues) {
  AttrCache cache;
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 10, 100, 200), e), EventKind::kChmod);
  EXPECT_FALSE(e.old_mode);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);
}

TEST(AttrCache, CreatedStateTrustedOnlyWithoutLaterAttributeChange) {
  AttrCache cache;
  cache.remember_created(file_state(0600, 0, 0, 0, 100, 150));  // chmod already happened
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 0, 100, 150), e), EventKind::kChmod);
  EXPECT_FALSE(e.old_mode);
}

// create, write and chmod within one timestamp tick: the create's stat already sees
// the new mode with change time == modification time, so it looks like the created
// state. The chmod's own notification must still be a chmod, with the old mode unknown
// (not an xattr, not dropped as a timestamp update).
TEST(AttrCache, ChmodInTheSameTickAsTheCreateIsChmodWithUnknownOldMode) {
  AttrCache cache;
  cache.remember_created(file_state(0600, 0, 0, 4096, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 4096, 100, 100), e), EventKind::kChmod);
  EXPECT_FALSE(e.old_mode);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);
}

// The same after a write remembered the contents: still a chmod, old mode unknown.
TEST(AttrCache, ChmodInTheSameTickAsAWriteIsChmodWithUnknownOldMode) {
  AttrCache cache;
  cache.remember(file_state(0600, 0, 0, 0, 100, 100));
  cache.remember_contents(file_state(0600, 0, 0, 4096, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 4096, 100, 100), e), EventKind::kChmod);
  EXPECT_FALSE(e.old_mode);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);
}

// The create's stat already saw the chmod, and the attribute change is examined only
// after a later rename moved the change time again: still a chmod, old mode unknown.
TEST(AttrCache, ChmodExaminedAfterALaterRenameIsChmodWithUnknownOldMode) {
  AttrCache cache;
  cache.remember_created(file_state(0600, 0, 0, 4096, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 4096, 100, 300), e, /*later_changes=*/true),
            EventKind::kChmod);
  EXPECT_FALSE(e.old_mode);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);
  // A real mode change is still told with both values.
  cache.remember(file_state(0644, 0, 0, 4096, 100, 100));
  Event f;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 4096, 100, 300), f, true), EventKind::kChmod);
  EXPECT_EQ(f.old_mode, S_IFREG | 0644u);
}

TEST(AttrCache, ShrinkIsTruncate) {
  AttrCache cache;
  cache.remember(file_state(0644, 0, 0, 4096, 100, 100));
  EXPECT_TRUE(cache.shrank(file_state(0644, 0, 0, 0, 200, 200)));
  EXPECT_FALSE(cache.shrank(file_state(0644, 0, 0, 100, 300, 300)));
}

}  // namespace
}  // namespace fstrail
