// bpf-tracepoint, string mode: where each process's working directory lies (inside a
// watched tree, above one, or outside), told to the kernel so that relative paths are
// filtered there. The kernel bumps a per-process epoch at every chdir and queues the
// processes whose new cwd it could not place; this reads /proc/PID/cwd for them.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backend/bpf/tracepoint/path_tracker.h"

namespace fstrail::bpf {

class CwdScopes {
 public:
  // The maps fst_cwd_epoch, fst_cwd_state, fst_cwd_unknown of tracepoint.bpf.c.
  void open(int epoch_fd, int state_fd, int unknown_fd, const std::vector<std::string>* roots,
            PathTracker* resolver);
  // Every process now (after the programs are attached: a chdir in between wins).
  void seed();
  // The processes the kernel queued.
  void learn_queued();
  // An event's process: if the kernel could not place its cwd, place it now, so its
  // next relative paths are filtered in the kernel. Once per process per batch.
  void relearn_if_stale(uint32_t tgid);
  void new_batch() { batch_relearned_.clear(); }
  void forget(uint32_t tgid) { learned_epoch_.erase(tgid); }

 private:
  void learn(uint32_t tgid);

  int epoch_fd_ = -1, state_fd_ = -1, unknown_fd_ = -1;
  const std::vector<std::string>* roots_ = nullptr;
  PathTracker* resolver_ = nullptr;
  std::unordered_map<uint32_t, uint64_t> learned_epoch_;
  std::unordered_set<uint32_t> batch_relearned_;
};

}  // namespace fstrail::bpf
