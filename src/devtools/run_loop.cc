#include "devtools/run_loop.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/text.h"
#include "devtools/ignore.h"
#include "devtools/process_tree.h"
#include "devtools/runner.h"
#include "sink/sink.h"

namespace fstrail::devtools {
namespace {

constexpr int kExitUsage = 2;

int64_t monotonic_ns() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// A command's exit interrupts the backend's wait (no SA_RESTART), so it is seen at once.
void on_child(int) {}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

Status write_file(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::from_errno("cannot write " + tmp);
  bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) return Error::from_errno("cannot write " + path);
  return Ok{};
}

class RunLoop {
 public:
  RunLoop(const RunOptions& o, const std::atomic<bool>& stop) : o_(o), stop_(stop), batcher_(o.timing) {}
  ~RunLoop() {
    runner_.stop(o_.stop_timeout_ms);
    rules_.clear();
    if (!private_dir_.empty()) ::nftw(private_dir_.c_str(), remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  }
  Status setup();
  int loop();

 private:
  void on_event(Event&& e);
  IgnoreRules* rules_for(const std::string& path);
  bool ignored(const std::string& path, bool is_dir);
  void update_writes();
  void dispatch();
  void start_command(const Batch& batch, bool initial = false);
  int poll_timeout_ms(int64_t now) const;

  const RunOptions& o_;
  const std::atomic<bool>& stop_;
  std::unique_ptr<Backend> backend_;
  std::vector<std::unique_ptr<IgnoreRules>> rules_;  // one per root, in spec.roots order
  ChangeBatcher batcher_;
  CommandRunner runner_;
  ProcessTree self_;
  std::string private_dir_;
  uint64_t runs_ = 0;
};

Status RunLoop::setup() {
  auto selection = start_backend(o_.backend, o_.spec);
  if (!selection) return selection.error();
  backend_ = std::move(selection->backend);
  if (o_.backend == "auto") fmt::print(stderr, "fstrail: {}\n", selection->why);
  if (o_.ignore_self && !backend_attributes(backend_->name()))
    return Error{fmt::format(
        "--ignore-self needs to know which process made each change, and the {} backend cannot tell. "
        "Backends that can: bpf-lsm, bpf-fentry, bpf-tracepoint and fanotify (as root; `fstrail doctor` "
        "says which run here). Without it, --exclude what the command writes",
        backend_->name())};
  if (o_.ignore_self)
    if (Status s = self_.follow_forks(); !s)
      fmt::print(stderr,
                 "fstrail: --ignore-self: {}: processes of the command that exit before their "
                 "change is read may not be recognized\n",
                 s.error().message);
  for (const auto& root : o_.spec.roots) {
    auto rules = IgnoreRules::open(root, o_.excludes);
    if (!rules) return rules.error();
    rules_.push_back(std::move(*rules));
  }
  const char* base = std::getenv("XDG_RUNTIME_DIR");
  if (!base || !*base || ::access(base, W_OK) != 0) base = std::getenv("TMPDIR");
  if (!base || !*base) base = "/tmp";
  private_dir_ = fmt::format("{}/fstrail-run-XXXXXX", base);
  if (!::mkdtemp(private_dir_.data())) {
    std::string dir = private_dir_;
    private_dir_.clear();
    return Error::from_errno("cannot create a private directory " + dir);
  }
  struct sigaction sa {};
  sa.sa_handler = on_child;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, nullptr);
  std::string where;
  for (const auto& r : rules_)
    where += fmt::format("{}{} ({})", where.empty() ? "" : ", ", escape_for_terminal(r->worktree()),
                         r->in_git_repository() ? "git repository" : "no git repository");
  fmt::print(stderr, "fstrail: watching {} path(s) with {}; ignore rules of {}\n", o_.spec.roots.size(),
             backend_->name(), where);
  return Ok{};
}

IgnoreRules* RunLoop::rules_for(const std::string& path) {
  IgnoreRules* best = nullptr;
  size_t best_len = 0;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const std::string& root = o_.spec.roots[i];
    bool under = path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                                  (root == "/" || path[root.size()] == '/'));
    if (under && root.size() >= best_len) {
      best = rules_[i].get();
      best_len = root.size();
    }
  }
  return best;
}

bool RunLoop::ignored(const std::string& path, bool is_dir) {
  IgnoreRules* rules = rules_for(path);
  return rules && rules->ignored(path, is_dir);
}

void RunLoop::on_event(Event&& e) {
  if (e.kind == EventKind::kOpen) return;
  if (e.kind == EventKind::kLost) return batcher_.add(std::move(e), monotonic_ns());
  if (o_.ignore_self && self_.made_by_command(e)) return;
  for (const std::string* p : {&e.path, e.old_path ? &*e.old_path : nullptr})
    if (p && IgnoreRules::is_ignore_file(*p))
      if (IgnoreRules* rules = rules_for(*p)) {
        if (Status s = rules->reload_ignore_files(); !s)
          fmt::print(stderr, "fstrail: {}\n", s.error().message);
      }
  bool is_dir = e.is_dir.value_or(false);
  bool path_ignored = ignored(e.path, is_dir);
  if (e.kind == EventKind::kRename && e.old_path) {
    bool old_ignored = ignored(*e.old_path, is_dir);
    if (old_ignored && path_ignored) return;
    if (old_ignored) {  // from an ignored temporary name (an editor's save): the target changed
      e.kind = is_dir ? EventKind::kMkdir : EventKind::kModify;
      e.old_path.reset();
    } else if (path_ignored) {  // moved out of sight: gone
      e.kind = is_dir ? EventKind::kRmdir : EventKind::kDelete;
      e.path = std::move(*e.old_path);
      e.old_path.reset();
    }
  } else if (path_ignored) {
    return;
  }
  batcher_.add(std::move(e), monotonic_ns());
}

void RunLoop::update_writes() {
  if (!batcher_.pending()) return;
  // Git's lock (a checkout in progress) settles like a file being written: a checkout of
  // 10 000 files on a loaded machine has pauses longer than the debounce.
  bool writing =
      std::any_of(rules_.begin(), rules_.end(), [](const auto& r) { return r->git_operation_in_progress(); });
  if (!writing) {
    auto files = backend_->files_being_written();
    writing = files && std::any_of(files->begin(), files->end(),
                                   [this](const std::string& f) { return !ignored(f, false); });
  }
  batcher_.set_writes_in_progress(writing);
}

void RunLoop::start_command(const Batch& batch, bool initial) {
  ++runs_;
  if (batch.rescan)
    fmt::print(stderr, "fstrail: events were lost ({}): this run is a full one (FSTRAIL_RESCAN=1)\n",
               batch.lost.total() ? batch.lost.describe() : "count unknown");
  std::string events_file = private_dir_ + "/events.json";
  Launch launch{o_.command, {}, {}};
  if (Status s = write_file(events_file, batch_to_json(batch)); !s)
    fmt::print(stderr, "fstrail: {}\n", s.error().message);
  launch.extra_env.push_back("FSTRAIL_EVENTS_FILE=" + events_file);
  launch.extra_env.push_back(fmt::format("FSTRAIL_RESCAN={}", batch.rescan || initial ? 1 : 0));
  if (o_.paths_to_stdin) {
    std::string paths;
    for (const auto& c : batch.changes) {
      if (c.old_path) paths += *c.old_path + '\0';
      paths += c.path + '\0';
    }
    launch.stdin_file = private_dir_ + "/paths";
    if (Status s = write_file(launch.stdin_file, paths); !s)
      fmt::print(stderr, "fstrail: {}\n", s.error().message);
  }
  if (o_.clear) {
    std::fputs("\033[H\033[2J\033[3J", stdout);
    std::fflush(stdout);
  }
  std::fflush(stderr);
  if (Status s = runner_.start(launch); !s) {
    fmt::print(stderr, "fstrail: {}\n", s.error().message);
    return;
  }
  if (o_.ignore_self) self_.new_command(runner_.pid());
}

void RunLoop::dispatch() {
  if (!runner_.running()) return start_command(batcher_.take());
  switch (o_.on_busy) {
    case OnBusy::kQueue:
      return;  // stays pending: the run starts when the command exits
    case OnBusy::kRestart:
      runner_.stop(o_.stop_timeout_ms);
      return start_command(batcher_.take());
    case OnBusy::kSignal:
      runner_.signal_group(o_.signal);
      batcher_.take();
      return;
    case OnBusy::kDoNothing:
      batcher_.take();
      return;
  }
}

int RunLoop::poll_timeout_ms(int64_t now) const {
  int64_t wait = batcher_.wait_ns(now);
  int ms = 200;  // the stop flag and the command's exit are checked at least this often
  if (wait >= 0) ms = static_cast<int>(std::min<int64_t>(ms, (wait + 999'999) / 1'000'000));
  return ms;
}

int RunLoop::loop() {
  if (!o_.postpone) start_command(Batch{}, true);
  EmitFn emit = [this](Event&& e) { on_event(std::move(e)); };
  while (!stop_.load(std::memory_order_relaxed)) {
    if (Status s = backend_->poll(poll_timeout_ms(monotonic_ns()), emit); !s) {
      fmt::print(stderr, "fstrail: {}\n", s.error().message);
      return 1;
    }
    bool was_running = runner_.running();
    runner_.poll_exit();
    if (was_running && !runner_.running()) {
      int status = runner_.last_status().value_or(1);
      if (status != 0) fmt::print(stderr, "fstrail: the command exited with status {}\n", status);
      if (o_.once) return status;
    }
    update_writes();
    if (batcher_.due(monotonic_ns()) && !(o_.once && runs_ > 0)) dispatch();
  }
  return 0;
}

}  // namespace

bool backend_attributes(std::string_view name) { return name != "inotify"; }

std::string batch_to_json(const Batch& batch) {
  std::string out =
      fmt::format("{{\"rescan\":{},\"lost\":{},\"changes\":[", batch.rescan, batch.lost.total());
  for (size_t i = 0; i < batch.changes.size(); ++i) {
    if (i) out += ',';
    size_t at = out.size();
    append_event_json(out, batch.changes[i]);
    while (out.size() > at && out.back() == '\n') out.pop_back();
  }
  out += "]}\n";
  return out;
}

int run_on_changes(const RunOptions& options, const std::atomic<bool>& stop) {
  RunLoop loop(options, stop);
  if (Status s = loop.setup(); !s) {
    fmt::print(stderr, "fstrail: {}\n", s.error().message);
    return kExitUsage;
  }
  return loop.loop();
}

}  // namespace fstrail::devtools
