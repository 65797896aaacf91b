// Enrichment: fills the actor fields a backend could not capture in the kernel
// by reading /proc/<pid> (actor_source "procfs": read after the fact, may be stale).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <unordered_map>

#include "core/event.h"

namespace fstrail {

inline constexpr uint32_t kNoLoginUid = 4294967295U;

struct ProcessInfo {
  std::optional<int32_t> ppid;
  std::optional<uint32_t> uid, gid, euid, egid, loginuid, sessionid;
  std::optional<std::string> comm, exe, cgroup;
};

// Reads /proc/<pid>; `proc_root` is injectable for tests.
class ProcfsReader {
 public:
  explicit ProcfsReader(std::string proc_root = "/proc") : root_(std::move(proc_root)) {}
  std::optional<ProcessInfo> read(pid_t pid) const;
  // loginuid and sessionid (set once at login, inherited): ProcessInfo with only those.
  ProcessInfo read_login(pid_t pid) const;
  // Just the executable and cgroup (for backends that capture the rest in the kernel).
  std::optional<std::string> exe(pid_t pid) const;
  std::optional<std::string> cgroup(pid_t pid) const;

 private:
  std::string root_;
};

// /proc/<pid>/status kept open per process, for a backend that reads it again and
// again (once per process per batch): each pread at offset 0 formats it afresh, without
// the path lookup, open and close of a fresh read. An open file follows its process,
// not the pid number: once that process is gone the read fails, and the pid is opened
// again (whatever has it now, as a fresh open would have found). At most `max_open`
// files, all closed when that is reached; forget() closes one at its process's exit.
class ProcStatusFiles {
 public:
  explicit ProcStatusFiles(std::string proc_root = "/proc", size_t max_open = 256)
      : root_(std::move(proc_root)), max_open_(max_open) {}
  ~ProcStatusFiles() { clear(); }
  ProcStatusFiles(const ProcStatusFiles&) = delete;
  ProcStatusFiles& operator=(const ProcStatusFiles&) = delete;

  // Just what /proc/<pid>/status holds (ppid, uid, gid, euid, egid, comm), in one
  // pread(2): for backends that have exe and cgroup already.
  std::optional<ProcessInfo> read_credentials(pid_t pid);
  void forget(pid_t pid);
  size_t open_files() const { return fds_.size(); }

 private:
  int open_status(pid_t pid) const;
  void clear();

  std::string root_;
  size_t max_open_;
  std::unordered_map<pid_t, int> fds_;
};

// Sets every actor field of `event` that is still unknown from `info`; known ones stay.
void fill_unknown_actor_fields(Event& event, const ProcessInfo& info);

class Enricher {
 public:
  explicit Enricher(ProcfsReader reader = ProcfsReader()) : reader_(std::move(reader)) {}

  // Fills every unknown actor field of `event` (which has a pid) from /proc, keeping
  // them only if the process `pidfd` refers to is still alive afterwards, so a recycled
  // pid never lends its identity to an event. Without a pidfd nothing is filled: a
  // pid alone cannot tell its process from a newer one.
  void enrich(Event& event, int pidfd);

 private:
  ProcfsReader reader_;
};

}  // namespace fstrail
