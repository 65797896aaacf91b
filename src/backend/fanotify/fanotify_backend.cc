// fanotify with FAN_REPORT_DFID_NAME_TARGET | FAN_REPORT_PIDFD.
//
// Marks: one inode mark per directory of the watched trees (FAN_EVENT_ON_CHILD), kept
// up to date as directories appear, move and disappear, rather than one
// FAN_MARK_FILESYSTEM mark: a filesystem mark makes every operation on the whole
// filesystem queue an event that user space then throws away (bench/results/watch.md).
//
// Paths: events carry the parent directory as a file handle. Every marked directory's
// handle is known (name_to_handle_at when it is marked), so a handle -> path map
// resolves almost every event without a system call; open_by_handle_at on a mount fd
// covers the rest (a directory outside the trees, as the far side of a rename).
#include "backend/fanotify/fanotify_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "backend/attr_cache.h"
#include "backend/fanotify/mount_table.h"
#include "backend/read_pacer.h"
#include "backend/tree_walk.h"
#include "core/clock.h"
#include "core/unique_fd.h"
#include "enrich/procfs.h"

namespace fstrail {
namespace {

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200  // Linux 6.5; glibc 2.36 does not have it
#endif

// PIDFD_GET_INFO (Linux 6.13): the credentials of the process a pidfd refers to, in
// one ioctl. Not in Debian 12's headers.
struct PidfdInfo {
  uint64_t mask, cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
  uint32_t coredump_mask, spare;
};
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
constexpr uint64_t kPidfdInfoPid = 1, kPidfdInfoCreds = 2;
// How long the /proc fields of a process (comm, exe, cgroup, loginuid) are reused:
// they change only on exec, prctl or migration, and are read after the fact anyway.
constexpr int64_t kActorReuseNs = 100'000'000;

constexpr unsigned kInitFlags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME_TARGET |
                                FAN_REPORT_PIDFD | FAN_UNLIMITED_QUEUE;
constexpr uint64_t kDirMask = FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_MODIFY | FAN_CLOSE_WRITE |
                              FAN_ATTRIB | FAN_ONDIR | FAN_EVENT_ON_CHILD;

struct TransparentHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using BytesMap = std::unordered_map<std::string, V, TransparentHash, std::equal_to<>>;
using BytesSet = std::unordered_set<std::string, TransparentHash, std::equal_to<>>;

// The key of an object: fsid, then struct file_handle (size, type, bytes), exactly as
// an info record lays them out, so event bytes are looked up without copying.
std::string_view fid_key(const fanotify_event_info_fid* fid) {
  auto* handle = reinterpret_cast<const file_handle*>(fid->handle);
  return {reinterpret_cast<const char*>(&fid->fsid), sizeof fid->fsid + sizeof(file_handle) + handle->handle_bytes};
}

struct HandleBuffer {
  file_handle header;
  unsigned char bytes[MAX_HANDLE_SZ];
};

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

class FanotifyBackend final : public Backend {
 public:
  std::string_view name() const override { return "fanotify"; }
  Status start(const WatchSpec& spec) override;
  Status poll(int timeout_ms, const EmitFn& emit) override;
  BackendStats stats() const override { return stats_; }
  std::optional<std::vector<std::string>> files_being_written() const override {
    return std::vector<std::string>(written_.begin(), written_.end());
  }

 private:
  struct Record {  // the parsed info records of one event
    const fanotify_event_info_fid* dir = nullptr;
    const char* name = nullptr;
    const fanotify_event_info_fid* old_dir = nullptr;
    const char* old_name = nullptr;
    const fanotify_event_info_fid* target = nullptr;
    int pidfd = FAN_NOPIDFD;
    // Filled in for the whole read before any event is handled: a later event of the
    // same read removes `name` from `dir` (a delete, or the source of a rename), or
    // deletes the object itself. The change is then already done, so a lookup by name
    // would fail or find another object.
    bool name_gone = false;
    bool object_gone = false;
  };
  struct Parsed {
    fanotify_event_metadata md;
    Record r;
  };
  // (directory handle, name), as event bytes: no copy.
  struct NameRef {
    std::string_view dir, name;
    bool operator==(const NameRef&) const = default;
  };
  struct NameRefHash {
    size_t operator()(const NameRef& n) const {
      return std::hash<std::string_view>{}(n.dir) * 31 + std::hash<std::string_view>{}(n.name);
    }
  };

  Status mark_tree(const std::string& dir);
  Status mark_dir(const std::string& dir);
  // A directory just created, open as `dirfd`, with handle key `key`: marked through
  // the fd (no path lookups), its contents reported and marked the same way.
  void mark_new_dir(int dirfd, const std::string& path, const __kernel_fsid_t& fsid, std::string key,
                    const EmitFn& emit);
  Status mark_error(const std::string& dir);
  static UniqueFd open_mount_fd(const std::string& dir);
  int dir_fd_for(const fanotify_event_info_fid* dir);
  void prepare_batch();
  void close_pidfds();
  // The path of a marked directory, or of any object the kernel still has (slower).
  std::string resolve_fid(const fanotify_event_info_fid* fid, bool use_cache = true);
  void handle_event(const fanotify_event_metadata* md, const Record& r, const EmitFn& emit);
  void emit_event(Event&& e, int pidfd, const EmitFn& emit);
  void fill_actor(Event& e, int pidfd);
  void emit_loss(LossReason reason, const std::string& path, int64_t time_ns, const EmitFn& emit);
  bool under_roots(std::string_view path) const;
  bool stat_object(const std::string& path, const Record& r, bool self, struct stat& st);
  bool stat_by_handle(const fanotify_event_info_fid* fid, struct stat& st);
  bool stat_child(const fanotify_event_info_fid* dir, const char* name, const std::string& path, struct stat& st);
  int mount_fd_for(const fanotify_event_info_fid* fid) const;
  // The object with handle `fid`, opened with `flags` (invalid: not found).
  UniqueFd open_handle(const fanotify_event_info_fid* fid, int flags) const;
  // Reports a rename that the kernel merged away (see last_name_).
  void check_rename_sequence(const Record& r, const std::string& source, bool single_name, const EmitFn& emit);
  // A root renamed (FAN_MOVE_SELF): followed by its handle to its new path.
  void move_root(const std::string& from, const Record& r, const fanotify_event_metadata* md, const EmitFn& emit);
  // Mounts that appeared or went inside the trees since the last look (POLLPRI on
  // /proc/self/mountinfo): see mounts_.
  void check_mounts(const EmitFn& emit);
  void forget_subtree(const std::string& dir);
  void move_subtree(const std::string& from, const std::string& to);
  void rescan(const EmitFn& emit);
  // A directory that cannot be marked (fs.fanotify.max_user_marks) would go unwatched
  // silently: the next poll fails with the reason instead.
  void note_failure(Status s) {
    if (!s && failed_) failed_ = std::move(s);
  }
  Status failed_ = Ok{};

  WatchSpec spec_;
  UniqueFd fan_;
  BackendStats stats_;
  uint64_t mask_ = kDirMask;
  BytesMap<std::string> dir_paths_;  // fid key -> absolute path of each marked directory
  // path -> fid key, ordered: a subtree is one range ("dir/" up to "dir0").
  std::map<std::string, std::string, std::less<>> dir_keys_;
  struct MountFd {
    __kernel_fsid_t fsid;
    UniqueFd fd;
    std::string dir;
    // A mount made after start is not held open while fstrail is idle: it could not be
    // unmounted (EBUSY) while fstrail runs.
    bool held;
  };
  mutable std::vector<MountFd> mount_fds_;  // for open_by_handle_at, one per file system
  bool marking_new_mount_ = false;
  // O_PATH fds of recently seen directories: a stat relative to one walks one path
  // component instead of the whole absolute path.
  BytesMap<UniqueFd> dir_fds_;
  AttrCache attrs_;
  std::unordered_set<std::string> written_;  // paths with a write since their last close
  // Children reported by a scan of a new directory whose own create event may still be
  // queued: that event is dropped. Cleared whenever the queue is empty.
  BytesSet scanned_;
  Enricher enricher_;
  struct CachedActor {
    uint64_t process_id;  // the pidfs inode: unique per process, unlike the pid
    int64_t read_ns;
    uint64_t batch;  // the last batch of events its credentials were read for
    Event fields;
    bool gone = false;  // found exited: /proc has nothing more to say about it
  };
  std::unordered_map<int32_t, CachedActor> actors_;
  int64_t batch_time_ = 0;
  // Room for one more event of any size: fixed parts, three file handles, two names.
  static constexpr size_t kMaxEventBytes = 4096;
  ReadPacer pacer_;
  uint64_t batch_seq_ = 0;
  std::vector<char> buf_;       // one read: as many events as fit
  std::vector<Parsed> parsed_;  // the events of one read, parsed before any is handled
  std::vector<int> pidfds_;     // theirs, closed together once all are handled
  std::unordered_map<NameRef, size_t, NameRefHash> removed_at_;  // last removal of a name, by event index
  std::unordered_map<std::string_view, size_t> deleted_at_;     // last delete of an object (fid key)
  pid_t self_ = ::getpid();
  // Object fid key -> (directory fid key + name) its last reported rename left it at.
  // The kernel merges a queued rename into an identical one still queued (same process,
  // object, directories and names: a -> b repeated while b -> a by another process comes
  // between), so one `rename` can stand for several; the next rename of the object then
  // starts from a name that none reported left it at.
  BytesMap<std::string> last_name_;
  // Inode marks do not see into a file system mounted inside a tree after start: each
  // new mount point below a root is found here and marked (its root directory and what
  // is below). A bind mount of a directory already marked is the same inodes: its
  // changes come already, under the directory's real path. Unmounted, the directory it
  // covered is mapped again.
  UniqueFd mountinfo_;
  std::unordered_map<int, std::string> mounts_;  // mount id -> mount point, of the whole table
};

Status FanotifyBackend::start(const WatchSpec& spec) {
  spec_ = spec;
  if (spec.kinds.test(static_cast<size_t>(EventKind::kOpen))) mask_ |= FAN_OPEN;
  fan_.reset(::fanotify_init(kInitFlags, O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  if (!fan_.valid()) return Error::from_errno("fanotify_init");
  // Read before the trees are marked: a mount made in between is then seen as new.
  mountinfo_.reset(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!mountinfo_.valid()) return Error::from_errno("open /proc/self/mountinfo");
  check_mounts(nullptr);
  for (const auto& root : spec.roots) {
    if (Status s = mark_tree(root); !s) return s;
    // A root's own removal or rename: its parent is not marked, so nothing else reports it.
    if (::fanotify_mark(fan_.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_DELETE_SELF | FAN_MOVE_SELF | FAN_ONDIR,
                        AT_FDCWD, root.c_str()) != 0)
      return mark_error(root);
  }
  return Ok{};
}

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

void FanotifyBackend::mark_new_dir(int dirfd, const std::string& path, const __kernel_fsid_t& fsid, std::string key,
                                   const EmitFn& emit) {
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

std::string FanotifyBackend::resolve_fid(const fanotify_event_info_fid* fid, bool use_cache) {
  if (use_cache)
    if (auto it = dir_paths_.find(fid_key(fid)); it != dir_paths_.end()) return it->second;
  UniqueFd fd = open_handle(fid, O_PATH | O_CLOEXEC);
  if (!fd.valid()) return {};
  char link[64], buf[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd.get());
  ssize_t n = ::readlink(link, buf, sizeof buf);
  if (n <= 0) return {};
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

// Credentials current as of now (PIDFD_GET_INFO); the rest from /proc, reused for a
// short while per process. A process already gone keeps what was read before, from
// this very process (same pidfs inode), or stays unknown.
void FanotifyBackend::fill_actor(Event& e, int pidfd) {
  auto copy_fields = [&e](const Event& a) {
    e.ppid = a.ppid, e.uid = a.uid, e.gid = a.gid, e.euid = a.euid, e.egid = a.egid;
    e.loginuid = a.loginuid, e.sessionid = a.sessionid, e.comm = a.comm, e.exe = a.exe, e.cgroup = a.cgroup;
  };
  // The process behind the pidfd, not the pid number: one read may hold events of two
  // processes that had the same pid one after the other.
  struct stat pst{};
  uint64_t process_id = ::fstat(pidfd, &pst) == 0 ? pst.st_ino : 0;
  auto it = actors_.find(*e.pid);
  bool same_process = it != actors_.end() && process_id != 0 && it->second.process_id == process_id;
  // Events of one read were all queued before it: within it, one reading per process.
  if (same_process && it->second.batch == batch_seq_) {
    copy_fields(it->second.fields);
    return;
  }
  bool reuse = same_process && batch_time_ - it->second.read_ns < kActorReuseNs;
  if (!reuse) {
    // A process found gone keeps what was read from it before (or stays unknown):
    // its later events (a queue behind a fast writer that has exited since) do not
    // try /proc again.
    if (same_process && it->second.gone) {
      copy_fields(it->second.fields);
      it->second.batch = batch_seq_;
      return;
    }
    enricher_.enrich(e, pidfd);
    if (!e.comm) {  // gone before it could be read
      if (same_process) {
        copy_fields(it->second.fields);
        it->second.gone = true;
        it->second.batch = batch_seq_;
      } else if (process_id != 0) {
        if (actors_.size() > 4096) actors_.clear();
        actors_[*e.pid] = CachedActor{process_id, batch_time_, batch_seq_, e, true};
      }
      return;
    }
    if (actors_.size() > 4096) actors_.clear();
    actors_[*e.pid] = CachedActor{process_id, batch_time_, batch_seq_, e};
    return;
  }
  copy_fields(it->second.fields);
  PidfdInfo info{};
  info.mask = kPidfdInfoPid | kPidfdInfoCreds;
  if (::ioctl(pidfd, kPidfdGetInfo, &info) == 0 && (info.mask & kPidfdInfoCreds)) {
    e.uid = info.ruid, e.gid = info.rgid, e.euid = info.euid, e.egid = info.egid;
    if (info.mask & kPidfdInfoPid) e.ppid = static_cast<int32_t>(info.ppid);
  }
  it->second.batch = batch_seq_;
  it->second.fields.uid = e.uid, it->second.fields.gid = e.gid, it->second.fields.euid = e.euid;
  it->second.fields.egid = e.egid, it->second.fields.ppid = e.ppid;
}

void FanotifyBackend::emit_event(Event&& e, int pidfd, const EmitFn& emit) {
  if (!spec_.kinds.test(static_cast<size_t>(e.kind)) || e.pid == self_) return;
  if (e.pid) {
    e.actor_source = ActorSource::kProcfs;
    // Without a pidfd (FAN_EPIDFD: exited before the event was read) nothing says which
    // process had this pid: what was read for the same pid number may be another
    // process (pids are reused at once when pid_max is small or a pid is asked for,
    // clone3 set_tid). The fields stay null.
    if (pidfd >= 0) fill_actor(e, pidfd);
  }
  emit(std::move(e));
}

// A name of an object is left only by a rename or a delete (a second name, a link, stops
// the check): a rename from a name other than the one the object's last reported rename
// left it at means renames in between were merged by the kernel (or done where no mark
// saw them). How many is unknown: at least one.
void FanotifyBackend::check_rename_sequence(const Record& r, const std::string& source, bool single_name,
                                            const EmitFn& emit) {
  if (!r.target) return;
  std::string_view object = fid_key(r.target);
  auto it = last_name_.find(object);
  if (single_name && it != last_name_.end() && r.old_dir && r.old_name) {
    std::string_view dir = fid_key(r.old_dir);
    std::string_view last = it->second;
    if (!(last.size() == dir.size() + std::strlen(r.old_name) && last.starts_with(dir) &&
          last.substr(dir.size()) == r.old_name)) {
      emit_loss(LossReason::kMergedByKernel, source, batch_time_, emit);
    }
  }
  if (!single_name || !r.dir || !r.name) {
    if (it != last_name_.end()) last_name_.erase(it);
    return;
  }
  std::string name_now = std::string(fid_key(r.dir)) + r.name;
  if (it != last_name_.end()) {
    it->second = std::move(name_now);
    return;
  }
  if (last_name_.size() >= 65536) last_name_.clear();
  last_name_.emplace(std::string(object), std::move(name_now));
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
  Event e;
  e.time_ns = batch_time_;
  e.backend = name();
  e.kind = EventKind::kRename;
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

// One loss (`lost` null: the kernel does not say how many, at least one): counted for the
// summary and sent as a `lost` event naming where.
void FanotifyBackend::emit_loss(LossReason reason, const std::string& path, int64_t time_ns, const EmitFn& emit) {
  stats_.lost.add(reason);
  Event e;
  e.time_ns = time_ns;
  e.backend = name();
  e.kind = EventKind::kLost;
  e.lost_reason = reason;
  e.path = path;
  emit(std::move(e));
}

void FanotifyBackend::handle_event(const fanotify_event_metadata* md, const Record& r, const EmitFn& emit) {
  const uint64_t mask = md->mask;
  const bool is_dir = mask & FAN_ONDIR;
  auto base = [&] {
    Event e;
    e.time_ns = batch_time_;
    e.backend = name();
    e.is_dir = is_dir;
    if (md->pid > 0) e.pid = md->pid;
    return e;
  };

  if (mask & FAN_RENAME) {
    // The kernel includes only the sides whose directory is marked: the far side of a
    // move across the trees' edge is found from the moved object's own handle.
    std::string from, to;
    if (r.old_dir) from = join_path(resolve_fid(r.old_dir), r.old_name ? r.old_name : "");
    if (r.dir) to = join_path(resolve_fid(r.dir), r.name ? r.name : "");
    else if (r.target) to = resolve_fid(r.target, /*use_cache=*/false);  // the cache has its old path
    bool from_inside = !from.empty() && under_roots(from), to_inside = !to.empty() && under_roots(to);
    if (!from_inside && !to_inside) return;
    if (is_dir) {
      if (!to_inside) {
        forget_subtree(from);
      } else if (from_inside && dir_keys_.contains(from)) {
        move_subtree(from, to);
      } else if (from_inside) {
        // Renamed before it was marked (in the read of its creation, which left it to
        // this event): marked now under its new name, and what it holds reported. Or by
        // the next rename, when this name too is gone.
        if (r.target && !r.name_gone && !r.object_gone) {
          if (UniqueFd fd = open_handle(r.target, O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd.valid())
            mark_new_dir(fd.get(), to, r.target->fsid, std::string(fid_key(r.target)), emit);
        }
      } else {
        note_failure(mark_tree(to));  // moved in: watch it; its contents are not new
      }
    }
    written_.erase(from);
    Event e = base();
    e.path = std::move(to);
    if (from.empty()) {
      // Moved in from a place nobody watches: the source is unknowable, like a create.
      e.kind = is_dir ? EventKind::kMkdir : EventKind::kCreate;
    } else if (e.path.empty()) {
      e.kind = is_dir ? EventKind::kRmdir : EventKind::kDelete;  // moved out to an unknown place
      e.path = std::move(from);
    } else {
      e.kind = EventKind::kRename;
      e.old_path = std::move(from);
    }
    struct stat st{};
    bool known = e.kind != EventKind::kDelete && e.kind != EventKind::kRmdir && stat_object(e.path, r, false, st);
    if (known) fill_identity(st, e);
    if (e.old_path) check_rename_sequence(r, *e.old_path, known && st.st_nlink == 1, emit);
    emit_event(std::move(e), r.pidfd, emit);
    return;
  }
  if (!r.dir) return;
  std::string dir = resolve_fid(r.dir);
  if (dir.empty()) return;
  bool self = !r.name || std::strcmp(r.name, ".") == 0;
  std::string path = self ? dir : join_path(dir, r.name);
  if (!under_roots(path)) return;
  if ((mask & FAN_DELETE_SELF) && self) {
    // Only the roots ask for it: any other directory's removal is its parent's FAN_DELETE.
    warn_root_removed(path);
    Event e = base();
    e.kind = EventKind::kRmdir;
    e.path = path;
    e.is_dir = true;
    // The event comes when the last reference goes: fstrail's own, when it still held the
    // directory open. Then who removed it is unknown.
    bool ours = e.pid == self_;
    if (ours) e.pid.reset();
    emit_event(std::move(e), ours ? -1 : r.pidfd, emit);
  }
  if ((mask & FAN_MOVE_SELF) && self) move_root(path, r, md, emit);  // only the roots ask for it
  // One stat serves every kind merged into this event (the kernel merges the queued
  // create, modify, close and attrib of one file by one process).
  struct stat st{};
  int stat_state = 0;  // 0 not yet, 1 done, -1 gone
  auto stat_once = [&] {
    if (stat_state == 0) stat_state = stat_object(path, r, self, st) ? 1 : -1;
    return stat_state == 1;
  };

  if ((mask & (FAN_CREATE | FAN_DELETE)) && r.target && !last_name_.empty()) {
    if (auto it = last_name_.find(fid_key(r.target)); it != last_name_.end()) last_name_.erase(it);
  }
  if (mask & FAN_CREATE) {
    bool duplicate = false;
    if (r.target) {
      if (auto it = scanned_.find(fid_key(r.target)); it != scanned_.end()) {
        scanned_.erase(it);
        duplicate = true;
      }
    }
    // A new directory is opened once, relative to its directory, then examined, marked
    // and listed through that fd. Not when a later event of this read deletes it or
    // renames it: its contents would be reported under this name; the rename marks it.
    UniqueFd new_dir;
    if (is_dir && !duplicate && !r.object_gone && !r.name_gone && !self) {
      if (int parent = dir_fd_for(r.dir); parent >= 0)
        new_dir.reset(::openat(parent, r.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (new_dir.valid()) stat_state = ::fstat(new_dir.get(), &st) == 0 ? 1 : -1;
    }
    bool known = stat_once();
    if (known) attrs_.remember_created(st);
    if (!duplicate) {
      Event e = base();
      e.path = path;
      e.kind = is_dir ? EventKind::kMkdir : EventKind::kCreate;
      if (known) {
        fill_identity(st, e);
        if (S_ISLNK(st.st_mode)) e.kind = EventKind::kSymlink;
        else if (!is_dir && st.st_nlink > 1) e.kind = EventKind::kLink;
      }
      if (is_dir) {
        emit_event(std::move(e), r.pidfd, emit);
        if (new_dir.valid()) {
          // A new directory is on its parent's filesystem: the event's fsid is its own.
          std::string key = r.target ? std::string(fid_key(r.target)) : std::string();
          mark_new_dir(new_dir.get(), path, r.dir->fsid, std::move(key), emit);
        }
      } else {
        emit_event(std::move(e), r.pidfd, emit);
      }
    }
  }
  if (mask & FAN_MODIFY) {
    bool truncated = false;
    if (!written_.contains(path) && stat_once()) truncated = attrs_.shrank(st);
    if (truncated) {
      Event e = base();
      e.kind = EventKind::kTruncate;
      e.path = path;
      fill_identity(st, e);
      emit_event(std::move(e), r.pidfd, emit);
    } else {
      written_.insert(path);
    }
  }
  if (mask & FAN_ATTRIB) {
    Event e = base();
    e.path = path;
    if (stat_once()) {
      fill_identity(st, e);
      // Examined by handle after a later rename of the same read: its change time has
      // moved since this change.
      if (auto kind = attrs_.classify_attrib(st, e, r.name_gone)) {
        e.kind = *kind;
        emit_event(std::move(e), r.pidfd, emit);
      }
    } else {
      // Gone before it could be examined: an attribute changed, which one is unknown.
      e.kind = EventKind::kChmod;
      emit_event(std::move(e), r.pidfd, emit);
    }
  }
  if ((mask & FAN_OPEN) && !self) {
    Event e = base();
    e.kind = EventKind::kOpen;
    e.path = path;
    emit_event(std::move(e), r.pidfd, emit);
  }
  if (mask & FAN_CLOSE_WRITE) {
    if (auto it = written_.find(path); it != written_.end()) {
      written_.erase(it);
      Event e = base();
      e.kind = EventKind::kModify;
      e.path = path;
      if (stat_once()) {
        fill_identity(st, e);
        attrs_.remember_contents(st);
      }
      emit_event(std::move(e), r.pidfd, emit);
    }
  }
  if (mask & FAN_DELETE) {
    if (is_dir) forget_subtree(path);
    written_.erase(path);
    Event e = base();
    e.kind = is_dir ? EventKind::kRmdir : EventKind::kDelete;
    e.path = std::move(path);
    emit_event(std::move(e), r.pidfd, emit);
  }
}

void FanotifyBackend::rescan(const EmitFn& emit) {
  ++stats_.rescans;
  for (const auto& root : spec_.roots) note_failure(mark_tree(root));
  (void)emit;
}

Status FanotifyBackend::poll(int timeout_ms, const EmitFn& emit) {
  pollfd pfds[2] = {{fan_.get(), POLLIN, 0}, {mountinfo_.get(), POLLPRI, 0}};
  int ready = ::poll(pfds, 2, timeout_ms);
  if (ready < 0) return errno == EINTR ? Status(Ok{}) : Status(Error::from_errno("poll fanotify"));
  if (pfds[1].revents & (POLLPRI | POLLERR)) {
    check_mounts(emit);
    if (!(pfds[0].revents & POLLIN)) return failed_;
  }
  if (ready == 0) {
    // Idle: let go of the directories held open for lookups. An open directory keeps a
    // removed one alive, and a removed root's FAN_DELETE_SELF comes only once it is let go.
    dir_fds_.clear();
    for (auto& m : mount_fds_)
      if (!m.held) m.fd.reset();
    scanned_.clear();
    return Ok{};
  }
  if (!failed_) return failed_;
  pacer_.wait();  // at most one read a millisecond (read_pacer.h)
  if (buf_.empty()) {
    // As many events per read as the descriptor limit allows: each event of a read
    // comes with an open pidfd (at least ~96 bytes per event), and a pidfd that cannot
    // be opened loses the event's attribution.
    rlimit lim{};
    size_t size = 1 << 18;
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
      size_t spare = lim.rlim_cur > 256 ? lim.rlim_cur - 128 : 128;
      size = std::clamp<size_t>(spare * 96, 4096, size);
    }
    buf_.resize(size);
  }
  char* buf = buf_.data();
  // One read per call, so that the caller flushes its output after each; again at once
  // only when the read filled the buffer.
  for (;;) {
    ssize_t len = ::read(fan_.get(), buf, buf_.size());
    if (len < 0) {
      if (errno == EAGAIN) {
        scanned_.clear();
        return failed_;
      }
      if (errno == EINTR) return Ok{};
      return Error::from_errno("read fanotify");
    }
    batch_time_ = realtime_now_ns();
    pacer_.read_done(static_cast<size_t>(len) + kMaxEventBytes > buf_.size());
    ++batch_seq_;
    bool overflow = false;
    // Parse the whole read first. Events are packed with 4-byte alignment (info
    // records are padded to 4), so the 8-byte-aligned metadata is copied out.
    parsed_.clear();
    pidfds_.clear();
    for (size_t at = 0; at + sizeof(fanotify_event_metadata) <= static_cast<size_t>(len);) {
      Parsed& ev = parsed_.emplace_back();
      fanotify_event_metadata& md = ev.md;
      std::memcpy(&md, buf + at, sizeof md);
      if (md.event_len < sizeof md || at + md.event_len > static_cast<size_t>(len)) {
        parsed_.pop_back();
        break;
      }
      if (md.vers != FANOTIFY_METADATA_VERSION) {
        for (const Parsed& done : parsed_)
          if (done.r.pidfd >= 0) ::close(done.r.pidfd);
        return Error{fmt::format("fanotify metadata version {} is not {}", md.vers, FANOTIFY_METADATA_VERSION)};
      }
      Record& r = ev.r;
      const char* p = buf + at + md.metadata_len;
      const char* end = buf + at + md.event_len;
      while (p + sizeof(fanotify_event_info_header) <= end) {
        auto* hdr = reinterpret_cast<const fanotify_event_info_header*>(p);
        if (hdr->len == 0) break;
        auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(p);
        auto name_of = [](const fanotify_event_info_fid* f) {
          auto* h = reinterpret_cast<const file_handle*>(f->handle);
          return reinterpret_cast<const char*>(h->f_handle + h->handle_bytes);
        };
        switch (hdr->info_type) {
          case FAN_EVENT_INFO_TYPE_DFID_NAME:
          case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: r.dir = fid, r.name = name_of(fid); break;
          case FAN_EVENT_INFO_TYPE_DFID: r.dir = fid; break;
          case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: r.old_dir = fid, r.old_name = name_of(fid); break;
          case FAN_EVENT_INFO_TYPE_FID: r.target = fid; break;
          case FAN_EVENT_INFO_TYPE_PIDFD:
            r.pidfd = reinterpret_cast<const fanotify_event_info_pidfd*>(p)->pidfd;
            break;
          default: break;
        }
        p += hdr->len;
      }
      if (r.pidfd >= 0) pidfds_.push_back(r.pidfd);
      if (md.fd >= 0) pidfds_.push_back(md.fd);
      at += md.event_len;
    }
    prepare_batch();
    for (const Parsed& ev : parsed_) {
      if (ev.md.mask & FAN_Q_OVERFLOW) {
        overflow = true;
      } else {
        // fstrail's own changes (guard remediation) are not reported, but they still
        // keep the attribute cache and the directory maps current.
        handle_event(&ev.md, ev.r, emit);
      }
    }
    close_pidfds();
    if (overflow) {
      // The kernel does not say how many: at least one.
      emit_loss(LossReason::kKernelQueueOverflow, spec_.roots.front(), batch_time_, emit);
      rescan(emit);
    }
    if (!pacer_.filled()) return failed_;
  }
}

// Which names and objects a later event of this read removes (see Record).
void FanotifyBackend::prepare_batch() {
  removed_at_.clear();
  deleted_at_.clear();
  auto name_ref = [](const fanotify_event_info_fid* dir, const char* name) {
    return NameRef{fid_key(dir), name};
  };
  for (size_t i = 0; i < parsed_.size(); ++i) {
    const auto& [md, r] = parsed_[i];
    if ((md.mask & FAN_DELETE) && r.dir && r.name) removed_at_[name_ref(r.dir, r.name)] = i;
    if ((md.mask & FAN_RENAME) && r.old_dir && r.old_name) removed_at_[name_ref(r.old_dir, r.old_name)] = i;
    if ((md.mask & FAN_DELETE) && r.target) deleted_at_[fid_key(r.target)] = i;
  }
  if (removed_at_.empty()) return;
  for (size_t i = 0; i < parsed_.size(); ++i) {
    auto& [md, r] = parsed_[i];
    // The kernel merges queued events of one object, name and process: a create and
    // a delete in one event (mkdir + rmdir, create + unlink) happened in that order,
    // as an object cannot be created again once deleted (link(2) of another name of
    // it aside: its identity is then left unknown).
    if ((md.mask & FAN_DELETE) && (md.mask & FAN_CREATE)) {
      r.name_gone = r.object_gone = true;
      continue;
    }
    if (r.dir && r.name) {  // for a rename, its new name
      auto it = removed_at_.find(name_ref(r.dir, r.name));
      r.name_gone = it != removed_at_.end() && it->second > i;
    }
    if (r.target) {
      auto it = deleted_at_.find(fid_key(r.target));
      r.object_gone = it != deleted_at_.end() && it->second > i;
    }
  }
}

// The pidfds of a read are mostly consecutive descriptors: one close_range per run.
void FanotifyBackend::close_pidfds() {
  if (pidfds_.empty()) return;
  std::sort(pidfds_.begin(), pidfds_.end());
  size_t run = 0;
  for (size_t i = 1; i <= pidfds_.size(); ++i) {
    if (i < pidfds_.size() && pidfds_[i] == pidfds_[i - 1] + 1) continue;
    auto first = static_cast<unsigned>(pidfds_[run]), last = static_cast<unsigned>(pidfds_[i - 1]);
    if (first == last || ::syscall(SYS_close_range, first, last, 0) != 0)
      for (size_t k = run; k < i; ++k) ::close(pidfds_[k]);
    run = i;
  }
  pidfds_.clear();
}

}  // namespace

Availability probe_fanotify() {
  UniqueFd fd(::fanotify_init(kInitFlags, O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == EPERM)
      return {false, "needs root (CAP_SYS_ADMIN): run fstrail with sudo, or use --backend inotify as any user"};
    if (errno == EINVAL)
      return {false, "this kernel lacks FAN_REPORT_DFID_NAME_TARGET or FAN_REPORT_PIDFD (needs Linux 5.15+)"};
    return {false, fmt::format("fanotify_init failed: {}", std::strerror(errno))};
  }
  if (::fanotify_mark(fd.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, kDirMask, AT_FDCWD, "/") != 0) {
    if (errno == EINVAL) return {false, "this kernel lacks FAN_RENAME (needs Linux 5.17+)"};
    return {false, fmt::format("fanotify_mark failed: {}", std::strerror(errno))};
  }
  return {true, "per-directory marks, pidfd attribution"};
}

std::unique_ptr<Backend> create_fanotify_backend() { return std::make_unique<FanotifyBackend>(); }

}  // namespace fstrail
