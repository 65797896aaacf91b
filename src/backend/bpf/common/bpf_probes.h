// Real kernel-feature probes for the eBPF backends: each loads a trivial program of
// the type a backend needs (never attached) and, when the kernel refuses, says why
// in terms the user can act on. Results are cached for the life of the process.
#pragma once

#include <string>
#include <string_view>

#include "backend/backend.h"
#include "backend/kernel_features.h"

namespace fstrail::bpf {

// lsm/ programs load AND "bpf" is in the active LSM list (otherwise they load and never run)
// AND they may read kernel memory.
Availability probe_lsm_programs();
// fentry/ programs on VFS functions load and may read kernel memory.
Availability probe_fentry_programs();
// tracepoint/syscalls/ programs load and the syscall tracepoints exist in tracefs.
Availability probe_syscall_tracepoints();
// BPF programs may call bpf_probe_read_kernel (lockdown=confidentiality refuses it).
Availability probe_kernel_reads();

// "loading an lsm program failed: Operation not permitted (kernel lockdown=integrity ...)";
// pure, so tests can check the wording for any kernel.
std::string explain_load_failure(std::string_view program_type, int err, const KernelFeatures& kernel);

}  // namespace fstrail::bpf
