#include "backend/attr_cache.h"

namespace fstrail {
namespace {

// How long after a file's state was read a change may still have been under way during the read.
constexpr int64_t kApplyingNs = 1'000'000;

}  // namespace

AttrCache::Attrs AttrCache::from_stat(const struct stat& st) {
  auto ns = [](const timespec& t) { return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec; };
  return {st.st_mode, st.st_uid, st.st_gid, st.st_size, ns(st.st_mtim), ns(st.st_ctim), st.st_nlink};
}

void AttrCache::remember(const struct stat& st) { attrs_[Key{st.st_dev, st.st_ino}] = from_stat(st); }

void AttrCache::remember_created(const struct stat& st) {
  Attrs a = from_stat(st);
  a.created_read_ns = now_ns_();
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
  bool same_owner = before.uid == current.uid && before.gid == current.gid;
  bool same_mode = before.mode == current.mode;
  // The remembered state was read after this change (equal change times: within one
  // timestamp tick) or a later rename moved the change time: what it was before is
  // unknown. Report the change with the values that are facts.
  bool read_after = later_changes || before.ctime_ns == current.ctime_ns;
  if (read_after && same_owner && same_mode) {
    e.new_mode = current.mode;
    return EventKind::kChmod;
  }
  // Or it was read for the file's creation while this change was being applied (its
  // creator is likely still at work on it): the kernel sets owner and mode first and the
  // change time after them (tmpfs: after updating the ACL too), seen here up to 52 us
  // later under a burst. A value equal to the current one may then already be the new one.
  bool read_during = before.created_read_ns != 0 && current.ctime_ns <= before.created_read_ns + kApplyingNs;
  auto old_value = [&](uint32_t was, uint32_t is) -> std::optional<uint32_t> {
    if ((read_after || read_during) && was == is) return std::nullopt;
    return was;
  };
  if (!same_owner) {
    e.old_uid = old_value(before.uid, current.uid);
    e.new_uid = current.uid;
    e.old_gid = old_value(before.gid, current.gid);
    e.new_gid = current.gid;
    return EventKind::kChown;
  }
  if (!same_mode) {
    e.old_mode = before.mode;
    e.new_mode = current.mode;
    return EventKind::kChmod;
  }
  if (before.mtime_ns != current.mtime_ns || before.nlink != current.nlink) return std::nullopt;
  // Setting an attribute moves only the change time. Equal times mean the last
  // update set both: utimes that happened before the state was remembered.
  if (current.ctime_ns == current.mtime_ns) return std::nullopt;
  if (read_during) {
    e.new_mode = current.mode;
    return EventKind::kChmod;
  }
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
