// What every eBPF backend needs before it opens a skeleton: libbpf's log routed to
// ours, tracefs and bpffs mounted, RLIMIT_MEMLOCK raised on kernels that still charge it.
#pragma once

#include "core/result.h"

namespace fstrail::bpf {

// libbpf messages go to stderr only when verbose (or FSTRAIL_BPF_VERBOSE=1 is set).
void set_libbpf_verbose(bool verbose);

// Idempotent. Fails only when a needed mount is absent and cannot be made.
Status prepare_bpf_runtime();

}  // namespace fstrail::bpf
