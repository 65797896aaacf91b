#include "backend/bpf/common/bpf_probes.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "backend/bpf/common/bpf_runtime.h"

namespace fstrail::bpf {
namespace {

// r0 = 0; exit: the smallest program every type accepts.
constexpr bpf_insn kReturnZero[] = {
    {.code = 0xb7 /* BPF_ALU64 | BPF_MOV | BPF_K */, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    {.code = 0x95 /* BPF_JMP | BPF_EXIT */, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
};

// Returns 0 when a program of that type loads, else the errno; `detail` says which step failed.
int try_load(bpf_prog_type type, bpf_attach_type attach, const char* btf_function, std::string& detail) {
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  if (btf_function) {
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) {
      detail = "BTF absent: /sys/kernel/btf/vmlinux cannot be read (kernel built without CONFIG_DEBUG_INFO_BTF)";
      return errno ? errno : ENOENT;
    }
    int id = btf__find_by_name_kind(vmlinux, btf_function, BTF_KIND_FUNC);
    btf__free(vmlinux);
    if (id < 0) {
      detail = fmt::format("the kernel's BTF has no function {} to attach to", btf_function);
      return ENOENT;
    }
    opts.attach_btf_id = static_cast<__u32>(id);
    opts.expected_attach_type = attach;
  }
  int fd = bpf_prog_load(type, "fstrail_probe", "GPL", kReturnZero, 2, &opts);
  if (fd < 0) return -fd;
  ::close(fd);
  return 0;
}

Availability probe_program(std::string_view type_name, bpf_prog_type type, bpf_attach_type attach,
                           const char* btf_function) {
  const KernelFeatures& kernel = host_kernel();
  if (!kernel.is_root()) {
    return {false, "needs root (eBPF needs CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN): run fstrail with sudo, or use "
                   "--backend inotify as any user"};
  }
  if (btf_function && !kernel.has_btf())
    return {false, "BTF absent: /sys/kernel/btf/vmlinux missing (kernel built without CONFIG_DEBUG_INFO_BTF)"};
  if (Status s = prepare_bpf_runtime(); !s) return {false, s.error().message};
  std::string detail;
  int err = try_load(type, attach, btf_function, detail);
  if (err == 0) return {true, ""};
  if (!detail.empty()) return {false, detail};
  return {false, explain_load_failure(type_name, err, kernel)};
}

std::string lockdown_note(const KernelFeatures& kernel) {
  auto mode = kernel.lockdown();
  return mode ? fmt::format("kernel lockdown={}", *mode) : std::string("lockdown mode unknown");
}

}  // namespace

std::string explain_load_failure(std::string_view program_type, int err, const KernelFeatures& kernel) {
  std::string why;
  if (err == EPERM || err == EACCES) {
    auto mode = kernel.lockdown();
    if (!kernel.is_root())
      why = "not root";
    else if (mode && *mode != "none")
      why = fmt::format("kernel lockdown={}: this kernel refuses {} programs, even to root", *mode, program_type);
    else
      why = fmt::format("{}: the kernel refuses it to this process (missing CAP_BPF/CAP_PERFMON, or "
                        "kernel.unprivileged_bpf_disabled, or a security module)", lockdown_note(kernel));
  } else if (err == EINVAL || err == EOPNOTSUPP || err == 524 /* ENOTSUPP */) {
    why = fmt::format("this kernel does not support {} programs ({})", program_type, lockdown_note(kernel));
  } else {
    why = lockdown_note(kernel);
  }
  // Acronyms read letter by letter ("an lsm", "an fentry"); "a tracepoint".
  std::string_view article = program_type == "tracepoint" ? "a" : "an";
  return fmt::format("loading {} {} program failed: {} ({})", article, program_type, std::strerror(err), why);
}

Availability probe_lsm_programs() {
  static const Availability cached = [] {
    Availability a = probe_program("lsm", BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "bpf_lsm_file_open");
    if (!a.usable) return a;
    const KernelFeatures& kernel = host_kernel();
    if (!kernel.bpf_lsm_active())
      return Availability{false, fmt::format("lsm programs load but 'bpf' is not an active LSM ({}): they "
                                             "would never run; boot with lsm=...,bpf",
                                             kernel.active_lsms().value_or("list unreadable"))};
    return Availability{true, fmt::format("lsm programs load; bpf LSM active; {}", lockdown_note(kernel))};
  }();
  return cached;
}

Availability probe_fentry_programs() {
  static const Availability cached = [] {
    Availability a = probe_program("fentry", BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, "vfs_mkdir");
    if (a.usable) a.detail = fmt::format("fentry programs load; {}", lockdown_note(host_kernel()));
    return a;
  }();
  return cached;
}

Availability probe_syscall_tracepoints() {
  static const Availability cached = [] {
    Availability a = probe_program("tracepoint", BPF_PROG_TYPE_TRACEPOINT, static_cast<bpf_attach_type>(0), nullptr);
    if (!a.usable) return a;
    if (!std::filesystem::exists("/sys/kernel/tracing/events/syscalls/sys_enter_openat"))
      return Availability{false, "no syscall tracepoints in /sys/kernel/tracing/events/syscalls "
                                 "(kernel built without CONFIG_FTRACE_SYSCALLS)"};
    return Availability{true, fmt::format("syscall tracepoints load; {}", lockdown_note(host_kernel()))};
  }();
  return cached;
}

}  // namespace fstrail::bpf
