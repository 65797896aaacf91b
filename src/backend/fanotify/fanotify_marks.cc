// fanotify: marks on every directory of the trees, kept current as directories and mounts
// come and go.
#include "backend/fanotify/fanotify_internal.h"

namespace fstrail::fan {

Status FanotifyBackend::mark_dir(const std::string& dir) {
  if (::fanotify_mark(fan_.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, mask_, AT_FDCWD, dir.c_str()) != 0)
    return mark_error(dir);
  struct statfs sfs{};
  if (::statfs(dir.c_str(), &sfs) != 0) return Ok{};
  __kernel_fsid_t fsid;
  std::memcpy(&fsid, &sfs.f_fsid, sizeof fsid);
  bool have_mount = false;
  for (const auto& m : mount_fds_) have_mount |= std::memcmp(&m.fsid, &fsid, sizeof fsid) == 0;
  if (!have_mount)
    mount_fds_.push_back(MountFd{fsid, marking_new_mount_ ? UniqueFd() : open_mount_fd(dir), dir, !marking_new_mount_});
  std::string key = key_at(AT_FDCWD, dir.c_str(), fsid);
  if (key.empty()) return Ok{};
  if (auto old = dir_keys_.find(dir); old != dir_keys_.end() && old->second != key) dir_paths_.erase(old->second);
  dir_paths_[key] = dir;
  dir_keys_[dir] = std::move(key);
  return Ok{};
}

// Any directory of the filesystem serves open_by_handle_at. The parent when it is on the
// same filesystem: an open fd of `dir` itself would keep it alive once removed, and a
// removed root's FAN_DELETE_SELF would not come while fstrail runs. (A root that is a
// mount point cannot be removed.)
UniqueFd FanotifyBackend::open_mount_fd(const std::string& dir) {
  std::string parent = std::filesystem::path(dir).parent_path();
  struct stat own{}, up{};
  if (!parent.empty() && ::stat(dir.c_str(), &own) == 0 && ::stat(parent.c_str(), &up) == 0 && own.st_dev == up.st_dev)
    return UniqueFd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
}

Status FanotifyBackend::mark_error(const std::string& dir) {
  if (errno == ENOENT || errno == ENOTDIR) return Ok{};  // gone meanwhile; its delete event follows
  if (errno == ENOSPC)
    return Error{fmt::format("fanotify mark limit reached at {} (one mark per directory); raise it: "
                             "sysctl fs.fanotify.max_user_marks=N",
                             dir),
                 ENOSPC};
  return Error::from_errno("fanotify_mark " + dir);
}

void FanotifyBackend::mark_new_dir(int dirfd, const std::string& named, const __kernel_fsid_t& fsid, std::string key,
                                   const EmitFn& emit) {
  // The directory may have been renamed since the event that named it (mkdir then rename at
  // once): what it holds is reported under the path the kernel gives for it now, never under
  // a name it no longer has. Gone or moved out of the trees: its rename or delete follows.
  std::string path = named;
  struct stat by_fd{}, by_name{};
  const bool stated = ::fstat(dirfd, &by_fd) == 0;
  if (stated && by_fd.st_nlink == 0) return;  // removed already
  if (stated &&
      (::lstat(named.c_str(), &by_name) != 0 || by_name.st_ino != by_fd.st_ino || by_name.st_dev != by_fd.st_dev)) {
    auto now = fd_path(dirfd);
    if (!now || !under_roots(*now)) return;
    path = *now;
  }
  if (::fanotify_mark(fan_.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, mask_, dirfd, nullptr) != 0) {
    note_failure(mark_error(path));
    return;
  }
  if (!key.empty()) {
    if (auto old = dir_keys_.find(path); old != dir_keys_.end() && old->second != key) dir_paths_.erase(old->second);
    dir_paths_[key] = path;
    dir_keys_[path] = std::move(key);
  }
  // Mark first, then list: whatever appeared before the mark is reported by the scan.
  int listed = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = listed < 0 ? nullptr : ::fdopendir(listed);
  if (!d) {
    if (listed >= 0) ::close(listed);
    return;
  }
  while (dirent* ent = ::readdir(d)) {
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    struct stat st{};
    if (::fstatat(dirfd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    // Another name of an inode already seen in the trees (git links each object from
    // its temporary file into a directory made moments before): made by link(2).
    bool linked = !S_ISDIR(st.st_mode) && st.st_nlink > 1 && attrs_.knows(st);
    attrs_.remember(st);
    std::string child = join_path(path, ent->d_name);
    std::string child_key = key_at(dirfd, ent->d_name, fsid);
    if (!child_key.empty()) scanned_.insert(child_key);
    // Found as the directory was marked: reported as created.
    Event e;
    e.time_ns = batch_time_;
    e.backend = name();
    e.kind = S_ISDIR(st.st_mode)   ? EventKind::kMkdir
             : linked              ? EventKind::kLink
             : S_ISLNK(st.st_mode) ? EventKind::kSymlink
                                   : EventKind::kCreate;
    e.path = child;
    fill_identity(st, e);
    if (spec_.kinds.test(static_cast<size_t>(e.kind))) emit(std::move(e));
    if (!S_ISDIR(st.st_mode)) continue;
    UniqueFd sub(::openat(dirfd, ent->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.valid()) mark_new_dir(sub.get(), child, fsid, std::move(child_key), emit);
  }
  ::closedir(d);
}

// Marks `dir` and every directory below it, remembering file attributes (a root, or a
// directory moved in: its contents are not new; a new directory is mark_new_dir's).
Status FanotifyBackend::mark_tree(const std::string& dir) {
  if (Status s = mark_dir(dir); !s) return s;
  if (struct stat st{}; ::lstat(dir.c_str(), &st) == 0) attrs_.remember(st);
  Status failed = Ok{};
  walk_tree(dir, [&](const std::string& path, const struct stat& st) {
    attrs_.remember(st);
    if (!S_ISDIR(st.st_mode)) return false;
    if (Status s = mark_dir(path); !s && failed) failed = s;
    return true;
  });
  return failed;
}

// The entries of `dir_keys_` for `dir` and everything below it: `dir` itself, then
// "dir/..." which sort together between "dir/" and "dir0" ('0' follows '/').
template <typename Map, typename Fn>
void for_subtree(Map& map, const std::string& dir, Fn&& fn) {
  if (dir == "/") {
    for (auto it = map.begin(); it != map.end();) it = fn(it);
    return;
  }
  if (auto it = map.find(dir); it != map.end()) fn(it);
  std::string low = dir + '/', high = dir + '0';
  for (auto it = map.lower_bound(low); it != map.end() && it->first < high;) it = fn(it);
}

void FanotifyBackend::forget_subtree(const std::string& dir) {
  for_subtree(dir_keys_, dir, [&](auto it) {
    dir_paths_.erase(it->second);
    return dir_keys_.erase(it);
  });
}

void FanotifyBackend::move_subtree(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, std::string>> moved;
  for_subtree(dir_keys_, from, [&](auto it) {
    moved.emplace_back(to + it->first.substr(from.size()), std::move(it->second));
    return dir_keys_.erase(it);
  });
  for (auto& [path, key] : moved) {
    dir_paths_[key] = path;
    dir_keys_[path] = std::move(key);
  }
}

// The root is the directory its handle names, wherever it is now: the handle->path map,
// the roots and the pending writes move with it, and the rename is reported (the old
// name is the root's, the new one the kernel's path of the handle). A directory made
// under the old name later is outside the trees.
void FanotifyBackend::move_root(const std::string& from, const Record& r, const fanotify_event_metadata* md,
                                const EmitFn& emit) {
  auto root = std::find(spec_.roots.begin(), spec_.roots.end(), from);
  if (root == spec_.roots.end()) return;
  std::string to = resolve_fid(r.dir, /*use_cache=*/false);
  if (to.empty() || to == from || to.ends_with(" (deleted)")) return;  // removed: FAN_DELETE_SELF follows
  *root = to;
  move_subtree(from, to);
  std::vector<std::string> pending;
  for (auto it = written_.begin(); it != written_.end();) {
    if (path_is_under(*it, from)) {
      pending.push_back(to + it->substr(from.size()));
      it = written_.erase(it);
    } else {
      ++it;
    }
  }
  written_.insert(pending.begin(), pending.end());
  warn_root_moved(from, to);
  Event e = new_event(EventKind::kRename, batch_time_);
  e.is_dir = true;
  e.old_path = from;
  e.path = to;
  if (md->pid > 0) e.pid = md->pid;
  if (struct stat st{}; stat_by_handle(r.dir, st)) fill_identity(st, e);
  emit_event(std::move(e), r.pidfd, emit);
}

void FanotifyBackend::check_mounts(const EmitFn& emit) {
  std::string text;
  char chunk[8192];
  ssize_t n;
  for (off_t at = 0; (n = ::pread(mountinfo_.get(), chunk, sizeof chunk, at)) > 0; at += n) text.append(chunk, n);
  std::unordered_map<int, std::string> now;
  for (auto& m : parse_mountinfo(text)) now.emplace(m.id, std::move(m.mount_point));
  auto inside = [&](const std::string& mount_point) {
    for (const auto& root : spec_.roots)
      if (mount_point != root && path_is_under(mount_point, root)) return true;
    return false;
  };
  if (emit) {
    for (const auto& [id, mount_point] : mounts_) {
      if (now.contains(id) || !inside(mount_point)) continue;
      // Unmounted: the directory it covered is mapped again (its marks stayed).
      std::erase_if(mount_fds_, [&](const MountFd& m) { return !m.held && path_is_under(m.dir, mount_point); });
      forget_subtree(mount_point);
      note_failure(mark_tree(mount_point));
      fmt::print(stderr, "fstrail: {} was unmounted\n", mount_point);
    }
    for (const auto& [id, mount_point] : now) {
      if (mounts_.contains(id) || !inside(mount_point)) continue;
      struct statfs sfs{};
      __kernel_fsid_t fsid{};
      if (::statfs(mount_point.c_str(), &sfs) == 0) std::memcpy(&fsid, &sfs.f_fsid, sizeof fsid);
      std::string key = key_at(AT_FDCWD, mount_point.c_str(), fsid);
      if (auto it = dir_paths_.find(key); !key.empty() && it != dir_paths_.end()) {
        fmt::print(stderr, "fstrail: {} is a bind mount of {}: its changes are reported under {}\n", mount_point,
                   it->second, it->second);
        continue;
      }
      marking_new_mount_ = true;
      Status marked = mark_tree(mount_point);
      marking_new_mount_ = false;
      if (marked && !key.empty()) {
        fmt::print(stderr, "fstrail: a file system was mounted at {}: watched from now on\n", mount_point);
        continue;
      }
      fmt::print(stderr, "fstrail: a file system was mounted at {} and cannot be watched: {}\n", mount_point,
                 marked ? "it has no file handles" : marked.error().message);
      emit_loss(LossReason::kUnwatchedMount, mount_point, realtime_now_ns(), emit);
    }
  }
  mounts_ = std::move(now);
}

}  // namespace fstrail::fan
