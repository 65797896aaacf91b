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

// When the cache reads a state: "time 0" unless a test says otherwise.
int64_t g_read_ns = 0;
int64_t read_clock() { return g_read_ns; }
constexpr int64_t kSecond = 1'000'000'000;

TEST(AttrCache, ChmodWithOldAndNewMode) {
  AttrCache cache{read_clock};
  cache.remember(file_state(0644, 0, 0, 10, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 10, 100, 200), e), EventKind::kChmod);
  EXPECT_EQ(e.old_mode, S_IFREG | 0644u);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);
}

TEST(AttrCache, ChownWithOldAndNewOwner) {
  AttrCache cache{read_clock};
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
  AttrCache cache{read_clock};
  cache.remember(file_state(0644, 0, 0, 10, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 0, 0, 10, 100, 200), e), EventKind::kXattr);
}

TEST(AttrCache, TimestampUpdateHasNoKind) {
  AttrCache cache{read_clock};
  cache.remember(file_state(0644, 0, 0, 10, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 0, 0, 10, 300, 300), e), std::nullopt);
}

TEST(AttrCache, UnknownBeforeGivesNullOldValues) {
  AttrCache cache{read_clock};
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 10, 100, 200), e), EventKind::kChmod);
  EXPECT_FALSE(e.old_mode);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);
}

TEST(AttrCache, CreatedStateTrustedOnlyWithoutLaterAttributeChange) {
  AttrCache cache{read_clock};
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
  AttrCache cache{read_clock};
  cache.remember_created(file_state(0600, 0, 0, 4096, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 4096, 100, 100), e), EventKind::kChmod);
  EXPECT_FALSE(e.old_mode);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);
}

// The same after a write remembered the contents: still a chmod, old mode unknown.
TEST(AttrCache, ChmodInTheSameTickAsAWriteIsChmodWithUnknownOldMode) {
  AttrCache cache{read_clock};
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
  AttrCache cache{read_clock};
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

// chmod(2) sets the mode before the change time: a stat between the two (here the one
// for the create) sees the new mode with the old change time. The chmod's notification
// then shows only the change time moving, but it is a chmod with the old mode unknown.
// Its change time can even come a little after the read (tens of microseconds here).
TEST(AttrCache, StateReadDuringAChmodGivesChmodWithUnknownOldMode) {
  AttrCache cache{read_clock};
  g_read_ns = 150 * kSecond;
  cache.remember_created(file_state(0600, 0, 0, 1, 100, 100));
  g_read_ns = 200 * kSecond;
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 1, 100, 120), e), EventKind::kChmod);
  EXPECT_FALSE(e.old_mode);
  EXPECT_EQ(e.new_mode, S_IFREG | 0600u);

  g_read_ns = 301 * kSecond;
  cache.remember_created(file_state(0600, 0, 0, 1, 300, 300));
  struct stat chmodded = file_state(0600, 0, 0, 1, 300, 301);
  chmodded.st_ctim.tv_nsec = 52'000;  // 52 us after the read
  Event f;
  EXPECT_EQ(cache.classify_attrib(chmodded, f), EventKind::kChmod);
  EXPECT_FALSE(f.old_mode);
  g_read_ns = 0;
}

// A state read at the creation, with changes made well after it: an xattr, a utimes, a chmod.
TEST(AttrCache, ChangesAfterTheReadKeepTheirKind) {
  g_read_ns = 150 * kSecond;
  AttrCache cache{read_clock};
  cache.remember_created(file_state(0644, 0, 0, 1, 100, 100));
  struct stat xattr_set = file_state(0644, 0, 0, 1, 100, 150);
  xattr_set.st_ctim.tv_nsec = 2'000'000;  // 2 ms after the read
  Event x;
  EXPECT_EQ(cache.classify_attrib(xattr_set, x), EventKind::kXattr);
  Event t;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 0, 0, 1, 170, 170), t), std::nullopt);
  Event m;
  EXPECT_EQ(cache.classify_attrib(file_state(0600, 0, 0, 1, 170, 180), m), EventKind::kChmod);
  EXPECT_EQ(m.old_mode, S_IFREG | 0644u);
  // A utimes right after the creation's read is still no event.
  g_read_ns = 180 * kSecond;
  cache.remember_created(file_state(0600, 0, 0, 1, 180, 180));
  struct stat touched = file_state(0600, 0, 0, 1, 180, 180);
  touched.st_mtim.tv_nsec = touched.st_ctim.tv_nsec = 1000;
  Event u;
  EXPECT_EQ(cache.classify_attrib(touched, u), std::nullopt);
  g_read_ns = 0;
}

// A chown read half-way at the creation: the owner already new, the group not yet. The
// group's old value is known, the owner's is not.
TEST(AttrCache, StateReadDuringAChownGivesOnlyTheOldValuesItCanKnow) {
  g_read_ns = 150 * kSecond;
  AttrCache cache{read_clock};
  cache.remember_created(file_state(0644, 65534, 0, 1, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 65534, 100, 1, 100, 140), e), EventKind::kChown);
  EXPECT_FALSE(e.old_uid);
  EXPECT_EQ(e.new_uid, 65534u);
  EXPECT_EQ(e.old_gid, 0u);
  EXPECT_EQ(e.new_gid, 100u);
  g_read_ns = 0;
}

// Only a read for a creation is suspected: a state read otherwise (a scan, an earlier
// change) is taken as it is, however soon the next change comes.
TEST(AttrCache, OtherReadsAreTrustedEvenRightBeforeAChange) {
  g_read_ns = 150 * kSecond;
  AttrCache cache{read_clock};
  cache.remember(file_state(0644, 0, 0, 1, 100, 100));
  Event e;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 0, 0, 1, 100, 140), e), EventKind::kXattr);
  Event f;
  EXPECT_EQ(cache.classify_attrib(file_state(0644, 65534, 0, 1, 100, 145), f), EventKind::kChown);
  EXPECT_EQ(f.old_uid, 0u);
  EXPECT_EQ(f.old_gid, 0u);
  g_read_ns = 0;
}

TEST(AttrCache, ShrinkIsTruncate) {
  AttrCache cache{read_clock};
  cache.remember(file_state(0644, 0, 0, 4096, 100, 100));
  EXPECT_TRUE(cache.shrank(file_state(0644, 0, 0, 0, 200, 200)));
  EXPECT_FALSE(cache.shrank(file_state(0644, 0, 0, 100, 300, 300)));
}

}  // namespace
}  // namespace fstrail
