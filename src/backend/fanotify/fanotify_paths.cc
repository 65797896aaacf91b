// fanotify: from a file handle to the path and attributes of its object.
#include "backend/fanotify/fanotify_internal.h"

namespace fstrail::fan {

// The key of the object at `path`, built like fid_key; empty when it cannot be encoded.
// The fid key of `name` relative to `dirfd` (AT_FDCWD: a path); "" when it has none.
std::string key_at(int dirfd, const char* name, const __kernel_fsid_t& fsid) {
  HandleBuffer h{};
  h.header.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(dirfd, name, &h.header, &mount_id, 0) != 0) {
    // Filesystems without NFS export support still encode a FID (Linux 6.5+).
    h.header.handle_bytes = MAX_HANDLE_SZ;
    if (::name_to_handle_at(dirfd, name, &h.header, &mount_id, AT_HANDLE_FID) != 0) return {};
  }
  std::string key(reinterpret_cast<const char*>(&fsid), sizeof fsid);
  key.append(reinterpret_cast<const char*>(&h), sizeof(file_handle) + h.header.handle_bytes);
  return key;
}


std::string FanotifyBackend::resolve_fid(const fanotify_event_info_fid* fid, bool use_cache) {
  if (use_cache)
    if (auto it = dir_paths_.find(fid_key(fid)); it != dir_paths_.end()) return it->second;
  UniqueFd fd = open_handle(fid, O_PATH | O_CLOEXEC);
  if (!fd.valid()) return {};
  return fd_path(fd.get()).value_or(std::string());
}

std::optional<std::string> fd_path(int fd) {
  char link[64], buf[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = ::readlink(link, buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

int FanotifyBackend::mount_fd_for(const fanotify_event_info_fid* fid) const {
  for (auto& m : mount_fds_) {
    if (std::memcmp(&m.fsid, &fid->fsid, sizeof m.fsid) != 0) continue;
    if (!m.fd.valid() && !m.held) m.fd.reset(::open(m.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return m.fd.get();
  }
  return -1;
}

UniqueFd FanotifyBackend::open_handle(const fanotify_event_info_fid* fid, int flags) const {
  int mount = mount_fd_for(fid);
  if (mount < 0) return UniqueFd();
  auto* handle = const_cast<file_handle*>(reinterpret_cast<const file_handle*>(fid->handle));
  return UniqueFd(::open_by_handle_at(mount, handle, flags));
}

// An O_PATH fd of the directory with handle `dir`, opened once and kept for a while.
int FanotifyBackend::dir_fd_for(const fanotify_event_info_fid* dir) {
  auto it = dir_fds_.find(fid_key(dir));
  if (it == dir_fds_.end()) {
    if (dir_fds_.size() >= 64) dir_fds_.clear();
    it = dir_fds_.emplace(std::string(fid_key(dir)), open_handle(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)).first;
  }
  return it->second.get();
}

bool FanotifyBackend::stat_child(const fanotify_event_info_fid* dir, const char* name, const std::string& path,
                                 struct stat& st) {
  if (dir && name) {
    if (int fd = dir_fd_for(dir); fd >= 0) return ::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
  }
  return ::lstat(path.c_str(), &st) == 0;
}

bool FanotifyBackend::stat_by_handle(const fanotify_event_info_fid* fid, struct stat& st) {
  UniqueFd fd = open_handle(fid, O_PATH | O_CLOEXEC);
  return fd.valid() && ::fstat(fd.get(), &st) == 0 && st.st_nlink > 0;
}

// lstat of the object: not at all when a later event of the same read deleted it, else
// by its file handle, by name relative to its directory only when the event has none.
// Not by name first: the name is usually gone by the time the event is read (renamed or
// deleted), and looking up a missing name takes its directory's lock (on tmpfs every
// time: no negative dentries), which the writer renaming or deleting in that directory
// then waits for (the workload of bench/run.sh ran 3.1x as long inside the tree as
// without fstrail, 2.1x with the handle first).
bool FanotifyBackend::stat_object(const std::string& path, const Record& r, bool self, struct stat& st) {
  if (r.object_gone) return false;
  if (r.target) return stat_by_handle(r.target, st);
  return !r.name_gone && stat_child(self ? nullptr : r.dir, r.name, path, st);
}

bool FanotifyBackend::under_roots(std::string_view path) const {
  for (const auto& root : spec_.roots)
    if (path_is_under(path, root)) return true;
  return false;
}

}  // namespace fstrail::fan
