// One worktree watched for `fstrail watchd`: a backend polled on its own thread, every
// change of the worktree numbered in a ChangeLog, and the sync cookie that makes a query
// wait until every earlier event has been seen.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "backend/backend.h"
#include "fsmonitor/protocol.h"

namespace fstrail::fsmonitor {

class WorktreeWatch {
 public:
  // `sequence` numbers the events of every worktree of the watcher; `backend` is inotify,
  // fanotify, or auto (fanotify when it starts, as root; inotify otherwise).
  static Result<std::unique_ptr<WorktreeWatch>> start(const std::string& root, const std::string& backend,
                                                      uint64_t instance, std::atomic<uint64_t>& sequence);
  ~WorktreeWatch();
  WorktreeWatch(const WorktreeWatch&) = delete;
  WorktreeWatch& operator=(const WorktreeWatch&) = delete;

  // The hook's output for `token`: waits (at most timeout_ms) until the watcher has seen
  // a cookie made now, so every change made before the query is in the answer. An error
  // when it cannot be sure of that (the hook then fails and git scans everything).
  Result<std::string> query(std::string_view token, int timeout_ms);
  // The first answer: nothing was watched before, everything may have changed.
  std::string first_answer();
  // The backend stopped or the root went away: the watch must be made again.
  bool broken() const { return broken_; }
  const std::string& backend_name() const { return backend_name_; }
  int64_t last_query_ns() const { return last_query_ns_; }

 private:
  WorktreeWatch(std::string root, uint64_t instance, std::atomic<uint64_t>& sequence);
  void run();
  void on_event(Event&& event);  // with mutex_ held
  void note(const std::string& path, std::optional<bool> is_dir);
  void note_subtree(const std::string& dir);
  void lose_track();

  const std::string root_;
  std::string cookie_dir_;  // root/.git, or the root when .git is not a directory
  const uint64_t instance_;
  std::atomic<uint64_t>& sequence_;
  std::unique_ptr<Backend> backend_;
  std::string backend_name_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> broken_{false};
  std::atomic<int64_t> last_query_ns_{0};
  uint64_t cookies_made_ = 0;

  std::mutex mutex_;
  std::condition_variable seen_;
  ChangeLog log_;                       // guarded by mutex_
  std::set<std::string> cookies_seen_;  // guarded by mutex_
};

}  // namespace fstrail::fsmonitor
