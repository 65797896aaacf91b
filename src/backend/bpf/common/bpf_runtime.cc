#include "backend/bpf/common/bpf_runtime.h"

#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statfs.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include <bpf/libbpf.h>
#include <fmt/format.h>

namespace fstrail::bpf {
namespace {

constexpr long kTracefsMagic = 0x74726163;
constexpr long kBpffsMagic = 0xcafe4a11;

bool verbose_libbpf = false;

// Quiet unless verbose, warnings included: feature probes fail on purpose and libbpf
// would print each failure; our own errors carry the cause instead.
int print_libbpf(enum libbpf_print_level /*level*/, const char* format, va_list args) {
  if (!verbose_libbpf) return 0;
  std::fputs("fstrail: libbpf: ", stderr);
  return std::vfprintf(stderr, format, args);
}

bool is_mounted(const char* dir, long magic) {
  struct statfs st{};
  return ::statfs(dir, &st) == 0 && static_cast<long>(st.f_type) == magic;
}

Status ensure_mounted(const char* dir, const char* type, long magic) {
  if (is_mounted(dir, magic)) return Ok{};
  if (::mount(type, dir, type, 0, nullptr) != 0)
    return Error::from_errno(fmt::format("{} is not mounted on {} and mounting it failed (run as root, or "
                                         "`mount -t {} {} {}`)", type, dir, type, type, dir));
  return Ok{};
}

}  // namespace

void set_libbpf_verbose(bool verbose) {
  verbose_libbpf = verbose;
  libbpf_set_print(print_libbpf);
}

Status prepare_bpf_runtime() {
  static bool prepared = false;
  if (prepared) return Ok{};
  const char* env = std::getenv("FSTRAIL_BPF_VERBOSE");
  set_libbpf_verbose(verbose_libbpf || (env && *env && *env != '0'));
  // Tracepoint programs attach through tracefs; bpffs is where pinned maps would live.
  if (Status s = ensure_mounted("/sys/kernel/tracing", "tracefs", kTracefsMagic); !s) return s;
  (void)ensure_mounted("/sys/fs/bpf", "bpf", kBpffsMagic);  // nothing here pins yet: best effort
  // Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; later ones ignore it.
  rlimit memlock{RLIM_INFINITY, RLIM_INFINITY};
  rlimit current{};
  if (::getrlimit(RLIMIT_MEMLOCK, &current) == 0 && current.rlim_cur != RLIM_INFINITY)
    (void)::setrlimit(RLIMIT_MEMLOCK, &memlock);
  prepared = true;
  return Ok{};
}

}  // namespace fstrail::bpf
