// fanotify backend, internal: the class its files share (fanotify_backend.cc: start and
// the read loop, and how it works; fanotify_marks.cc: marks and mounts;
// fanotify_paths.cc: file handle to path; fanotify_events.cc: one event to fstrail
// events; fanotify_actor.cc: the actor).
#pragma once

#include "backend/backend.h"

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

namespace fstrail::fan {

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200  // Linux 6.5; glibc 2.36 does not have it
#endif

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
inline std::string_view fid_key(const fanotify_event_info_fid* fid) {
  auto* handle = reinterpret_cast<const file_handle*>(fid->handle);
  return {reinterpret_cast<const char*>(&fid->fsid), sizeof fid->fsid + sizeof(file_handle) + handle->handle_bytes};
}

struct HandleBuffer {
  file_handle header;
  unsigned char bytes[MAX_HANDLE_SZ];
};

// The fid key of `name` relative to `dirfd` (AT_FDCWD: a path), built like fid_key;
// "" when it has none.
std::string key_at(int dirfd, const char* name, const __kernel_fsid_t& fsid);
// The path the kernel gives for an open file or directory now (/proc/self/fd).
std::optional<std::string> fd_path(int fd);

class FanotifyBackend final : public Backend {
 public:
  std::string_view name() const override { return "fanotify"; }
  Status start(const WatchSpec& spec) override;
  Status poll(int timeout_ms, const EmitFn& emit) override;
  BackendStats stats() const override { return stats_; }
  Status update_roots(const std::vector<std::string>& roots) override;
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
  // One event's object, shared by the kinds the kernel merged into it.
  struct Change {
    const fanotify_event_metadata* md;
    const Record& r;
    bool is_dir;
    bool self = false;
    std::string path = {};
    struct stat st = {};
    int stat_state = 0;  // 0 not yet, 1 done, -1 gone
  };
  void handle_event(const fanotify_event_metadata* md, const Record& r, const EmitFn& emit);
  Event event_of(const Change& c) const;
  Event new_event(EventKind kind, int64_t time_ns) const {
    Event e;
    e.time_ns = time_ns;
    e.backend = name();
    e.kind = kind;
    return e;
  }
  // One stat serves every kind merged into an event (the kernel merges the queued
  // create, modify, close and attrib of one file by one process).
  bool stat_once(Change& c);
  void on_rename(Change& c, const EmitFn& emit);
  void on_create(Change& c, const EmitFn& emit);
  void on_modify(Change& c, const EmitFn& emit);
  void on_attrib(Change& c, const EmitFn& emit);
  void on_close_write(Change& c, const EmitFn& emit);
  void on_delete(Change& c, const EmitFn& emit);
  // The events of one read, parsed before any is handled; an error for a metadata
  // version this does not know.
  Status parse_read(const char* buf, size_t len);
  void size_buffer();
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

}  // namespace fstrail::fan
