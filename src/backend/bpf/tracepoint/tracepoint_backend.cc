#include "backend/bpf/tracepoint/tracepoint_backend.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "backend/bpf/common/bpf_probes.h"
#include "backend/bpf/common/bpf_runtime.h"
#include "backend/bpf/common/ring_consumer.h"
#include "backend/tree_walk.h"
#include "enrich/procfs.h"
#include "fstrail/wire.h"
#include "backend/bpf/tracepoint/tracepoint.bpf.h"
#include "backend/bpf/tracepoint/path_tracker.h"
#include "backend/bpf/tracepoint/cwd_scopes.h"
#include "backend/bpf/tracepoint/inode_owners.h"
#include "backend/bpf/tracepoint/tracepoint_programs.h"
#include "backend/bpf/common/subtree_backend.h"
#include "backend/bpf/tracepoint/kread.bpf.h"
#include "fst_kread.skel.h"
#include "fst_tracepoint.skel.h"

namespace fstrail {
namespace bpf {

namespace {

constexpr std::string_view kName = "bpf-tracepoint";
constexpr int64_t kBirthSlackNs = 10'000'000;  // inode birth times use the coarse clock (one tick)
// Records per poll: a batch is held whole until finished (paths_removed_later), so a
// consumer that fell behind a full ring works through it in cache-sized pieces.
constexpr int kBatchLimit = 2048;

// FSTRAIL_BENCH_TRACEPOINT_FLOOR (bench/tracepoint_floors.sh only): what the mechanism
// costs with nothing of fstrail's own work. "dispatchers": the two raw_syscalls
// dispatchers attached alone, no syscall routed; "drop": every program attached, user
// space drops each record unread. Either way no event is reported.
enum class Floor { kNone, kDispatchers, kDrop };

Floor bench_floor() {
  const char* floor = std::getenv("FSTRAIL_BENCH_TRACEPOINT_FLOOR");
  if (!floor) return Floor::kNone;
  std::string_view f(floor);
  if (f == "dispatchers") return Floor::kDispatchers;
  if (f == "drop") return Floor::kDrop;
  return Floor::kNone;
}

class TracepointBackend final : public Backend {
 public:
  ~TracepointBackend() override {
    consumer_.reset();
    fst_tracepoint__destroy(skel_);
    fst_kread__destroy(kskel_);
  }

  std::string_view name() const override { return kName; }

  Status start(const WatchSpec& spec) override {
    spec_ = spec;
    for (auto& root : spec_.roots) root = lexically_normal_path(root);
    if (spec_.tracepoint_mode != "strings") {
      Status s = start_kernel_read();
      if (s) return s;
      if (spec_.tracepoint_mode == "kernel") return s;
      fmt::print(stderr, "fstrail: {}: kernel-read mode unavailable ({}); using string mode\n", kName,
                 s.error().message);
      consumer_.reset();
      fst_kread__destroy(kskel_);
      kskel_ = nullptr;
      spec_ = spec;
      for (auto& root : spec_.roots) root = lexically_normal_path(root);
    }
    fmt::print(stderr, "fstrail: {}: string mode (paths from syscall arguments, actor ids from /proc)\n", kName);
    if (spec_.roots.size() > FST_TP_MAX_ROOTS)
      return Error{fmt::format("{} watches at most {} roots, {} given", kName, FST_TP_MAX_ROOTS, spec_.roots.size())};
    if (Status s = prepare_bpf_runtime(); !s) return s;
    skel_ = fst_tracepoint__open();
    if (!skel_) return Error::from_errno("cannot open the bpf-tracepoint BPF object");
    configure(*skel_->rodata);
    auto dispatched = prepare_programs(skel_->obj);
    floor_ = bench_floor();
    if (floor_ == Floor::kDispatchers) {
      fmt::print(stderr, "fstrail: {}: benchmark floor: the raw_syscalls dispatchers alone\n", kName);
      dispatched.clear();
      bpf_program* prog;
      bpf_object__for_each_program(prog, skel_->obj) {
        std::string_view name = bpf_program__name(prog);
        if (name != "dispatch_enter" && name != "dispatch_exit") bpf_program__set_autoattach(prog, false);
      }
    }
    if (int err = fst_tracepoint__load(skel_); err != 0)
      return Error{fmt::format("loading the bpf-tracepoint programs failed: {} (run with FSTRAIL_BPF_VERBOSE=1 "
                               "for the verifier log)", std::strerror(-err)), -err};
    if (Status s = route_programs(dispatched, skel_->maps.fst_enter_by_nr, skel_->maps.fst_exit_by_nr); !s)
      return s;
    if (int err = fst_tracepoint__attach(skel_); err != 0)
      return Error{fmt::format("attaching the syscall tracepoints failed: {}", std::strerror(-err)), -err};
    cwds_.open(bpf_map__fd(skel_->maps.fst_cwd_epoch), bpf_map__fd(skel_->maps.fst_cwd_state),
               bpf_map__fd(skel_->maps.fst_cwd_unknown), &spec_.roots, &resolver_);
    resolver_.set_parent_lookup(
        [](void* self, pid_t child) -> std::optional<pid_t> {
          uint32_t key = static_cast<uint32_t>(child), parent = 0;
          int fd = static_cast<TracepointBackend*>(self)->parent_fd_;
          if (bpf_map_lookup_elem(fd, &key, &parent) != 0) return std::nullopt;
          return static_cast<pid_t>(parent);
        },
        this);
    parent_fd_ = bpf_map__fd(skel_->maps.fst_parent);
    consumer_ = std::make_unique<RingConsumer>(kName, &resolver_, bpf_map__fd(skel_->maps.lost_by_op));
    consumer_->use_adaptive_polling(&skel_->bss->fst_consumer_polling);
    consumer_->limit_batch(kBatchLimit);
    if (floor_ == Floor::kDrop) {
      fmt::print(stderr, "fstrail: {}: benchmark floor: every record dropped unread\n", kName);
      consumer_->drop_records();
    }
    consumer_->on_dirfd([this](DirFdRecord&& d) {
      if (d.fd == FST_DIRFD_EXITED) {
        cwds_.forget(static_cast<uint32_t>(d.pid));
        logins_.erase(d.pid);
        status_files_.forget(d.pid);
      }
      resolver_.apply(d);
    });
    if (Status s = consumer_->open(bpf_map__fd(skel_->maps.events)); !s) return s;
    // Attached first, seeded second: a chdir in between bumps the epoch and wins.
    cwds_.seed();
    owners_.scan(spec_.roots);
    return Ok{};
  }

  Status poll(int timeout_ms, const EmitFn& emit) override {
    batch_procs_.clear();
    cwds_.new_batch();
    batch_.clear();
    // The batch is finished once whole: a path a later event of it removes is not looked up.
    Status s = consumer_->poll(
        timeout_ms,
        [&](Event&& event) {
          if (!is_lexically_normal(event.path)) event.path = lexically_normal_path(event.path);
          if (event.old_path && !is_lexically_normal(*event.old_path))
            event.old_path = lexically_normal_path(*event.old_path);
          batch_.push_back(std::move(event));
        },
        emit);
    std::vector<bool> removed_later = paths_removed_later(batch_);
    std::vector<bool> forget_attrs = renamed_unseen_changes(removed_later);
    for (size_t i = 0; i < batch_.size(); ++i) finish(std::move(batch_[i]), removed_later[i], forget_attrs[i], emit);
    cwds_.learn_queued();
    return s;
  }

  BackendStats stats() const override {
    BackendStats stats;
    if (consumer_) stats.lost = consumer_->stats().lost;
    return stats;
  }

  // Kernel-read mode only: its roots are map entries; string mode compiles them into the
  // programs' read-only data at load. A removed root leaves its ancestors' prefix entries
  // (shared with other roots, harmless: user space checks every path against the roots).
  Status update_roots(const std::vector<std::string>& roots) override {
    if (!kernel_)
      return Error{fmt::format("{} in string mode cannot change its watched trees while running (restart "
                               "fstrail; kernel-read mode can)", kName), ENOTSUP};
    std::vector<std::string> real;
    for (const auto& root : roots) {
      char resolved[PATH_MAX];
      real.push_back(::realpath(root.c_str(), resolved) ? resolved : lexically_normal_path(root));
    }
    std::vector<std::string> old = std::exchange(spec_.roots, real);
    std::vector<std::string> added = roots_not_in(real, old);
    if (Status s = fill_kernel_roots(added); !s) {
      spec_.roots = old;
      return s;
    }
    int roots_fd = bpf_map__fd(kskel_->maps.fst_roots);
    for (const auto& root : roots_not_in(old, real)) {
      if (auto key = root_key_of(root)) bpf_map_delete_elem(roots_fd, &*key);
    }
    owners_.scan(added);
    return Ok{};
  }

 private:
  // Kernel-read mode (kread.bpf.c): paths and actors from kernel objects.
  Status start_kernel_read() {
    if (Status s = prepare_bpf_runtime(); !s) return s;
    // The kernel names real paths: the exact user-space check compares against those.
    for (auto& root : spec_.roots) {
      char real[PATH_MAX];
      if (::realpath(root.c_str(), real)) root = real;
    }
    kskel_ = fst_kread__open();
    if (!kskel_) return Error::from_errno("cannot open the kernel-read BPF object");
    kskel_->rodata->fst_agent_tgid = static_cast<uint32_t>(::getpid());
    kskel_->rodata->fst_ops_wanted = wanted_ops(spec_.kinds);
    kskel_->rodata->fst_report_failed = spec_.report_failed ? 1 : 0;
    auto dispatched = prepare_programs(kskel_->obj);
    add_shared_exits(dispatched, kskel_->progs.kr_exit, kskel_->progs.kr_exit_dup);
    if (int err = fst_kread__load(kskel_); err != 0)
      return Error{fmt::format("loading the kernel-read programs failed: {} (kernel reads refused: lockdown="
                               "confidentiality?)", std::strerror(-err)), -err};
    if (Status s = route_programs(dispatched, kskel_->maps.fst_enter_by_nr, kskel_->maps.fst_exit_by_nr); !s)
      return s;
    if (Status s = fill_kernel_roots(spec_.roots); !s) return s;
    if (int err = fst_kread__attach(kskel_); err != 0)
      return Error{fmt::format("attaching the syscall tracepoints failed: {}", std::strerror(-err)), -err};
    consumer_ = std::make_unique<RingConsumer>(kName, nullptr, bpf_map__fd(kskel_->maps.lost_by_op));
    consumer_->use_adaptive_polling(&kskel_->bss->fst_consumer_polling);
    consumer_->limit_batch(kBatchLimit);
    consumer_->exe_cache().kernel_only();
    consumer_->on_dirfd([this](DirFdRecord&& d) {
      if (d.fd == FST_DIRFD_EXITED) consumer_->exe_cache().forget(d.pid);
    });
    if (Status s = consumer_->open(bpf_map__fd(kskel_->maps.events)); !s) return s;
    kernel_ = true;
    fmt::print(stderr, "fstrail: {}: kernel-read mode (paths and actors from kernel objects)\n", kName);
    owners_.scan(spec_.roots);
    return Ok{};
  }

  // Roots by (dev, ino); their ancestors and the prefix hashes (kread.bpf.h).
  Status fill_kernel_roots(const std::vector<std::string>& roots) {
    int roots_fd = bpf_map__fd(kskel_->maps.fst_roots);
    int ancestors_fd = bpf_map__fd(kskel_->maps.fst_kr_ancestors);
    int prefixes_fd = bpf_map__fd(kskel_->maps.fst_kr_prefixes);
    uint8_t one = 1;
    for (const auto& root : roots) {
      auto key = root_key_of(root);
      if (!key) return key.error();
      if (bpf_map_update_elem(roots_fd, &*key, &one, BPF_ANY) != 0)
        return Error::from_errno(fmt::format("cannot watch {}: the root map is full", root));
      for (const auto& entry : ancestor_prefixes(root)) {
        if (bpf_map_update_elem(ancestors_fd, &entry.dir, &one, BPF_ANY) != 0 ||
            bpf_map_update_elem(prefixes_fd, &entry.hash, &one, BPF_ANY) != 0)
          return Error::from_errno(fmt::format("cannot watch {}: the ancestor maps are full", root));
      }
    }
    return Ok{};
  }

  void configure(fst_tracepoint::fst_tracepoint__rodata& rodata) {
    rodata.fst_agent_tgid = static_cast<uint32_t>(::getpid());
    uint32_t mask = 0;
    for (int op = 1; op < FST_OP_COUNT; ++op)
      if (spec_.kinds.test(static_cast<size_t>(op))) mask |= 1U << op;
    rodata.fst_op_mask = mask;
    rodata.fst_report_failed = spec_.report_failed ? 1 : 0;
    rodata.fst_fork_child_pid_offset = fork_child_pid_offset();
    rodata.fst_root_count = static_cast<uint32_t>(spec_.roots.size());
    for (size_t i = 0; i < spec_.roots.size(); ++i) {
      const std::string& root = spec_.roots[i];
      auto& slot = rodata.fst_roots[i];
      if (root == "/") {
        slot.len = 0;  // every absolute path
      } else if (root.size() >= FST_TP_ROOT_MAX) {
        slot.len = FST_TP_ROOT_MAX;  // too long to compare in the kernel: user space decides
      } else {
        slot.len = static_cast<uint32_t>(root.size());
        for (size_t c = 0; c < root.size(); ++c) slot.path[c] = root[c];
      }
    }
  }

  // The file at the path now (after the operation): dev, ino, type and birth time
  // cannot be read in the kernel here.
  static std::optional<struct statx> stat_now(const std::string& path) {
    struct statx st{};
    if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC,
                STATX_BASIC_STATS | STATX_BTIME, &st) != 0)
      return std::nullopt;
    return st;
  }

  // O_CREAT without O_EXCL also opens existing files: created by this call only if
  // the inode was born at about the time of the syscall. Without a birth time (gone
  // already, or a file system without one), the create the syscall asked for.
  static bool born_at(const std::optional<struct statx>& st, int64_t time_ns) {
    if (!st || !(st->stx_mask & STATX_BTIME)) return true;
    int64_t birth_ns = st->stx_btime.tv_sec * 1'000'000'000LL + st->stx_btime.tv_nsec;
    return birth_ns >= time_ns - kBirthSlackNs;
  }

  static void fill_from_stat(Event& event, const struct statx& st) {
    if (st.stx_mask & STATX_INO) {
      event.dev = makedev(st.stx_dev_major, st.stx_dev_minor);
      event.ino = st.stx_ino;
    }
    if (st.stx_mask & STATX_TYPE) {
      event.is_dir = S_ISDIR(st.stx_mode);
      if (event.new_mode) *event.new_mode |= st.stx_mode & S_IFMT;  // chmod gives permissions only
    }
  }

  // Whether finish() looks the path up (unless a later event of the batch removed it).
  static bool wants_lookup(const Event& event) {
    return !event.error && event.kind != EventKind::kDelete && event.kind != EventKind::kRmdir;
  }

  bool inside(const Event& event) const {
    return inside_roots(event.path, spec_.roots) || (event.old_path && inside_roots(*event.old_path, spec_.roots));
  }

  // A file renamed away later in its batch was not looked up for the events before the
  // rename (paths_removed_later), so its create, chmod or chown did not reach owners_.
  // It lives on under the new name: once that is looked up, its remembered mode and
  // owner are dropped (old values null, never stale). Followed through renames. Marks
  // the renames after which that happens; decided before the batch is finished, over
  // views of its paths (no copies).
  std::vector<bool> renamed_unseen_changes(const std::vector<bool>& removed_later) const {
    std::vector<bool> forget(batch_.size(), false);
    PathViewSet unseen(batch_.size());  // paths of files changed but not looked up
    for (size_t i = 0; i < batch_.size(); ++i) {
      const Event& event = batch_[i];
      if (!inside(event) || !wants_lookup(event)) continue;  // dropped or not looked up by finish()
      switch (event.kind) {
        case EventKind::kCreate:
        case EventKind::kMkdir:
        case EventKind::kSymlink:
        case EventKind::kChmod:
        case EventKind::kChown:
          if (removed_later[i]) unseen.insert(event.path);
          break;
        case EventKind::kRename:
          if (!event.old_path || !unseen.erase(*event.old_path)) break;
          if (removed_later[i])
            unseen.insert(event.path);
          else
            forget[i] = true;
          break;
        default:
          break;
      }
    }
    return forget;
  }

  // ppid, euid, egid, loginuid, sessionid cannot be read in a tracepoint under
  // lockdown. ppid, euid, egid: /proc/<pid>/status in one read, once per process per
  // batch (a burst of events from one process costs one read; the file stays open
  // while its process lives). loginuid and sessionid
  // (set at login, inherited): once per process, forgotten when it exits. exe comes
  // from exec records, cgroup from the kernel.
  void fill_from_proc(Event& event) {
    if (!event.pid) return;
    auto [it, inserted] = batch_procs_.try_emplace(*event.pid);
    if (inserted) {
      it->second = status_files_.read_credentials(*event.pid);
      if (it->second) {
        if (logins_.size() >= 65536 && !logins_.contains(*event.pid)) logins_.clear();
        auto [login, fresh] = logins_.try_emplace(*event.pid);
        if (fresh) login->second = procfs_.read_login(*event.pid);
        it->second->loginuid = login->second.loginuid;
        it->second->sessionid = login->second.sessionid;
      }
    }
    // uid, gid, comm and cgroup are already set from the kernel and stay as captured.
    if (it->second) fill_unknown_actor_fields(event, *it->second);
  }

  // `removed_later`: a later event of the batch removed the path (paths_removed_later):
  // the file there now, if any, is another one, so it is not looked up.
  // `forget_attrs`: a rename of a file changed unseen (renamed_unseen_changes).
  void finish(Event&& event, bool removed_later, bool forget_attrs, const EmitFn& emit) {
    if (kernel_) return finish_kernel_read(std::move(event), removed_later, forget_attrs, emit);
    if (event.pid) cwds_.relearn_if_stale(static_cast<uint32_t>(*event.pid));
    if (!inside(event)) return;
    std::optional<struct statx> st;
    if (wants_lookup(event) && !removed_later) {
      st = stat_now(event.path);
      if (event.kind == EventKind::kCreate && !born_at(st, event.time_ns)) return;
      if (st) {
        fill_from_stat(event, *st);
        owners_.track(event, *st);
      }
    }
    if (forget_attrs && st) owners_.forget(*st);
    if (event.kind == EventKind::kMkdir || event.kind == EventKind::kRmdir) event.is_dir = true;
    fill_from_proc(event);
    emit(std::move(event));
  }

  // Kernel-read mode: the path is exact (joined lexically), the actor complete; what a
  // path-based call did not read in the kernel (dev, ino, old mode/owner) is looked up
  // and tracked as in string mode. A create is exact (FMODE_CREATED): no birth check.
  void finish_kernel_read(Event&& event, bool removed_later, bool forget_attrs, const EmitFn& emit) {
    if (!inside(event)) return;
    std::optional<struct statx> st;
    bool from_file = event.dev.has_value();
    bool tracks = event.kind == EventKind::kCreate || event.kind == EventKind::kMkdir ||
                  event.kind == EventKind::kSymlink || event.kind == EventKind::kChmod ||
                  event.kind == EventKind::kChown;
    if (wants_lookup(event) && !removed_later && (!from_file || tracks)) {
      st = stat_now(event.path);
      if (st) {
        if (!from_file) fill_from_stat(event, *st);
        owners_.track(event, *st);
      }
    }
    if (forget_attrs && st) owners_.forget(*st);
    if (event.kind == EventKind::kMkdir || event.kind == EventKind::kRmdir) event.is_dir = true;
    emit(std::move(event));
  }

  WatchSpec spec_;
  bool kernel_ = false;
  fst_kread* kskel_ = nullptr;
  fst_tracepoint* skel_ = nullptr;
  PathTracker resolver_;
  ProcfsReader procfs_;
  ProcStatusFiles status_files_;
  InodeOwners owners_;
  std::unordered_map<int32_t, std::optional<ProcessInfo>> batch_procs_;
  std::unordered_map<int32_t, ProcessInfo> logins_;  // loginuid, sessionid by pid
  std::vector<Event> batch_;
  Floor floor_ = Floor::kNone;
  std::unique_ptr<RingConsumer> consumer_;
  CwdScopes cwds_;
  int parent_fd_ = -1;
};

}  // namespace
}  // namespace bpf

namespace bpf {

// Whether the kernel-read object loads here (never attached): what `auto` picks.
// Cached: loading it costs the verifier's time.
const Availability& probe_kernel_read_mode() {
  static const Availability result = [] {
    Availability a;
    if (Availability reads = probe_kernel_reads(); !reads.usable) {
      a.detail = fmt::format("bpf_probe_read_kernel is refused: {}", reads.detail);
      return a;
    }
    if (Status s = prepare_bpf_runtime(); !s) {
      a.detail = s.error().message;
      return a;
    }
    fst_kread* skel = fst_kread__open();
    if (!skel) {
      a.detail = fmt::format("cannot open the kernel-read BPF object: {}", std::strerror(errno));
      return a;
    }
    // One small program that reads kernel memory (the fd table, an inode: CO-RE and
    // bpf_probe_read_kernel) stands for all: the verifier refuses the helper under
    // lockdown=confidentiality.
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel->obj) bpf_program__set_autoload(prog, prog == skel->progs.kr_enter_fchmod);
    // Every op wanted: with none, the verifier proves the reads unreachable and drops them.
    skel->rodata->fst_ops_wanted = ~0U;
    int err = fst_kread__load(skel);
    fst_kread__destroy(skel);
    if (err != 0) {
      a.detail = fmt::format("its programs do not load ({}): kernel reads from tracepoint programs are refused "
                             "(lockdown=confidentiality refuses bpf_probe_read_kernel)",
                             std::strerror(-err));
      return a;
    }
    a.usable = true;
    a.detail = "kernel reads (bpf_probe_read_kernel, CO-RE) load in tracepoint programs";
    return a;
  }();
  return result;
}

}  // namespace bpf

Availability probe_bpf_tracepoint() {
  Availability a = bpf::probe_syscall_tracepoints();
  if (!a.usable) return a;
  const Availability& kernel = bpf::probe_kernel_read_mode();
  a.detail += kernel.usable ? fmt::format("; --tracepoint-mode auto uses kernel-read mode ({})", kernel.detail)
                            : fmt::format("; --tracepoint-mode auto uses string mode: kernel-read mode {} (string "
                                          "mode: paths rebuilt from syscall strings, actor ids from /proc)",
                                          kernel.detail);
  return a;
}

std::unique_ptr<Backend> create_bpf_tracepoint_backend() { return std::make_unique<bpf::TracepointBackend>(); }

}  // namespace fstrail
