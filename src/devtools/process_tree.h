// Which events were made by the developer's command or anything it started (`fstrail run
// --ignore-self`). The kernel's process connector (root) tells every fork as it happens, so
// a descendant is known even when it exited before its file event was read (fanotify then has
// no parent pid, and /proc no longer has it). Without it: the event's pid and ppid (the
// kernel's, on the eBPF backends) and, for a process not seen before, its ancestry in /proc.
#pragma once

#include <sys/types.h>

#include <string>
#include <unordered_set>

#include "core/event.h"
#include "core/result.h"
#include "core/unique_fd.h"

namespace fstrail::devtools {

class ProcessTree {
 public:
  // A new run's command (pid = its process group). The previous run's processes still
  // count until the run after: their last events may arrive after the new command started.
  void new_command(pid_t pid);
  // Subscribes to the process connector's fork events (needs CAP_NET_ADMIN).
  Status follow_forks();
  // Whether the event's actor is (or descends from) one of the commands.
  bool made_by_command(const Event& event);
  // For tests: where /proc is.
  void set_proc_root(std::string root) { proc_ = std::move(root); }

 private:
  // The parent pid and process group from /proc/PID/stat; false when the process is gone.
  bool read_stat(pid_t pid, pid_t& ppid, pid_t& pgrp) const;
  bool known(pid_t pid) const { return current_.contains(pid) || previous_.contains(pid); }
  // Reads the forks the connector has queued: children of known processes become known.
  void drain_forks();

  std::string proc_ = "/proc";
  std::unordered_set<pid_t> current_, previous_;
  pid_t command_ = -1, previous_command_ = -1;  // also their process groups
  UniqueFd connector_;
  bool connector_lost_ = false;  // its queue overflowed once: forks were missed
};

}  // namespace fstrail::devtools
