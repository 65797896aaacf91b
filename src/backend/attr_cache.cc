#include "backend/attr_cache.h"

namespace fstrail {

AttrCache::Attrs AttrCache::from_stat(const struct stat& st) {
  auto ns = [](const timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; };
  return {st.st_mode, st.st_uid, st.st_gid, st.st_size, ns(st.st_mtim), ns(st.st_ctim), st.st_nlink};
}

void AttrCache::remember(const struct stat& st) { attrs_[Key{st.st_dev, st.st_ino}] = from_stat(st); }

void AttrCache::remember_created(const struct stat& st) {
  Attrs a = from_stat(st);
  if (a.ctime_ns == a.mtime_ns)
    attrs_[Key{st.st_dev, st.st_ino}] = a;
  else
    attrs_.erase(Key{st.st_dev, st.st_ino});
}

void AttrCache::remember_contents(const struct stat& st) {
  auto it = attrs_.find(Key{st.st_dev, st.st_ino});
  if (it == attrs_.end()) return;
  Attrs a = from_stat(st);
  it->second.size = a.size;
  it->second.mtime_ns = a.mtime_ns;
}

std::optional<EventKind> AttrCache::classify_attrib(const struct stat& now, Event& e, bool later_changes) {
  Attrs current = from_stat(now);
  auto [it, inserted] = attrs_.try_emplace(Key{now.st_dev, now.st_ino}, current);
  if (inserted) {
    // Nothing known from before: the new mode is a fact, what changed is not.
    e.new_mode = current.mode;
    return EventKind::kChmod;
  }
  Attrs before = it->second;
  it->second = current;
  if ((before.ctime_ns == current.ctime_ns || later_changes) && before.mode == current.mode &&
      before.uid == current.uid && before.gid == current.gid) {
    // The state was remembered after this very change (read for an earlier event of the
    // same file while this one was already queued, within one timestamp tick): what it
    // was before is unknown. Report the change with the values that are facts.
    e.new_mode = current.mode;
    return EventKind::kChmod;
  }
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
  if (before.mtime_ns != current.mtime_ns || before.nlink != current.nlink) return std::nullopt;
  // Setting an attribute moves only the change time. Equal times mean the last
  // update set both: utimes that happened before the state was remembered.
  if (current.ctime_ns == current.mtime_ns) return std::nullopt;
  return EventKind::kXattr;
}

bool AttrCache::shrank(const struct stat& now) {
  Attrs current = from_stat(now);
  auto [it, inserted] = attrs_.try_emplace(Key{now.st_dev, now.st_ino}, current);
  if (inserted) return false;
  bool smaller = current.size < it->second.size;
  it->second.size = current.size;
  it->second.mtime_ns = current.mtime_ns;
  return smaller;
}

void fill_identity(const struct stat& st, Event& e) {
  e.dev = st.st_dev;
  e.ino = st.st_ino;
  e.is_dir = S_ISDIR(st.st_mode);
}

}  // namespace fstrail
