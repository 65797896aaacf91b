// Loading bpf-tracepoint's programs (both modes): which syscall each sys_enter_/sys_exit_
// program serves, and the dispatchers' tables that route syscall numbers to them
// (dispatch.bpf.h).
#pragma once

#include <cstdint>
#include <vector>

#include <bpf/libbpf.h>

#include "core/result.h"

namespace fstrail::bpf {

struct DispatchedProgram {
  bpf_program* prog;
  bool at_exit;
  int nr;
};

// Syscall programs run through the raw_syscalls dispatchers, not attached one by one.
// Programs for syscalls this kernel lacks (fchmodat2 before 6.6, setxattrat before
// 6.13: no tracepoint) are not loaded at all.
std::vector<DispatchedProgram> prepare_programs(bpf_object* obj);

// Kernel-read mode: one exit program serves the path and fd syscalls (kread.bpf.c
// kr_exit), another the dups (kr_exit_dup).
void add_shared_exits(std::vector<DispatchedProgram>& dispatched, bpf_program* exit, bpf_program* dup_exit);

// The dispatchers' tables: each syscall number to its loaded program.
Status route_programs(const std::vector<DispatchedProgram>& dispatched, bpf_map* enter, bpf_map* exit);

// sched_process_fork's child_pid offset, from tracefs (the layout differs across
// kernels); 0 when unknown.
uint32_t fork_child_pid_offset();

}  // namespace fstrail::bpf
