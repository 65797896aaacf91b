#include "backend/bpf/tracepoint/tracepoint_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
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

std::optional<std::string> readlink_string(const std::string& link) {
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

// sched_process_fork's child_pid offset, from tracefs (the layout differs across kernels).
uint32_t fork_child_pid_offset() {
  std::ifstream format("/sys/kernel/tracing/events/sched/sched_process_fork/format");
  std::string line;
  while (std::getline(format, line)) {
    if (line.find(" child_pid;") == std::string::npos) continue;
    auto at = line.find("offset:");
    if (at != std::string::npos) return static_cast<uint32_t>(std::stoul(line.substr(at + 7)));
  }
  return 0;  // unknown layout: the program copies nothing at fork
}

// x86-64 syscall numbers of the syscalls with sys_enter_/sys_exit_ programs, by the
// name their tracepoints use. Newer than this libc's headers: numbers from the kernel.
std::optional<int> syscall_nr(std::string_view name) {
  static const std::unordered_map<std::string_view, int> numbers = {
      {"open", SYS_open}, {"openat", SYS_openat}, {"openat2", SYS_openat2}, {"creat", SYS_creat},
      {"mkdir", SYS_mkdir}, {"mkdirat", SYS_mkdirat}, {"unlink", SYS_unlink}, {"unlinkat", SYS_unlinkat},
      {"rmdir", SYS_rmdir}, {"truncate", SYS_truncate}, {"ftruncate", SYS_ftruncate}, {"symlink", SYS_symlink},
      {"symlinkat", SYS_symlinkat}, {"setxattr", SYS_setxattr}, {"lsetxattr", SYS_lsetxattr},
      {"fsetxattr", SYS_fsetxattr}, {"removexattr", SYS_removexattr}, {"lremovexattr", SYS_lremovexattr},
      {"fremovexattr", SYS_fremovexattr}, {"setxattrat", 463}, {"removexattrat", 466}, {"chmod", SYS_chmod},
      {"fchmod", SYS_fchmod}, {"fchmodat", SYS_fchmodat}, {"fchmodat2", 452}, {"chown", SYS_chown},
      {"lchown", SYS_lchown}, {"fchown", SYS_fchown}, {"fchownat", SYS_fchownat}, {"rename", SYS_rename},
      {"renameat", SYS_renameat}, {"renameat2", SYS_renameat2}, {"link", SYS_link}, {"linkat", SYS_linkat},
      {"write", SYS_write}, {"pwrite64", SYS_pwrite64}, {"writev", SYS_writev}, {"pwritev", SYS_pwritev},
      {"pwritev2", SYS_pwritev2}, {"copy_file_range", SYS_copy_file_range}, {"sendfile64", SYS_sendfile},
      {"close", SYS_close}, {"dup", SYS_dup}, {"dup2", SYS_dup2}, {"dup3", SYS_dup3}, {"fcntl", SYS_fcntl},
      {"chdir", SYS_chdir}, {"fchdir", SYS_fchdir},
  };
  auto it = numbers.find(name);
  return it == numbers.end() ? std::nullopt : std::optional<int>(it->second);
}

struct DispatchedProgram {
  bpf_program* prog;
  bool at_exit;
  int nr;
};

// Syscall programs run through the raw_syscalls dispatchers, not attached one by
// one (see tracepoint.bpf.c). Programs for syscalls this kernel lacks (fchmodat2
// before 6.6, setxattrat before 6.13: no tracepoint) are not loaded at all.
std::vector<DispatchedProgram> prepare_programs(bpf_object* obj) {
  std::vector<DispatchedProgram> dispatched;
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    std::string_view section = bpf_program__section_name(prog);
    constexpr std::string_view kPrefix = "tracepoint/";
    if (section.substr(0, kPrefix.size()) != kPrefix) continue;
    std::string event(section.substr(kPrefix.size()));
    if (!std::filesystem::exists("/sys/kernel/tracing/events/" + event)) {
      bpf_program__set_autoload(prog, false);
      continue;
    }
    for (auto [prefix, at_exit] : {std::pair{std::string_view("syscalls/sys_enter_"), false},
                                   std::pair{std::string_view("syscalls/sys_exit_"), true}}) {
      std::string_view name(event);
      if (name.substr(0, prefix.size()) != prefix) continue;
      auto nr = syscall_nr(name.substr(prefix.size()));
      if (!nr || *nr >= FST_TP_MAX_SYSCALL_NR) continue;  // attached on its own (execve: shared code)
      bpf_program__set_autoattach(prog, false);
      dispatched.push_back({prog, at_exit, *nr});
    }
  }
  return dispatched;
}

// Kernel-read mode: one exit program serves these syscalls (kread.bpf.c kr_exit),
// another the dups (kr_exit_dup); their sections name one syscall each.
constexpr std::string_view kKernelReadExits[] = {
    "open", "openat", "openat2", "creat", "mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "truncate",
    "ftruncate", "symlink", "symlinkat", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
    "fremovexattr", "setxattrat", "removexattrat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
    "lchown", "fchown", "fchownat", "rename", "renameat", "renameat2", "link", "linkat"};
constexpr std::string_view kKernelReadDupExits[] = {"dup", "dup2", "dup3", "fcntl"};

void add_shared_exits(std::vector<DispatchedProgram>& dispatched, bpf_program* exit, bpf_program* dup_exit) {
  for (auto name : kKernelReadExits)
    if (auto nr = syscall_nr(name); nr && *nr < FST_TP_MAX_SYSCALL_NR) dispatched.push_back({exit, true, *nr});
  for (auto name : kKernelReadDupExits)
    if (auto nr = syscall_nr(name); nr && *nr < FST_TP_MAX_SYSCALL_NR) dispatched.push_back({dup_exit, true, *nr});
}

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
    for (const auto& d : dispatched) {
      int table = bpf_map__fd(d.at_exit ? skel_->maps.fst_exit_by_nr : skel_->maps.fst_enter_by_nr);
      uint32_t key = static_cast<uint32_t>(d.nr);
      int prog_fd = bpf_program__fd(d.prog);
      if (bpf_map_update_elem(table, &key, &prog_fd, BPF_ANY) != 0)
        return Error::from_errno(fmt::format("cannot route syscall {} to {}", d.nr, bpf_program__name(d.prog)));
    }
    if (int err = fst_tracepoint__attach(skel_); err != 0)
      return Error{fmt::format("attaching the syscall tracepoints failed: {}", std::strerror(-err)), -err};
    epoch_fd_ = bpf_map__fd(skel_->maps.fst_cwd_epoch);
    state_fd_ = bpf_map__fd(skel_->maps.fst_cwd_state);
    unknown_cwd_fd_ = bpf_map__fd(skel_->maps.fst_cwd_unknown);
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
        learned_epoch_.erase(static_cast<uint32_t>(d.pid));
        logins_.erase(d.pid);
        status_files_.forget(d.pid);
      }
      resolver_.apply(d);
    });
    if (Status s = consumer_->open(bpf_map__fd(skel_->maps.events)); !s) return s;
    // Attached first, seeded second: a chdir in between bumps the epoch and wins.
    seed_cwd_states();
    scan_roots();
    return Ok{};
  }

  Status poll(int timeout_ms, const EmitFn& emit) override {
    batch_procs_.clear();
    batch_relearned_.clear();
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
    learn_queued_cwds();
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
    auto listed = [](const std::vector<std::string>& list, const std::string& dir) {
      return std::find(list.begin(), list.end(), dir) != list.end();
    };
    std::vector<std::string> added;
    for (const auto& root : real)
      if (!listed(old, root)) added.push_back(root);
    if (Status s = fill_kernel_roots(added); !s) {
      spec_.roots = old;
      return s;
    }
    int roots_fd = bpf_map__fd(kskel_->maps.fst_roots);
    for (const auto& root : old) {
      if (listed(real, root)) continue;
      if (auto key = root_key_of(root)) bpf_map_delete_elem(roots_fd, &*key);
    }
    scan_roots(added);
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
    // common.bpf.h's exec tracking sends names as passed; here the kernel sends the file.
    bpf_program__set_autoload(kskel_->progs.fst_enter_execve, false);
    bpf_program__set_autoload(kskel_->progs.fst_enter_execveat, false);
    bpf_program__set_autoload(kskel_->progs.fst_process_exec, false);
    auto dispatched = prepare_programs(kskel_->obj);
    add_shared_exits(dispatched, kskel_->progs.kr_exit, kskel_->progs.kr_exit_dup);
    if (int err = fst_kread__load(kskel_); err != 0)
      return Error{fmt::format("loading the kernel-read programs failed: {} (kernel reads refused: lockdown="
                               "confidentiality?)", std::strerror(-err)), -err};
    for (const auto& d : dispatched) {
      int table = bpf_map__fd(d.at_exit ? kskel_->maps.fst_exit_by_nr : kskel_->maps.fst_enter_by_nr);
      uint32_t key = static_cast<uint32_t>(d.nr);
      int prog_fd = bpf_program__fd(d.prog);
      if (bpf_map_update_elem(table, &key, &prog_fd, BPF_ANY) != 0)
        return Error::from_errno(fmt::format("cannot route syscall {} to {}", d.nr, bpf_program__name(d.prog)));
    }
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
    scan_roots();
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

  // Tells the kernel whether `tgid`'s cwd is inside a watched tree. The epoch read
  // before and after /proc brackets the look: a chdir in between leaves it unset.
  void learn_cwd(uint32_t tgid) {
    uint64_t before = 0, after = 0;
    if (bpf_map_lookup_elem(epoch_fd_, &tgid, &before) != 0) before = 0;
    auto cwd = readlink_string(fmt::format("/proc/{}/cwd", tgid));
    if (!cwd || cwd->empty() || cwd->front() != '/') return;
    if (bpf_map_lookup_elem(epoch_fd_, &tgid, &after) != 0) after = 0;
    if (before != after) return;
    std::string dir = lexically_normal_path(*cwd);
    fst_tp_cwd_state state{};
    state.epoch = before;
    state.scope = inside_roots(dir, spec_.roots) ? FST_SCOPE_INSIDE
                  : above_a_root(dir, spec_.roots) ? FST_SCOPE_ANCESTOR
                                                   : FST_SCOPE_OUTSIDE;
    bpf_map_update_elem(state_fd_, &tgid, &state, BPF_ANY);
    learned_epoch_[tgid] = before;
    resolver_.remember_cwd(static_cast<pid_t>(tgid), std::move(dir));
  }

  void seed_cwd_states() {
    DIR* proc = ::opendir("/proc");
    if (!proc) return;
    while (dirent* entry = ::readdir(proc)) {
      char* end = nullptr;
      unsigned long pid = std::strtoul(entry->d_name, &end, 10);
      if (end && *end == '\0' && pid > 0) learn_cwd(static_cast<uint32_t>(pid));
    }
    ::closedir(proc);
  }

  void learn_queued_cwds() {
    uint32_t tgid = 0;
    while (bpf_map_lookup_and_delete_elem(unknown_cwd_fd_, nullptr, &tgid) == 0) learn_cwd(tgid);
  }

  // An event's process: if the kernel could not place its cwd, place it now, so
  // its next relative paths are filtered in the kernel.
  void relearn_if_stale(uint32_t tgid) {
    if (!batch_relearned_.insert(tgid).second) return;
    uint64_t epoch = 0;
    if (bpf_map_lookup_elem(epoch_fd_, &tgid, &epoch) != 0) epoch = 0;
    auto it = learned_epoch_.find(tgid);
    if (it != learned_epoch_.end() && it->second == epoch) return;
    if (learned_epoch_.size() > 65536) learned_epoch_.clear();
    learn_cwd(tgid);
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

  // Old mode and owner are not in the syscall: they come from the last state seen,
  // kept per inode from a scan at start and then from every event in order. The
  // state after a chmod/chown is the syscall's arguments, not the file now, which may
  // have changed again since.
  struct Owner {
    uint32_t mode, uid, gid;
  };
  struct InodeKey {
    uint64_t dev, ino;
    bool operator==(const InodeKey&) const = default;
  };
  struct InodeKeyHash {
    size_t operator()(const InodeKey& k) const { return k.ino * 0x9E3779B97F4A7C15ULL ^ k.dev; }
  };

  void remember_attrs(uint64_t dev, uint64_t ino, Owner owner) {
    if (attrs_.size() >= 1'000'000 && !attrs_.contains({dev, ino})) attrs_.clear();
    attrs_[{dev, ino}] = owner;
  }

  void track_attributes(Event& event, const struct statx& x) {
    InodeKey key{makedev(x.stx_dev_major, x.stx_dev_minor), x.stx_ino};
    switch (event.kind) {
      case EventKind::kCreate:
      case EventKind::kMkdir:
      case EventKind::kSymlink:
        remember_attrs(key.dev, key.ino, {x.stx_mode, x.stx_uid, x.stx_gid});
        break;
      case EventKind::kChmod:
      case EventKind::kChown: {
        auto it = attrs_.find(key);
        if (it == attrs_.end()) break;  // never seen: old values stay null
        Owner& owner = it->second;
        if (event.kind == EventKind::kChmod && event.new_mode) {
          // A create's state is read when its event is handled, maybe after this very
          // chmod: a remembered mode equal to the new one may be this chmod's own, so
          // the old mode is then unknown.
          if (!event.old_mode && (owner.mode & 07777) != (*event.new_mode & 07777)) event.old_mode = owner.mode;
          owner.mode = (owner.mode & S_IFMT) | (*event.new_mode & 07777);
        } else if (event.kind == EventKind::kChown) {
          if (!event.old_uid) {  // the kernel's, when it read them (fchown)
            event.old_uid = owner.uid;
            event.old_gid = owner.gid;
          }
          if (event.new_uid) owner.uid = *event.new_uid;
          if (event.new_gid) owner.gid = *event.new_gid;
        }
        break;
      }
      default:
        break;
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
  // rename (paths_removed_later), so its create, chmod or chown did not reach attrs_.
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

  // Bounded, so watching a huge tree (or "/") does not stall the start: beyond the
  // bound, old values of files not seen since start are null.
  void scan_roots() { scan_roots(spec_.roots); }
  void scan_roots(const std::vector<std::string>& roots) {
    constexpr size_t kMaxScanned = 200'000;
    size_t scanned = 0;
    auto remember = [&](const struct stat& st) {
      remember_attrs(st.st_dev, st.st_ino, {st.st_mode, st.st_uid, st.st_gid});
      return ++scanned < kMaxScanned;
    };
    for (const auto& root : roots) {
      struct stat st{};
      if (::lstat(root.c_str(), &st) == 0) remember(st);
      walk_tree(root, [&](const std::string&, const struct stat& entry) { return remember(entry); });
    }
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
    if (event.pid) relearn_if_stale(static_cast<uint32_t>(*event.pid));
    if (!inside(event)) return;
    std::optional<struct statx> st;
    if (wants_lookup(event) && !removed_later) {
      st = stat_now(event.path);
      if (event.kind == EventKind::kCreate && !born_at(st, event.time_ns)) return;
      if (st) {
        fill_from_stat(event, *st);
        track_attributes(event, *st);
      }
    }
    if (forget_attrs && st) attrs_.erase({makedev(st->stx_dev_major, st->stx_dev_minor), st->stx_ino});
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
        track_attributes(event, *st);
      }
    }
    if (forget_attrs && st) attrs_.erase({makedev(st->stx_dev_major, st->stx_dev_minor), st->stx_ino});
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
  std::unordered_map<InodeKey, Owner, InodeKeyHash> attrs_;
  std::unordered_map<int32_t, std::optional<ProcessInfo>> batch_procs_;
  std::unordered_map<int32_t, ProcessInfo> logins_;  // loginuid, sessionid by pid
  std::vector<Event> batch_;
  Floor floor_ = Floor::kNone;
  std::unordered_set<uint32_t> batch_relearned_;
  std::unique_ptr<RingConsumer> consumer_;
  int epoch_fd_ = -1, state_fd_ = -1, unknown_cwd_fd_ = -1, parent_fd_ = -1;
  std::unordered_map<uint32_t, uint64_t> learned_epoch_;
};

}  // namespace
}  // namespace bpf

namespace bpf {

// Whether the kernel-read object loads here (never attached): what `auto` picks.
// Cached: loading it costs the verifier's time.
const Availability& probe_kernel_read_mode() {
  static const Availability result = [] {
    Availability a;
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
