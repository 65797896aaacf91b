#include <algorithm>

#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/bpf/fentry/fentry_backend.h"
#include "backend/bpf/lsm/lsm_backend.h"
#include "backend/bpf/tracepoint/tracepoint_backend.h"
#include "backend/fanotify/fanotify_backend.h"
#include "backend/inotify/inotify_backend.h"

namespace fstrail {
const std::vector<BackendInfo>& all_backends() {
  static const std::vector<BackendInfo> backends = {
      {"bpf-lsm", "BPF LSM hooks: kernel attribution, full paths, enforcement", probe_bpf_lsm,
       create_bpf_lsm_backend},
      {"bpf-fentry", "fentry/fexit on VFS functions: kernel attribution, full paths", probe_bpf_fentry,
       create_bpf_fentry_backend},
      {"bpf-tracepoint", "syscall tracepoints: kernel attribution; loads under lockdown",
       probe_bpf_tracepoint, create_bpf_tracepoint_backend},
      {"fanotify", "fanotify marks with pidfd: full paths, attribution read from /proc",
       probe_fanotify, create_fanotify_backend},
      {"inotify", "inotify watches: any user, no attribution", probe_inotify, create_inotify_backend},
  };
  return backends;
}

const BackendInfo* find_backend(std::string_view name) {
  for (const auto& b : all_backends())
    if (b.name == name) return &b;
  return nullptr;
}

Result<Selection> start_backend(std::string_view name, const WatchSpec& spec) {
  for (const auto& tree : spec.guarded_trees)
    if (tree.enforce && name != "bpf-lsm")
      return Error{fmt::format("enforcing guard rules needs the bpf-lsm backend, not '{}' (see `fstrail doctor`)", name)};
  if (name != "auto") {
    const BackendInfo* info = find_backend(name);
    if (!info) {
      return Error{fmt::format("unknown backend '{}'; valid: auto, bpf-lsm, bpf-fentry, "
                               "bpf-tracepoint, fanotify, inotify", name)};
    }
    Availability a = info->probe();
    // Only on failure: probing every other backend costs a BPF load each.
    auto usable_instead = [&] {
      std::string alternatives;
      for (const auto& b : all_backends())
        if (b.name != name && b.probe().usable) alternatives += (alternatives.empty() ? "" : ", ") + std::string(b.name);
      return alternatives.empty() ? "" : fmt::format(" (usable here: {})", alternatives);
    };
    if (!a.usable) return Error{fmt::format("backend {} cannot run here: {}{}", name, a.detail, usable_instead())};
    auto backend = info->create();
    if (Status s = backend->start(spec); !s)
      return Error{fmt::format("backend {} failed to start: {}{}", name, s.error().message, usable_instead()),
                   s.error().err};
    return Selection{std::move(backend), fmt::format("backend {} requested", name)};
  }
  std::string rejected;
  for (const auto& info : all_backends()) {
    Availability a = info.probe();
    std::string reason = a.detail;
    if (a.usable) {
      auto backend = info.create();
      Status s = backend->start(spec);
      if (s) {
        std::string why = fmt::format("auto chose {}", info.name);
        if (!rejected.empty()) why += " (" + rejected + ")";
        return Selection{std::move(backend), why};
      }
      reason = "failed to start: " + s.error().message;
    }
    rejected += fmt::format("{}{}: {}", rejected.empty() ? "" : "; ", info.name, reason);
  }
  return Error{"no backend can run here: " + rejected + ". Run `fstrail doctor` for details."};
}

std::vector<std::string> roots_not_in(const std::vector<std::string>& list, const std::vector<std::string>& other) {
  std::vector<std::string> missing;
  for (const auto& root : list)
    if (std::find(other.begin(), other.end(), root) == other.end()) missing.push_back(root);
  return missing;
}

Status Backend::update_roots(const std::vector<std::string>&) {
  return Error{fmt::format("{} cannot change its watched trees while running (restart it instead)", name()), ENOTSUP};
}

}  // namespace fstrail
