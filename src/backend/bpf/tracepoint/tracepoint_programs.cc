#include "backend/bpf/tracepoint/tracepoint_programs.h"

#include <sys/syscall.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <bpf/bpf.h>
#include <fmt/format.h>

#include "backend/bpf/tracepoint/tracepoint.bpf.h"

namespace fstrail::bpf {

namespace {

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

// The syscalls of kr_exit and kr_exit_dup (their sections name one syscall each).
constexpr std::string_view kKernelReadExits[] = {
    "open", "openat", "openat2", "creat", "mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "truncate",
    "ftruncate", "symlink", "symlinkat", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
    "fremovexattr", "setxattrat", "removexattrat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
    "lchown", "fchown", "fchownat", "rename", "renameat", "renameat2", "link", "linkat"};
constexpr std::string_view kKernelReadDupExits[] = {"dup", "dup2", "dup3", "fcntl"};

}  // namespace

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

Status route_programs(const std::vector<DispatchedProgram>& dispatched, bpf_map* enter, bpf_map* exit) {
  for (const auto& d : dispatched) {
    int table = bpf_map__fd(d.at_exit ? exit : enter);
    uint32_t key = static_cast<uint32_t>(d.nr);
    int prog_fd = bpf_program__fd(d.prog);
    if (bpf_map_update_elem(table, &key, &prog_fd, BPF_ANY) != 0)
      return Error::from_errno(fmt::format("cannot route syscall {} to {}", d.nr, bpf_program__name(d.prog)));
  }
  return Ok{};
}

void add_shared_exits(std::vector<DispatchedProgram>& dispatched, bpf_program* exit, bpf_program* dup_exit) {
  for (auto name : kKernelReadExits)
    if (auto nr = syscall_nr(name); nr && *nr < FST_TP_MAX_SYSCALL_NR) dispatched.push_back({exit, true, *nr});
  for (auto name : kKernelReadDupExits)
    if (auto nr = syscall_nr(name); nr && *nr < FST_TP_MAX_SYSCALL_NR) dispatched.push_back({dup_exit, true, *nr});
}

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

}  // namespace fstrail::bpf
