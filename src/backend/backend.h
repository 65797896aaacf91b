// The backend interface: one kernel event source (bpf-lsm, bpf-fentry,
// bpf-tracepoint, fanotify, inotify) behind the same five calls.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/loss.h"
#include "core/result.h"
#include "filter/filter.h"

namespace fstrail {

// A guarded tree as the kernel enforces it (`fstrail guard`, enforce = true; bpf-lsm only).
struct GuardedTree {
  std::string path;  // an existing directory: its (st_dev, st_ino) keys the rule
  uint32_t owner = 0, group = 0;
  uint32_t file_mode = 07777, dir_mode = 07777;  // permission bits allowed
  bool enforce = false;  // false: an inner tree that only alerts (no denial below it)
  std::vector<uint32_t> exempt_users;  // real uid or loginuid
};

struct WatchSpec {
  std::vector<std::string> roots;  // absolute, canonical directories
  KindSet kinds = default_kinds();  // what to report; backends may drop the rest early
  bool report_failed = false;      // also report failed/denied operations, with `error`
  // Non-empty with an enforcing tree: deny violating operations in the kernel and
  // report each denial (Event::denied). Only bpf-lsm can; every other backend refuses.
  std::vector<GuardedTree> guarded_trees;
  // bpf-tracepoint: "kernel" (paths and actors read from kernel objects), "strings"
  // (syscall strings, resolved in user space), "auto" (kernel where it loads).
  std::string tracepoint_mode = "auto";
};

struct BackendStats {
  LossCounts lost;       // events known to be lost, by reason
  uint64_t rescans = 0;  // resynchronizations after a loss
};

using EmitFn = std::function<void(Event&&)>;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // Places every watch. After it returns, no event under the roots is missed.
  virtual Status start(const WatchSpec& spec) = 0;
  // Waits up to timeout_ms for activity and emits every event available. An EINTR
  // wait returns Ok so the caller can check for a stop request.
  virtual Status poll(int timeout_ms, const EmitFn& emit) = 0;
  virtual BackendStats stats() const = 0;
  // Changes the watched roots while running (`fstrail agent`'s reload): roots kept go on
  // without a gap, new ones are watched from the return on, and events under roots no longer
  // listed are not emitted. Backends that fix their roots at load refuse with ENOTSUP.
  virtual Status update_roots(const std::vector<std::string>& roots);
  // Files seen written and not yet closed, where the backend can tell (`fstrail run`'s
  // settle rule); null where it cannot (the eBPF backends report a write at its close).
  virtual std::optional<std::vector<std::string>> files_being_written() const { return std::nullopt; }
};

// The entries of `list` that `other` does not have: update_roots' added roots
// (roots_not_in(new, old)) and removed ones (roots_not_in(old, new)).
std::vector<std::string> roots_not_in(const std::vector<std::string>& list, const std::vector<std::string>& other);

struct Availability {
  bool usable = false;
  std::string detail;  // why not, or what it gives here
};

struct BackendInfo {
  std::string_view name;
  std::string_view summary;  // what it offers, one line
  Availability (*probe)();
  std::unique_ptr<Backend> (*create)();
};

// Every backend, best first.
const std::vector<BackendInfo>& all_backends();
const BackendInfo* find_backend(std::string_view name);

struct Selection {
  std::unique_ptr<Backend> backend;
  std::string why;  // for `auto`: what was chosen and why the better ones were not
};

// Creates and starts `name` ("auto": the best that probes usable and starts).
// Errors explain every rejected backend and what would work instead.
Result<Selection> start_backend(std::string_view name, const WatchSpec& spec);

}  // namespace fstrail
