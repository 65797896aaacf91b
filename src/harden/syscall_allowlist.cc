// The seccomp allow-list of watch, record and guard after start-up: every system call they
// make, observed with `strace -f -c` over the host tests of each backend, the SQLite and
// PostgreSQL stores, the spool, remediation, signals and exit (docs/security.md, "How the
// list was built"). A call missing here kills the process with SIGSYS: run the same command
// with `--sandbox log` to have each refused call named on stderr, then add it below with the
// reason.
//
// Default action: kill the whole process, not EPERM. A monitor that goes on after a refused
// call would run in a state nobody tested (a failed write or mark seen as a transient error,
// events silently missing); a dead one is noticed (exit status 159, "Bad system call") and
// restarted by its supervisor, and an attacker who took over the process cannot probe the
// filter call by call.
#include <linux/sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "harden/sandbox.h"

namespace fstrail::harden {
namespace {

// Every command, every backend: memory, files, threads, time, signals, exit.
constexpr std::string_view kCommon[] = {
    // memory (malloc, thread stacks, ring buffers and SQLite's mmap)
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore",
    // files: the sinks, the store, the spool, /proc, the trees
    "read", "readv", "pread64", "write", "writev", "pwrite64", "lseek", "open", "openat", "openat2", "close",
    "close_range", "stat", "lstat", "fstat", "newfstatat", "statx", "statfs", "fstatfs", "access",
    "faccessat", "faccessat2", "readlink", "readlinkat", "getdents64", "fcntl", "dup", "dup2", "dup3",
    "fsync", "fdatasync", "ftruncate", "fallocate", "fadvise64", "flock", "rename", "renameat", "renameat2",
    "unlink", "unlinkat", "mkdir", "mkdirat", "rmdir", "fchmod", "fchown", "getcwd",
    // guard remediation: fchownat(fd, "", AT_EMPTY_PATH), chmod("/proc/self/fd/N")
    "fchownat", "chmod", "fchmodat", "fchmodat2", "umask", "ioctl", "pipe2", "eventfd2",
    // waiting: the event loop, the writer threads' queue
    "poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "futex",
    "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday", "sched_yield",
    // threads (clone is allowed for threads only, below), process identity
    "set_robust_list", "rseq", "gettid", "getpid", "getppid", "getuid", "geteuid", "getgid", "getegid",
    "getgroups", "getrandom", "sched_getaffinity", "prlimit64", "getrusage", "uname", "sysinfo", "membarrier",
    "capget",
    // signals (SIGINT/SIGTERM handlers; abort on a failed assertion)
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "restart_syscall",
    // network: PostgreSQL (libpq), name resolution (netlink for getaddrinfo's AI_ADDRCONFIG)
    "connect", "sendto", "recvfrom", "sendmsg", "recvmsg", "setsockopt", "getsockopt", "getsockname",
    "getpeername", "shutdown", "bind",
    "sendmmsg",  // glibc's resolver sends its A and AAAA queries with one sendmmsg
    // exit
    "exit", "exit_group"};

// The backends' own calls after start-up (adding roots and marks, reading events).
constexpr std::string_view kFanotify[] = {"fanotify_mark", "open_by_handle_at", "name_to_handle_at",
                                          "pidfd_open", "pidfd_send_signal"};
constexpr std::string_view kInotify[] = {"inotify_add_watch", "inotify_rm_watch"};
// Map lookups and updates (roots added at run time, enforcement), the ring buffer.
// perf_event_open: libbpf's fallbacks for attachments refreshed at run time.
constexpr std::string_view kBpf[] = {"bpf", "perf_event_open", "pidfd_open"};

std::array<const char*, 512> g_names{};  // syscall number → name, for the kLog handler

void on_refused_syscall(int, siginfo_t* info, void* context) {
  int nr = info->si_syscall;
  const char* name = nr >= 0 && static_cast<size_t>(nr) < g_names.size() && g_names[nr] ? g_names[nr] : "?";
  char line[160];
  int n = std::snprintf(line, sizeof line,
                        "fstrail: sandbox: refused system call %d (%s); add it to "
                        "src/harden/syscall_allowlist.cc\n",
                        nr, name);
  if (n > 0) [[maybe_unused]]
    auto w = ::write(STDERR_FILENO, line, static_cast<size_t>(n));
  auto* uc = static_cast<ucontext_t*>(context);
#if defined(__x86_64__)
  uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[0] = static_cast<unsigned long long>(-ENOSYS);
#else
  (void)uc;
#endif
}

Status install_log_handler() {
  for (size_t nr = 0; nr < g_names.size(); ++nr)
    g_names[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, static_cast<int>(nr));  // kept for life
  struct sigaction sa {};
  sa.sa_sigaction = on_refused_syscall;
  sa.sa_flags = SA_SIGINFO;
  if (::sigaction(SIGSYS, &sa, nullptr) != 0) return Error::from_errno("sandbox: sigaction SIGSYS");
  return Ok{};
}

Status add_rule(scmp_filter_ctx ctx, std::string_view name) {
  int nr = seccomp_syscall_resolve_name(std::string(name).c_str());
  if (nr == __NR_SCMP_ERROR) return Ok{};  // not a system call on this architecture (e.g. open on arm64)
  if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0); rc != 0)
    return Error{fmt::format("sandbox: seccomp_rule_add {}: {}", name, std::strerror(-rc)), -rc};
  return Ok{};
}

// Threads yes, new processes no: clone only with CLONE_THREAD; clone3 (whose flags a filter
// cannot read) answers ENOSYS, and glibc falls back to clone. Sockets of the families libpq
// and the resolver use.
Status add_argument_rules(scmp_filter_ctx ctx) {
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                            SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  for (scmp_datum_t family : {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK})
    if (rc == 0)
      rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, family));
  if (rc != 0) return Error{fmt::format("sandbox: seccomp_rule_add: {}", std::strerror(-rc)), -rc};
  return Ok{};
}

}  // namespace

std::vector<std::string_view> allowed_syscalls(std::string_view backend) {
  std::vector<std::string_view> names(std::begin(kCommon), std::end(kCommon));
  if (backend == "fanotify") names.insert(names.end(), std::begin(kFanotify), std::end(kFanotify));
  if (backend == "inotify") names.insert(names.end(), std::begin(kInotify), std::end(kInotify));
  if (backend.starts_with("bpf-")) names.insert(names.end(), std::begin(kBpf), std::end(kBpf));
  return names;
}

Status install_syscall_filter(std::string_view backend, SandboxMode mode) {
  uint32_t refuse = mode == SandboxMode::kLog ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS;
  std::unique_ptr<void, void (*)(scmp_filter_ctx)> ctx(seccomp_init(refuse), seccomp_release);
  if (!ctx) return Error{"sandbox: seccomp_init failed"};
  // Every thread gets the filter, including threads started before it.
  if (int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1); rc != 0)
    return Error{fmt::format("sandbox: seccomp thread synchronisation: {}", std::strerror(-rc)), -rc};
  for (std::string_view name : allowed_syscalls(backend))
    if (Status s = add_rule(ctx.get(), name); !s) return s;
  if (Status s = add_argument_rules(ctx.get()); !s) return s;
  if (mode == SandboxMode::kLog)
    if (Status s = install_log_handler(); !s) return s;
  if (int rc = seccomp_load(ctx.get()); rc != 0)
    return Error{fmt::format("sandbox: cannot install the seccomp filter: {}", std::strerror(-rc)), -rc};
  return Ok{};
}

}  // namespace fstrail::harden
