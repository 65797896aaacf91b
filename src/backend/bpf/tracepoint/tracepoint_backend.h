// The bpf-tracepoint backend: syscall tracepoints, the one eBPF program type that
// loads under kernel lockdown. What is kernel-exact and what is read afterwards:
// docs/backends.md.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"

namespace fstrail {

Availability probe_bpf_tracepoint();
std::unique_ptr<Backend> create_bpf_tracepoint_backend();

}  // namespace fstrail
