// What a fanotify mark costs, without the rest of fstrail: marks DIR's filesystem
// (FAN_MARK_FILESYSTEM) or every directory under DIR (inode marks), with the flags
// fstrail uses, then reads and drops events until SIGINT/SIGTERM, reading as often as
// fstrail does (at most once a millisecond, backend/read_pacer.h): a reader woken for
// every event, or one that lets the queue grow long (each new event is compared with
// those queued, to merge), costs the writer more than that. Prints only names
// starting with "ready-" (for bench/run.sh's start-up probe). With inode marks, a
// directory created later is marked too, as fstrail must (relative to its parent,
// opened by handle): without that, directories made by a workload would go unmarked
// and their events would cost nothing, which no real monitor can do.
//   fanotify_mark_cost filesystem|directories DIR
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <unordered_set>
#include <vector>

#include "backend/read_pacer.h"

namespace {
volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s filesystem|directories DIR\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1], dir = argv[2];
  int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME_TARGET |
                              FAN_REPORT_PIDFD | FAN_UNLIMITED_QUEUE,
                          O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fan < 0) return std::perror("fanotify_init"), 1;
  const uint64_t mask = FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_MODIFY | FAN_CLOSE_WRITE | FAN_ATTRIB | FAN_ONDIR;
  // Marks the directory open as `fd`, then lists it and does the same for every directory in
  // it (and closes `fd`): what a new directory already holds (mkdir -p) is marked too, as
  // fstrail does; else those directories' events would cost nothing. False: `fd` itself
  // could not be marked.
  std::function<bool(int)> mark_tree = [&](int fd) {
    bool marked = fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_ONLYDIR, mask | FAN_EVENT_ON_CHILD, fd, nullptr) == 0;
    DIR* d = fdopendir(fd);
    if (!d) return close(fd), marked;
    while (dirent* ent = readdir(d)) {
      if (ent->d_type != DT_DIR || std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
      int sub = openat(fd, ent->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) mark_tree(sub);
    }
    closedir(d);
    return marked;
  };
  if (mode == "filesystem") {
    if (fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD, dir.c_str()) != 0)
      return std::perror("fanotify_mark"), 1;
  } else {
    int root = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return std::perror(dir.c_str()), 1;
    if (!mark_tree(root)) return std::perror("fanotify_mark"), 1;
  }
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const bool directories = mode != "filesystem";
  const int mount_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mount_fd < 0) return std::perror(dir.c_str()), 1;
  alignas(fanotify_event_metadata) static char buf[64 * 1024];
  fstrail::ReadPacer pacer;
  std::vector<std::string> created;      // directories created in one read
  std::unordered_set<std::string> removed;  // and entries removed in it
  while (!g_stop) {
    pollfd pfd{fan, POLLIN, 0};
    if (poll(&pfd, 1, 200) <= 0) continue;
    pacer.wait();
    // One read, and another at once only when it filled the buffer (room for one more
    // event of any size, as fstrail tests).
    for (ssize_t len; !g_stop && (len = read(fan, buf, sizeof buf)) > 0;) {
      pacer.read_done(static_cast<size_t>(len) + 4096 > sizeof buf);
      auto* md = reinterpret_cast<fanotify_event_metadata*>(buf);
      for (; FAN_EVENT_OK(md, len); md = FAN_EVENT_NEXT(md, len)) {
        char* p = reinterpret_cast<char*>(md) + md->metadata_len;
        char* end = reinterpret_cast<char*>(md) + md->event_len;
        while (p < end) {
          auto* hdr = reinterpret_cast<fanotify_event_info_header*>(p);
          if (hdr->len == 0) break;
          if (hdr->info_type == FAN_EVENT_INFO_TYPE_PIDFD) {
            int pidfd = reinterpret_cast<fanotify_event_info_pidfd*>(p)->pidfd;
            if (pidfd >= 0) close(pidfd);
          } else if (hdr->info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
            auto* fid = reinterpret_cast<fanotify_event_info_fid*>(p);
            auto* handle = reinterpret_cast<file_handle*>(fid->handle);
            const char* name = reinterpret_cast<const char*>(handle->f_handle + handle->handle_bytes);
            if (std::strncmp(name, "ready-", 6) == 0) std::printf("%s\n", name), std::fflush(stdout);
            if (directories && (md->mask & (FAN_CREATE | FAN_DELETE)) && (md->mask & FAN_ONDIR)) {
              // The parent's handle (with its header) and the name: one key per entry.
              std::string key(reinterpret_cast<const char*>(handle), sizeof *handle + handle->handle_bytes);
              key.append(name);
              if (md->mask & FAN_DELETE)
                removed.insert(std::move(key));
              else
                created.push_back(std::move(key));
            }
          }
          p += hdr->len;
        }
      }
      // New directories are marked after the read, as fstrail does, and not those a later
      // event of the same read removed (looking up a name that is gone takes the lock on
      // its directory that the writer needs).
      for (const std::string& key : created) {
        if (removed.contains(key)) continue;
        auto* handle = reinterpret_cast<file_handle*>(const_cast<char*>(key.data()));
        int parent = open_by_handle_at(mount_fd, handle, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0) continue;
        const char* name = key.c_str() + sizeof *handle + handle->handle_bytes;
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) mark_tree(fd);
        close(parent);
      }
      created.clear();
      removed.clear();
      if (!pacer.filled()) break;
    }
  }
  return 0;
}
