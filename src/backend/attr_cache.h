// What fanotify and inotify cannot say: whether an attribute change was a chmod, a
// chown or something else, and the values before it. Both backends keep the last
// mode/uid/gid/size seen per inode and compare it with a fresh lstat.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <unordered_map>

#include "core/clock.h"
#include "core/event.h"

namespace fstrail {

class AttrCache {
 public:
  // `now_ns`: the wall clock that change times are compared with (a test's own clock).
  explicit AttrCache(int64_t (*now_ns)() = realtime_now_ns) : now_ns_(now_ns) {}

  // Takes `st` as the current state (from a scan).
  void remember(const struct stat& st);
  // For a file just created: its state is the one it was created with only when no
  // attribute changed since (change time == modification time); otherwise the
  // earlier state is unknown, and the next change reports null old values.
  void remember_created(const struct stat& st);
  // After a write: the size and modification time only, so a chmod that happened
  // meanwhile is not taken for the state before it.
  void remember_contents(const struct stat& st);
  void forget(uint64_t dev, uint64_t ino) { attrs_.erase(Key{dev, ino}); }
  // Whether this inode was seen before (by a scan or an event).
  bool knows(const struct stat& st) const { return attrs_.contains(Key{st.st_dev, st.st_ino}); }

  // For an attribute-change notification on a file whose current state is `now`:
  // returns chmod or chown with old/new values (old null when not known), or
  // xattr when only the change time moved; chmod with only new_mode when the
  // remembered state already is `now` (read after the change); nullopt for a change fstrail has no kind
  // for (utimes, as from `touch`; a link count). Remembers `now`.
  // A state read for a creation while a change was being applied can hold some new values
  // with the old change time (the kernel sets owner and mode first): when this change's
  // time is at most 1 ms after that read, a value equal to the current one may already be
  // the new one, so its old value is reported as unknown (and a change that shows nothing
  // but the change time is a chmod with only new_mode, not an xattr).
  // `later_changes`: `now` was read after later changes of the object (a rename, which
  // moves the change time too), so an unchanged mode and owner say nothing: chmod with
  // only new_mode.
  std::optional<EventKind> classify_attrib(const struct stat& now, Event& event, bool later_changes = false);

  // For a modification notification: true when the file got smaller than last seen
  // (a truncate). Remembers `now`.
  bool shrank(const struct stat& now);

  size_t size() const { return attrs_.size(); }

 private:
  struct Key {
    uint64_t dev, ino;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.ino * 0x9E3779B97F4A7C15ULL ^ k.dev; }
  };
  struct Attrs {
    uint32_t mode, uid, gid;
    int64_t size;
    int64_t mtime_ns, ctime_ns;
    uint64_t nlink;
    int64_t created_read_ns = 0;  // when read for the file's creation (else 0)
  };
  static Attrs from_stat(const struct stat& st);
  int64_t (*now_ns_)();
  std::unordered_map<Key, Attrs, KeyHash> attrs_;
};

// Fills path-independent identity fields of `event` from `st`.
void fill_identity(const struct stat& st, Event& event);

}  // namespace fstrail
