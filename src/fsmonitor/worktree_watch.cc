#include "fsmonitor/worktree_watch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "backend/tree_walk.h"
#include "core/clock.h"

namespace fstrail::fsmonitor {
namespace {

Result<Selection> start_backend_for(const std::string& name, const WatchSpec& spec) {
  if (name != "auto") return start_backend(name, spec);
  if (::geteuid() == 0) {
    auto fanotify = start_backend("fanotify", spec);
    if (fanotify) return fanotify;
  }
  return start_backend("inotify", spec);
}

// The fanotify backend drops the events of its own process (its reads, fstrail's output):
// there the cookie is made by a child.
Status make_cookie(const std::string& path, bool by_child) {
  auto create = [&] {
    int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
  };
  if (!by_child) {
    int err = create();
    return err ? Status(Error::from_errno("create the sync cookie " + path, err)) : Status(Ok{});
  }
  pid_t child = ::fork();
  if (child < 0) return Error::from_errno("fork to create the sync cookie");
  if (child == 0) ::_exit(create());
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  int err = WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
  return err ? Status(Error::from_errno("create the sync cookie " + path, err)) : Status(Ok{});
}

}  // namespace

WorktreeWatch::WorktreeWatch(std::string root, uint64_t instance, std::atomic<uint64_t>& sequence)
    : root_(std::move(root)), instance_(instance), sequence_(sequence), log_(0) {}

Result<std::unique_ptr<WorktreeWatch>> WorktreeWatch::start(const std::string& root,
                                                            const std::string& backend, uint64_t instance,
                                                            std::atomic<uint64_t>& sequence) {
  std::unique_ptr<WorktreeWatch> watch(new WorktreeWatch(root, instance, sequence));
  struct stat st {};
  std::string git_dir = root + "/.git";
  watch->cookie_dir_ = ::lstat(git_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? git_dir : root;
  WatchSpec spec;
  spec.roots = {root};
  spec.kinds.reset(static_cast<size_t>(EventKind::kOpen));
  auto selection = start_backend_for(backend, spec);
  if (!selection) return selection.error();
  watch->backend_ = std::move(selection->backend);
  watch->backend_name_ = std::string(watch->backend_->name());
  // Every event from now on is numbered above the floor; tokens from before it get "/".
  watch->log_.lose_track(++sequence);
  watch->last_query_ns_ = boottime_now_ns();
  watch->thread_ = std::thread([w = watch.get()] { w->run(); });
  return watch;
}

WorktreeWatch::~WorktreeWatch() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void WorktreeWatch::run() {
  auto emit = [this](Event&& event) {
    std::lock_guard lock(mutex_);
    on_event(std::move(event));
  };
  while (!stop_) {
    Status s = backend_->poll(100, emit);
    if (!s) {
      std::fprintf(stderr, "fstrail watchd: %s: %s\n", root_.c_str(), s.error().message.c_str());
      std::lock_guard lock(mutex_);
      lose_track();
      broken_ = true;
      seen_.notify_all();
      return;
    }
  }
}

void WorktreeWatch::lose_track() { log_.lose_track(++sequence_); }

void WorktreeWatch::on_event(Event&& event) {
  if (event.kind == EventKind::kOpen) return;
  if (event.kind == EventKind::kLost) {
    lose_track();
    return;
  }
  if (event.path == root_ && event.kind != EventKind::kChmod && event.kind != EventKind::kChown &&
      event.kind != EventKind::kXattr) {
    lose_track();  // the root itself went away or was replaced
    broken_ = true;
    seen_.notify_all();
    return;
  }
  if (auto cookie = cookie_name(root_, event.path)) {
    if (event.kind == EventKind::kCreate) {
      cookies_seen_.insert(*cookie);
      seen_.notify_all();
    }
    return;
  }
  if (event.old_path) note(*event.old_path, event.is_dir);
  note(event.path, event.is_dir);
  // What a directory brings along (moved in, or made with contents before it was
  // watched) changed too, each directory below it as well (git's untracked cache keeps
  // one entry per directory, and only a path below one invalidates it).
  if (event.is_dir.value_or(false) && (event.kind == EventKind::kMkdir || event.kind == EventKind::kRename))
    note_subtree(event.path);
}

void WorktreeWatch::note(const std::string& path, std::optional<bool> is_dir) {
  // Unknown: both forms, so git looks at the entry and at everything below it.
  if (!is_dir || !*is_dir)
    if (auto rel = git_path(root_, path, false)) log_.add(std::move(*rel), ++sequence_);
  if (!is_dir || *is_dir)
    if (auto rel = git_path(root_, path, true)) log_.add(std::move(*rel), ++sequence_);
}

void WorktreeWatch::note_subtree(const std::string& dir) {
  walk_tree(dir, [&](const std::string& path, const struct stat& st) {
    auto rel = git_path(root_, path, S_ISDIR(st.st_mode));
    if (!rel) return false;
    log_.add(std::move(*rel), ++sequence_);
    return S_ISDIR(st.st_mode);
  });
}

std::string WorktreeWatch::first_answer() {
  std::lock_guard lock(mutex_);
  last_query_ns_ = boottime_now_ns();
  return hook_output(Token{instance_, sequence_.load()}, std::nullopt);
}

Result<std::string> WorktreeWatch::query(std::string_view token_text, int timeout_ms) {
  last_query_ns_ = boottime_now_ns();
  std::string name = fmt::format("{}{}-{}", kCookiePrefix, ::getpid(), ++cookies_made_);
  std::string cookie = cookie_dir_ + "/" + name;
  if (Status made = make_cookie(cookie, backend_name_ == "fanotify"); !made) return made.error();
  std::unique_lock lock(mutex_);
  bool seen = seen_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                             [&] { return cookies_seen_.contains(name) || broken_; });
  cookies_seen_.erase(name);
  ::unlink(cookie.c_str());
  if (broken_)
    return Error{fmt::format("the watch of {} stopped; it is made again on the next query", root_)};
  if (!seen)
    return Error{fmt::format("the watcher did not see its sync cookie {} within {} ms", cookie, timeout_ms)};
  Token now{instance_, sequence_.load()};
  std::optional<std::vector<std::string>> paths;
  if (auto token = parse_token(token_text); token && token->instance == instance_)
    paths = log_.changed_since(token->sequence);
  return hook_output(now, paths);
}

}  // namespace fstrail::fsmonitor
