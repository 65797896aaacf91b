#include "backend/attr_cache.h"

namespace fstrail {

AttrCache::Attrs AttrCache::from_stat(const struct stat& st) {
  return {st.st_mode, st.st_uid, st.st_gid, st.st_size,
          int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec};
}

void AttrCache::remember(const struct stat& st) { attrs_[Key{st.st_dev, st.st_ino}] = from_stat(st); }

std::optional<EventKind> AttrCache::classify_attrib(const struct stat& now, Event& e) {
  Attrs current = from_stat(now);
  auto [it, inserted] = attrs_.try_emplace(Key{now.st_dev, now.st_ino}, current);
  if (inserted) {
    // Nothing known from before: the new mode is a fact, what changed is not.
    e.new_mode = current.mode;
    return EventKind::kChmod;
  }
  Attrs before = it->second;
  it->second = current;
  if (before.uid != current.uid || before.gid != current.gid) {
    e.old_uid = before.uid;
    e.new_uid = current.uid;
    e.old_gid = before.gid;
    e.new_gid = current.gid;
    return EventKind::kChown;
  }
  if (before.mode != current.mode) {
    e.old_mode = before.mode;
    e.new_mode = current.mode;
    return EventKind::kChmod;
  }
  if (before.mtime_ns != current.mtime_ns) return std::nullopt;  // utimes
  return EventKind::kXattr;
}

bool AttrCache::shrank(const struct stat& now) {
  Attrs current = from_stat(now);
  auto [it, inserted] = attrs_.try_emplace(Key{now.st_dev, now.st_ino}, current);
  if (inserted) return false;
  bool smaller = current.size < it->second.size;
  it->second = current;
  return smaller;
}

void fill_identity(const struct stat& st, Event& e) {
  e.dev = st.st_dev;
  e.ino = st.st_ino;
  e.is_dir = S_ISDIR(st.st_mode);
}

}  // namespace fstrail
