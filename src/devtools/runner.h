// Runs a developer's command in its own process group, and stops the whole group
// (SIGTERM, then SIGKILL after a timeout) so that what it started goes with it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"

namespace fstrail::devtools {

struct Launch {
  std::vector<std::string> argv;
  std::vector<std::string> extra_env;  // "NAME=value", over the inherited environment
  std::string stdin_file;              // empty: inherit fstrail's stdin
};

class CommandRunner {
 public:
  ~CommandRunner();

  Status start(const Launch& launch);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }  // also the process group id
  // Reaps the command if it exited; its status is then in last_status().
  void poll_exit();
  // The last command's exit status (128 + signal when killed), once it exited.
  std::optional<int> last_status() const { return status_; }
  // Sends `sig` to the command's whole process group.
  void signal_group(int sig) const;
  // SIGTERM to the group, SIGKILL to the group after `timeout_ms` if the command has not
  // exited, then reaps it. What is left of the group after the command exited is killed too.
  void stop(int timeout_ms);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// "TERM", "SIGTERM", "15" → 15; unknown names are an error listing a few valid ones.
Result<int> parse_signal(const std::string& name);

}  // namespace fstrail::devtools
