#include "devtools/process_tree.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace fstrail::devtools {

void ProcessTree::new_command(pid_t pid) {
  previous_ = std::move(current_);
  current_.clear();
  current_.insert(pid);
  previous_command_ = command_;
  command_ = pid;
}

bool ProcessTree::read_stat(pid_t pid, pid_t& ppid, pid_t& pgrp) const {
  std::ifstream in(proc_ + "/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  char state = 0;
  return static_cast<bool>(rest >> state >> ppid >> pgrp);
}

bool ProcessTree::made_by_command(const Event& event) {
  if (!event.pid || *event.pid <= 0) return false;
  pid_t pid = *event.pid;
  if (known(pid)) return true;
  if (event.ppid && known(*event.ppid)) {
    current_.insert(pid);
    return true;
  }
  // Up the ancestry while /proc still has it; every process on the way learns the answer.
  std::vector<pid_t> path;
  for (pid_t at = pid; at > 1 && path.size() < 64; ) {
    pid_t ppid = 0, pgrp = 0;
    if (!read_stat(at, ppid, pgrp)) break;
    path.push_back(at);
    if (pgrp == command_ || pgrp == previous_command_ || known(ppid)) {
      current_.insert(path.begin(), path.end());
      return true;
    }
    at = ppid;
  }
  return false;
}

}  // namespace fstrail::devtools
