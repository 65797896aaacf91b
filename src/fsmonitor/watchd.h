// `fstrail watchd`: the per-user watcher behind git's fsmonitor hook (client.h: the hook).
#pragma once

#include <string>

namespace fstrail::fsmonitor {

struct WatchdOptions {
  std::string backend = "auto";  // auto: fanotify as root when it starts, else inotify
  int idle_timeout_s = 3600;     // forget a worktree not queried for this long (0: never)
  int query_timeout_ms = 5000;   // how long a query waits for its sync cookie
};

// Serves queries on the socket of the caller's private runtime directory until stopped
// (`--stop`, SIGINT, SIGTERM) or idle with nothing watched. Exit status.
int run_watchd(const WatchdOptions& options);

}  // namespace fstrail::fsmonitor
