// inotify: one watch per directory, for any user; no attribution (actor fields null).
//
// Choices (docs/backends.md):
// - A new directory is watched first, then listed: what is already inside is reported
//   as created, and a create event for it still queued is dropped (same name, same
//   directory, in the next read that did not fill the buffer, or before the queue next
//   runs empty).
// - Renames pair IN_MOVED_FROM with the IN_MOVED_TO of the same cookie later in the same
//   read (another process's events can come between them). Unpaired, a move out of the
//   watched trees is reported as delete/rmdir (the destination is unknowable) and a move
//   in as create/mkdir.
// - IN_CLOSE_WRITE becomes one modify only when an IN_MODIFY came before it, so an
//   open for writing without a write is not a modification.
#include "backend/inotify/inotify_backend.h"

#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "backend/attr_cache.h"
#include "backend/read_pacer.h"
#include "backend/tree_walk.h"
#include "core/clock.h"
#include "core/unique_fd.h"

namespace fstrail {
namespace {

constexpr uint32_t kDirMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE |
                              IN_ATTRIB | IN_DELETE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;

std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  in >> value;
  return value.empty() ? "?" : value;
}

class InotifyBackend final : public Backend {
 public:
  std::string_view name() const override { return "inotify"; }
  Status start(const WatchSpec& spec) override;
  Status poll(int timeout_ms, const EmitFn& emit) override;
  BackendStats stats() const override { return stats_; }

 private:
  Status watch_dir(const std::string& dir);
  Status watch_tree(const std::string& dir, const EmitFn* emit_found);
  void forget_subtree(const std::string& dir);
  void move_subtree(const std::string& from, const std::string& to);
  // `move_to`: for an IN_MOVED_FROM, its IN_MOVED_TO from the same read (null: none there).
  Status handle_event(const inotify_event* ev, const inotify_event* move_to, const EmitFn& emit, bool& consumed_to);
  Event base(EventKind kind, std::string path, bool is_dir) const;
  void emit_if_wanted(Event&& e, const EmitFn& emit) const {
    if (spec_.kinds.test(static_cast<size_t>(e.kind))) emit(std::move(e));
  }
  Status read_available(const EmitFn& emit);
  // Which names a later event of the read being handled removes (IN_DELETE, IN_MOVED_FROM):
  // those are not looked up. The lookup would fail or find another object, and looking up a
  // missing name takes its directory's lock, which the writer there then waits for (as on
  // fanotify: docs/backends.md).
  void note_removals(const char* events, size_t len);
  bool removed_later(const inotify_event* ev) const;
  // The offset of the IN_MOVED_TO with `cookie` in events[from, len), or len.
  static size_t find_moved_to(const char* events, size_t from, size_t len, uint32_t cookie);

  WatchSpec spec_;
  UniqueFd fd_;
  BackendStats stats_;
  uint32_t mask_ = kDirMask;
  std::vector<size_t> paired_;  // offsets in the read of IN_MOVED_TO events handled with their IN_MOVED_FROM
  std::unordered_map<int, std::string> wd_paths_;
  std::unordered_map<std::string, int> path_wds_;
  AttrCache attrs_;
  std::unordered_set<std::string> written_;
  // Paths reported by a scan (see the top of the file), with the read being handled then.
  std::unordered_map<std::string, uint64_t> scanned_;
  uint64_t reads_ = 0;
  ReadPacer pacer_;
  struct NameRef {
    int wd;
    std::string_view name;
    bool operator==(const NameRef&) const = default;
  };
  struct NameRefHash {
    size_t operator()(const NameRef& n) const { return std::hash<std::string_view>{}(n.name) * 31 + n.wd; }
  };
  std::unordered_map<NameRef, const char*, NameRefHash> removed_at_;  // the last removal's event
  int64_t batch_time_ = 0;
};

Event InotifyBackend::base(EventKind kind, std::string path, bool is_dir) const {
  Event e;
  e.time_ns = batch_time_;
  e.backend = name();
  e.kind = kind;
  e.path = std::move(path);
  e.is_dir = is_dir;
  return e;
}

Status InotifyBackend::start(const WatchSpec& spec) {
  spec_ = spec;
  if (spec.kinds.test(static_cast<size_t>(EventKind::kOpen))) mask_ |= IN_OPEN;
  fd_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd_.valid()) {
    if (errno == EMFILE)
      return Error{fmt::format("inotify instance limit reached (fs.inotify.max_user_instances={}); raise it: "
                               "sysctl fs.inotify.max_user_instances=N",
                               read_sysctl("/proc/sys/fs/inotify/max_user_instances")),
                   errno};
    return Error::from_errno("inotify_init1");
  }
  for (const auto& root : spec.roots)
    if (Status s = watch_tree(root, nullptr); !s) return s;
  return Ok{};
}

Status InotifyBackend::watch_dir(const std::string& dir) {
  int wd = ::inotify_add_watch(fd_.get(), dir.c_str(), mask_);
  if (wd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == EACCES) return Ok{};  // gone, or not ours to read
    if (errno == ENOSPC)
      return Error{fmt::format("inotify watch limit reached at {} (fs.inotify.max_user_watches={}); raise it: "
                               "sysctl fs.inotify.max_user_watches=N (N above the number of directories watched)",
                               dir, read_sysctl("/proc/sys/fs/inotify/max_user_watches")),
                   ENOSPC};
    return Error::from_errno("inotify_add_watch " + dir);
  }
  if (auto old = wd_paths_.find(wd); old != wd_paths_.end() && old->second != dir) path_wds_.erase(old->second);
  wd_paths_[wd] = dir;
  path_wds_[dir] = wd;
  return Ok{};
}

Status InotifyBackend::watch_tree(const std::string& dir, const EmitFn* emit_found) {
  if (Status s = watch_dir(dir); !s) return s;
  if (struct stat st{}; ::lstat(dir.c_str(), &st) == 0) attrs_.remember(st);
  Status failed = Ok{};
  walk_tree(dir, [&](const std::string& path, const struct stat& st) {
    attrs_.remember(st);
    if (emit_found) {
      EventKind kind =
          S_ISDIR(st.st_mode) ? EventKind::kMkdir : S_ISLNK(st.st_mode) ? EventKind::kSymlink : EventKind::kCreate;
      Event e = base(kind, path, S_ISDIR(st.st_mode));
      fill_identity(st, e);
      scanned_[path] = reads_;
      emit_if_wanted(std::move(e), *emit_found);
    }
    if (!S_ISDIR(st.st_mode) || !failed) return false;
    if (Status s = watch_dir(path); !s) {
      failed = s;
      return false;
    }
    return true;
  });
  return failed;
}

void InotifyBackend::forget_subtree(const std::string& dir) {
  for (auto it = path_wds_.begin(); it != path_wds_.end();) {
    if (path_is_under(it->first, dir)) {
      ::inotify_rm_watch(fd_.get(), it->second);
      wd_paths_.erase(it->second);
      it = path_wds_.erase(it);
    } else {
      ++it;
    }
  }
}

void InotifyBackend::move_subtree(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, int>> moved;
  for (auto it = path_wds_.begin(); it != path_wds_.end();) {
    if (path_is_under(it->first, from)) {
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = path_wds_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [path, wd] : moved) {
    wd_paths_[wd] = path;
    path_wds_[path] = wd;
  }
}

Status InotifyBackend::handle_event(const inotify_event* ev, const inotify_event* move_to, const EmitFn& emit,
                                    bool& consumed_to) {
  const uint32_t mask = ev->mask;
  if (mask & IN_Q_OVERFLOW) {
    // The kernel does not say how many: at least one.
    stats_.lost.add(LossReason::kKernelQueueOverflow);
    ++stats_.rescans;
    Event e = base(EventKind::kLost, spec_.roots.front(), true);
    e.lost_reason = LossReason::kKernelQueueOverflow;
    emit(std::move(e));
    for (const auto& root : spec_.roots)
      if (Status s = watch_tree(root, nullptr); !s) return s;
    return Ok{};
  }
  if (mask & IN_IGNORED) {
    if (auto it = wd_paths_.find(ev->wd); it != wd_paths_.end()) {
      if (auto p = path_wds_.find(it->second); p != path_wds_.end() && p->second == ev->wd) path_wds_.erase(p);
      wd_paths_.erase(it);
    }
    return Ok{};
  }
  auto dir_it = wd_paths_.find(ev->wd);
  if (dir_it == wd_paths_.end()) return Ok{};
  if (mask & IN_DELETE_SELF) {
    // Any other directory's removal is its parent's IN_DELETE; a root's parent is not watched.
    if (std::find(spec_.roots.begin(), spec_.roots.end(), dir_it->second) != spec_.roots.end()) {
      warn_root_removed(dir_it->second);
      emit_if_wanted(base(EventKind::kRmdir, dir_it->second, true), emit);
    }
    return Ok{};
  }
  const bool is_dir = mask & IN_ISDIR;
  const bool self = ev->len == 0 || ev->name[0] == '\0';
  std::string path = self ? dir_it->second : join_path(dir_it->second, ev->name);

  if (mask & IN_MOVED_FROM) {
    if (move_to) {
      consumed_to = true;
      auto to_dir = wd_paths_.find(move_to->wd);
      if (to_dir == wd_paths_.end()) return Ok{};
      std::string to = join_path(to_dir->second, move_to->name);
      // A directory renamed before it could be watched (in the same read as its creation)
      // is watched now, and what it holds reported.
      bool unwatched_dir = is_dir && !path_wds_.contains(path);
      if (is_dir && !unwatched_dir) move_subtree(path, to);
      written_.erase(path);
      Event e = base(EventKind::kRename, to, is_dir);
      e.old_path = std::move(path);
      if (struct stat st{}; !removed_later(move_to) && ::lstat(e.path.c_str(), &st) == 0) fill_identity(st, e);
      emit_if_wanted(std::move(e), emit);
      if (unwatched_dir && !removed_later(move_to)) return watch_tree(to, &emit);
    } else {
      if (is_dir) forget_subtree(path);
      written_.erase(path);
      emit_if_wanted(base(is_dir ? EventKind::kRmdir : EventKind::kDelete, std::move(path), is_dir), emit);
    }
    return Ok{};
  }
  if (mask & (IN_CREATE | IN_MOVED_TO)) {
    if (scanned_.erase(path) > 0) return Ok{};
    struct stat st{};
    bool known = !removed_later(ev) && ::lstat(path.c_str(), &st) == 0;
    if (known) attrs_.remember_created(st);
    Event e = base(is_dir ? EventKind::kMkdir : EventKind::kCreate, path, is_dir);
    if (known) {
      fill_identity(st, e);
      if (S_ISLNK(st.st_mode)) e.kind = EventKind::kSymlink;
      else if (!is_dir && st.st_nlink > 1 && (mask & IN_CREATE)) e.kind = EventKind::kLink;
    }
    emit_if_wanted(std::move(e), emit);
    // A directory moved in keeps its contents, which are not new; a new one is listed.
    // Not one that a later event of this read removes: one removed is gone, one renamed is
    // watched under its new name then (below).
    if (is_dir && !removed_later(ev)) return watch_tree(path, (mask & IN_CREATE) ? &emit : nullptr);
    return Ok{};
  }
  if (mask & IN_MODIFY) {
    struct stat st{};
    if (!written_.contains(path) && !removed_later(ev) && ::lstat(path.c_str(), &st) == 0 && attrs_.shrank(st)) {
      Event e = base(EventKind::kTruncate, path, false);
      fill_identity(st, e);
      emit_if_wanted(std::move(e), emit);
    } else {
      written_.insert(path);
    }
  }
  if (mask & IN_ATTRIB) {
    struct stat st{};
    if (!removed_later(ev) && ::lstat(path.c_str(), &st) == 0) {
      Event e = base(EventKind::kChmod, path, S_ISDIR(st.st_mode));
      fill_identity(st, e);
      if (auto kind = attrs_.classify_attrib(st, e)) {
        e.kind = *kind;
        emit_if_wanted(std::move(e), emit);
      }
    } else {
      // Gone before it could be examined: an attribute changed, which one is unknown.
      emit_if_wanted(base(EventKind::kChmod, path, is_dir), emit);
    }
  }
  if ((mask & IN_OPEN) && !self) emit_if_wanted(base(EventKind::kOpen, path, is_dir), emit);
  if (mask & IN_CLOSE_WRITE) {
    if (auto it = written_.find(path); it != written_.end()) {
      written_.erase(it);
      Event e = base(EventKind::kModify, path, false);
      if (struct stat st{}; !removed_later(ev) && ::lstat(path.c_str(), &st) == 0) {
        fill_identity(st, e);
        attrs_.remember_contents(st);
      }
      emit_if_wanted(std::move(e), emit);
    }
  }
  if (mask & IN_DELETE) {
    scanned_.erase(path);
    written_.erase(path);
    if (is_dir) forget_subtree(path);
    emit_if_wanted(base(is_dir ? EventKind::kRmdir : EventKind::kDelete, std::move(path), is_dir), emit);
  }
  return Ok{};
}

void InotifyBackend::note_removals(const char* events, size_t len) {
  removed_at_.clear();
  for (size_t at = 0; at + sizeof(inotify_event) <= len;) {
    auto* ev = reinterpret_cast<const inotify_event*>(events + at);
    if ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) && ev->len > 0)
      removed_at_[NameRef{ev->wd, ev->name}] = events + at;
    at += sizeof(inotify_event) + ev->len;
  }
}

size_t InotifyBackend::find_moved_to(const char* events, size_t from, size_t len, uint32_t cookie) {
  for (size_t at = from; at + sizeof(inotify_event) <= len;) {
    auto* ev = reinterpret_cast<const inotify_event*>(events + at);
    if ((ev->mask & IN_MOVED_TO) && ev->cookie == cookie) return at;
    at += sizeof(inotify_event) + ev->len;
  }
  return len;
}

bool InotifyBackend::removed_later(const inotify_event* ev) const {
  if (ev->len == 0 || ev->name[0] == '\0') return false;
  auto it = removed_at_.find(NameRef{ev->wd, ev->name});
  return it != removed_at_.end() && it->second > reinterpret_cast<const char*>(ev);
}

Status InotifyBackend::read_available(const EmitFn& emit) {
  alignas(inotify_event) static char buf[64 * 1024];
  // From an IN_MOVED_FROM whose IN_MOVED_TO is not read yet to the end of the read: kept
  // back, and handled with what the next read brings (or, if the queue is empty, with the
  // move taken as one out of the watched trees).
  size_t carried = 0;
  paired_.clear();
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf + carried, sizeof buf - carried);
    const bool queue_empty = n < 0 && errno == EAGAIN;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && !queue_empty) return Error::from_errno("read inotify");
    if (queue_empty && !carried) {
      scanned_.clear();
      return Ok{};
    }
    size_t len = carried + (queue_empty ? 0 : static_cast<size_t>(n));
    if (!queue_empty) {
      batch_time_ = realtime_now_ns();
      ++reads_;
      // Room for one more event with the longest name.
      pacer_.read_done(len + sizeof(inotify_event) + NAME_MAX + 1 > sizeof buf);
    }
    carried = 0;
    note_removals(buf, len);
    size_t at = 0;
    while (at < len) {
      auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
      size_t size = sizeof(inotify_event) + ev->len;
      if (auto it = std::find(paired_.begin(), paired_.end(), at); it != paired_.end()) {
        paired_.erase(it);  // the second half of a rename already handled
        at += size;
        continue;
      }
      // A rename's IN_MOVED_TO is queued right after its IN_MOVED_FROM, but another
      // process's events can come between them, and a read can end between them.
      size_t to_at = (ev->mask & IN_MOVED_FROM) ? find_moved_to(buf, at + size, len, ev->cookie) : len;
      if (to_at == len && (ev->mask & IN_MOVED_FROM) && !queue_empty && len - at <= sizeof buf / 2) {
        std::memmove(buf, buf + at, len - at);
        for (size_t& paired : paired_) paired -= at;  // all after `at`: the rest were erased
        carried = len - at;
        break;
      }
      const inotify_event* to = to_at < len ? reinterpret_cast<const inotify_event*>(buf + to_at) : nullptr;
      bool consumed_to = false;
      if (Status s = handle_event(ev, to, emit, consumed_to); !s) return s;
      if (consumed_to) paired_.push_back(to_at);
      at += size;
    }
    if (queue_empty) {
      scanned_.clear();
      return Ok{};
    }
    // One read per call, so that the caller flushes its output after each; again at once
    // when the read filled the buffer or ended in a move whose other half is still queued.
    if (!carried && !pacer_.filled()) {
      // This read had every event queued before it: the create events of what earlier
      // reads' scans found were among them.
      std::erase_if(scanned_, [&](const auto& entry) { return entry.second < reads_; });
      return Ok{};
    }
  }
}

Status InotifyBackend::poll(int timeout_ms, const EmitFn& emit) {
  pollfd pfd{fd_.get(), POLLIN, 0};
  int ready = ::poll(&pfd, 1, timeout_ms);
  if (ready < 0) return errno == EINTR ? Status(Ok{}) : Status(Error::from_errno("poll inotify"));
  if (ready == 0) {
    scanned_.clear();  // the queue is empty
    return Ok{};
  }
  pacer_.wait();  // at most one read a millisecond (read_pacer.h)
  return read_available(emit);
}

}  // namespace

Availability probe_inotify() {
  UniqueFd fd(::inotify_init1(IN_CLOEXEC));
  if (!fd.valid()) return {false, fmt::format("inotify_init1 failed: {}", std::strerror(errno))};
  return {true, fmt::format("any user; no attribution; up to {} directories (fs.inotify.max_user_watches)",
                            read_sysctl("/proc/sys/fs/inotify/max_user_watches"))};
}

std::unique_ptr<Backend> create_inotify_backend() { return std::make_unique<InotifyBackend>(); }

}  // namespace fstrail
