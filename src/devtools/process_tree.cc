#include "devtools/process_tree.h"

#include <fmt/format.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

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

Status ProcessTree::follow_forks() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR));
  if (!fd.valid()) return Error::from_errno("process connector");
  int size = 8 << 20;  // a fork storm elsewhere on the machine must not overflow it
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
  struct sockaddr_nl addr {};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = CN_IDX_PROC;
  addr.nl_pid = 0;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::from_errno("process connector: bind");
  alignas(nlmsghdr) char request[NLMSG_SPACE(sizeof(cn_msg) + sizeof(proc_cn_mcast_op))] = {};
  auto* header = reinterpret_cast<nlmsghdr*>(request);
  header->nlmsg_len = NLMSG_LENGTH(sizeof(cn_msg) + sizeof(proc_cn_mcast_op));
  header->nlmsg_type = NLMSG_DONE;
  auto* message = static_cast<cn_msg*>(NLMSG_DATA(header));
  message->id = {CN_IDX_PROC, CN_VAL_PROC};
  message->len = sizeof(proc_cn_mcast_op);
  proc_cn_mcast_op op = PROC_CN_MCAST_LISTEN;
  std::memcpy(message->data, &op, sizeof op);
  if (::send(fd.get(), request, header->nlmsg_len, 0) != static_cast<ssize_t>(header->nlmsg_len))
    return Error::from_errno("process connector: listen");
  connector_ = std::move(fd);
  return Ok{};
}

void ProcessTree::drain_forks() {
  if (!connector_.valid()) return;
  alignas(nlmsghdr) char buf[16384];
  for (;;) {
    ssize_t n = ::recv(connector_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == ENOBUFS && !connector_lost_) {
        connector_lost_ = true;
        fmt::print(stderr,
                   "fstrail: the process connector's queue overflowed: --ignore-self may miss some of "
                   "the command's processes (falling back to /proc for them)\n");
      }
      if (errno == ENOBUFS || errno == EINTR) continue;
      return;
    }
    uint32_t len = static_cast<uint32_t>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      auto* msg = static_cast<cn_msg*>(NLMSG_DATA(h));
      auto* ev = reinterpret_cast<proc_event*>(msg->data);
      if (ev->what != proc_event::PROC_EVENT_FORK) continue;
      pid_t parent = ev->event_data.fork.parent_tgid, child = ev->event_data.fork.child_tgid;
      if (known(parent)) current_.insert(child);
    }
  }
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
  drain_forks();  // a fork is queued before any file event of the child's
  pid_t pid = *event.pid;
  if (known(pid)) return true;
  if (event.ppid && known(*event.ppid)) {
    current_.insert(pid);
    return true;
  }
  // Up the ancestry while /proc still has it; every process on the way learns the answer.
  std::vector<pid_t> path;
  for (pid_t at = pid; at > 1 && path.size() < 64;) {
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
