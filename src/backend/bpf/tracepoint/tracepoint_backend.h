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

namespace bpf {

// True when `path` (absolute, lexically normal) is a watched root or below one.
bool inside_roots(std::string_view path, const std::vector<std::string>& roots);

// True when `dir` is above a watched root ("/srv" for root "/srv/a"): some of its
// descendants are watched.
bool above_a_root(std::string_view dir, const std::vector<std::string>& roots);

// "/a/./b//c/../d" -> "/a/b/d": paths as processes pass them, made comparable.
std::string lexically_normal_path(std::string_view path);

}  // namespace bpf
}  // namespace fstrail
