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

// r1 = fp - 8; r2 = 8; r3 = 0; call bpf_probe_read_kernel; r0 = 0; exit. What every
// program of bpf-lsm and bpf-fentry does (CO-RE reads of dentries, files, the task), and
// what lockdown=confidentiality takes away: the verifier then does not know the helper.
constexpr bpf_insn kReadKernel[] = {
    {.code = 0xbf /* BPF_ALU64 | BPF_MOV | BPF_X */, .dst_reg = 1, .src_reg = 10, .off = 0, .imm = 0},
    {.code = 0x07 /* BPF_ALU64 | BPF_ADD | BPF_K */, .dst_reg = 1, .src_reg = 0, .off = 0, .imm = -8},
    {.code = 0xb7 /* BPF_ALU64 | BPF_MOV | BPF_K */, .dst_reg = 2, .src_reg = 0, .off = 0, .imm = 8},
    {.code = 0xb7 /* BPF_ALU64 | BPF_MOV | BPF_K */, .dst_reg = 3, .src_reg = 0, .off = 0, .imm = 0},
    {.code = 0x85 /* BPF_JMP | BPF_CALL */, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = BPF_FUNC_probe_read_kernel},
    {.code = 0xb7 /* BPF_ALU64 | BPF_MOV | BPF_K */, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
    {.code = 0x95 /* BPF_JMP | BPF_EXIT */, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
};

std::string lockdown_note(const KernelFeatures& kernel) {
  auto mode = kernel.lockdown();
  return mode ? fmt::format("kernel lockdown={}", *mode) : std::string("lockdown mode unknown");
}

// Whether tracefs has the tracepoints (their ids are what a tracepoint program attaches
// to), and why not.
Availability tracefs_events() {
  if (std::filesystem::exists("/sys/kernel/tracing/events/syscalls/sys_enter_openat")) return {true, ""};
  if (host_kernel().lockdown() == "confidentiality")
    return {false, "tracefs is empty: with lockdown=confidentiality from boot the kernel disables tracing "
                   "(\"Tracing disabled due to lockdown\"), so no tracepoint can be attached"};
  if (!std::filesystem::exists("/sys/kernel/tracing/events"))
    return {false, "tracefs is not mounted at /sys/kernel/tracing (mount -t tracefs nodev /sys/kernel/tracing)"};
  return {false, "no syscall tracepoints in /sys/kernel/tracing/events/syscalls (kernel built without "
                 "CONFIG_FTRACE_SYSCALLS)"};
}

// A program type that loads may still be useless to fstrail: its programs read kernel
// memory. Not usable, with the reason, when the kernel refuses that.
Availability with_kernel_reads(Availability a, std::string_view program_type) {
  if (!a.usable) return a;
  Availability reads = probe_kernel_reads();
  if (reads.usable) return a;
  return {false, fmt::format("{} programs load, but fstrail's read kernel memory (bpf_probe_read_kernel, CO-RE "
                             "reads of dentries, files and the task) and {}",
                             program_type, reads.detail)};
}

}  // namespace

Availability probe_kernel_reads() {
  static const Availability cached = [] {
    const KernelFeatures& kernel = host_kernel();
    if (!kernel.is_root()) return Availability{false, "needs root"};
    if (Status s = prepare_bpf_runtime(); !s) return Availability{false, s.error().message};
    int fd = bpf_prog_load(BPF_PROG_TYPE_TRACEPOINT, "fstrail_kread", "GPL", kReadKernel,
                           sizeof kReadKernel / sizeof kReadKernel[0], nullptr);
    if (fd >= 0) {
      ::close(fd);
      return Availability{true, "bpf_probe_read_kernel loads"};
    }
    int err = -fd;
    if (kernel.lockdown() == "confidentiality")
      return Availability{false, fmt::format("kernel lockdown=confidentiality refuses it (a program calling "
                                             "bpf_probe_read_kernel does not load: {})",
                                             std::strerror(err))};
    return Availability{false, fmt::format("this kernel refuses it (a program calling bpf_probe_read_kernel does "
                                           "not load: {}; {})",
                                           std::strerror(err), lockdown_note(kernel))};
  }();
  return cached;
}

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
    return with_kernel_reads({true, fmt::format("lsm programs load; bpf LSM active; {}", lockdown_note(kernel))},
                             "lsm");
  }();
  return cached;
}

Availability probe_fentry_programs() {
  static const Availability cached = [] {
    Availability a = probe_program("fentry", BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, "vfs_mkdir");
    if (a.usable) a.detail = fmt::format("fentry programs load; {}", lockdown_note(host_kernel()));
    return with_kernel_reads(a, "fentry");
  }();
  return cached;
}

Availability probe_syscall_tracepoints() {
  static const Availability cached = [] {
    Availability a = probe_program("tracepoint", BPF_PROG_TYPE_TRACEPOINT, static_cast<bpf_attach_type>(0), nullptr);
    if (!a.usable) return a;
    if (Availability events = tracefs_events(); !events.usable) return events;
    // libbpf probes bpf_probe_read_kernel; without it, it rewrites every
    // bpf_probe_read_user[_str] call into the older bpf_probe_read[_str], which the
    // same lockdown refuses: then even string mode does not load.
    if (Availability reads = probe_kernel_reads(); !reads.usable)
      return Availability{false, fmt::format("syscall tracepoints load, but bpf_probe_read_kernel is refused ({}), "
                                             "so libbpf replaces bpf_probe_read_user_str by bpf_probe_read_str, "
                                             "which is refused too: no mode of bpf-tracepoint loads",
                                             reads.detail)};
    return Availability{true, fmt::format("syscall tracepoints load; {}", lockdown_note(host_kernel()))};
  }();
  return cached;
}

}  // namespace fstrail::bpf
