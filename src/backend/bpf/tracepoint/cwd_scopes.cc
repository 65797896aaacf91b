#include "backend/bpf/tracepoint/cwd_scopes.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>

#include <bpf/bpf.h>
#include <fmt/format.h>

#include "backend/bpf/tracepoint/tracepoint.bpf.h"

namespace fstrail::bpf {

namespace {

std::optional<std::string> readlink_string(const std::string& link) {
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

void CwdScopes::open(int epoch_fd, int state_fd, int unknown_fd, const std::vector<std::string>* roots,
                     PathTracker* resolver) {
  epoch_fd_ = epoch_fd;
  state_fd_ = state_fd;
  unknown_fd_ = unknown_fd;
  roots_ = roots;
  resolver_ = resolver;
}

// The epoch read before and after /proc brackets the look: a chdir in between leaves
// the state unset.
void CwdScopes::learn(uint32_t tgid) {
  uint64_t before = 0, after = 0;
  if (bpf_map_lookup_elem(epoch_fd_, &tgid, &before) != 0) before = 0;
  auto cwd = readlink_string(fmt::format("/proc/{}/cwd", tgid));
  if (!cwd || cwd->empty() || cwd->front() != '/') return;
  if (bpf_map_lookup_elem(epoch_fd_, &tgid, &after) != 0) after = 0;
  if (before != after) return;
  std::string dir = lexically_normal_path(*cwd);
  fst_tp_cwd_state state{};
  state.epoch = before;
  state.scope = inside_roots(dir, *roots_) ? FST_SCOPE_INSIDE
                : above_a_root(dir, *roots_) ? FST_SCOPE_ANCESTOR
                                             : FST_SCOPE_OUTSIDE;
  bpf_map_update_elem(state_fd_, &tgid, &state, BPF_ANY);
  learned_epoch_[tgid] = before;
  resolver_->remember_cwd(static_cast<pid_t>(tgid), std::move(dir));
}

void CwdScopes::seed() {
  DIR* proc = ::opendir("/proc");
  if (!proc) return;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    unsigned long pid = std::strtoul(entry->d_name, &end, 10);
    if (end && *end == '\0' && pid > 0) learn(static_cast<uint32_t>(pid));
  }
  ::closedir(proc);
}

void CwdScopes::learn_queued() {
  uint32_t tgid = 0;
  while (bpf_map_lookup_and_delete_elem(unknown_fd_, nullptr, &tgid) == 0) learn(tgid);
}

void CwdScopes::relearn_if_stale(uint32_t tgid) {
  if (!batch_relearned_.insert(tgid).second) return;
  uint64_t epoch = 0;
  if (bpf_map_lookup_elem(epoch_fd_, &tgid, &epoch) != 0) epoch = 0;
  auto it = learned_epoch_.find(tgid);
  if (it != learned_epoch_.end() && it->second == epoch) return;
  if (learned_epoch_.size() > 65536) learned_epoch_.clear();
  learn(tgid);
}

}  // namespace fstrail::bpf
