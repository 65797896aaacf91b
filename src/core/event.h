// The event model: what every backend produces and every sink consumes.
// Field meanings are the JSON contract documented in docs/events.md.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/loss.h"

namespace fstrail {

// Values match enum fst_op in include/fstrail/wire.h; kLost is user-space only.
enum class EventKind : uint8_t {
  kCreate = 1,
  kMkdir,
  kDelete,
  kRmdir,
  kRename,
  kModify,
  kChmod,
  kChown,
  kTruncate,
  kLink,
  kSymlink,
  kXattr,
  kOpen,
  kLost,  // events were lost (queue overflow, ring buffer full); `lost` says how many
};
inline constexpr int kEventKindCount = static_cast<int>(EventKind::kLost) + 1;

std::string_view kind_name(EventKind kind);
std::optional<EventKind> kind_from_name(std::string_view name);

// Where the actor fields (pid, uid, comm, ...) came from.
enum class ActorSource : uint8_t {
  kNone,    // the backend cannot know: actor fields are null
  kKernel,  // captured in the kernel at the time of the operation
  kProcfs,  // read from /proc after the fact: may be stale
};
std::string_view actor_source_name(ActorSource source);

struct Event {
  int64_t time_ns = 0;  // CLOCK_REALTIME, ns since the epoch
  EventKind kind = EventKind::kCreate;
  std::string path;                     // absolute; bytes, not necessarily UTF-8
  std::optional<std::string> old_path;  // rename: the source
  std::optional<bool> is_dir;
  std::optional<uint64_t> dev;  // st_dev
  std::optional<uint64_t> ino;

  ActorSource actor_source = ActorSource::kNone;
  std::optional<int32_t> pid, tid, ppid;
  std::optional<uint32_t> uid, gid, euid, egid, loginuid, sessionid;
  std::optional<std::string> comm, exe, cgroup;

  std::optional<uint32_t> old_mode, new_mode;               // chmod (permission + type bits)
  std::optional<uint32_t> old_uid, new_uid, old_gid, new_gid;  // chown
  std::optional<int32_t> error;  // failed operation (--failed): the errno
  bool denied = false;           // denied by fstrail's guard enforcement (error is EPERM)
  std::optional<uint64_t> lost;  // kind == kLost: how many events, when known
  LossReason lost_reason = LossReason::kUnknown;  // kind == kLost: why

  std::string_view backend;  // static string owned by the backend registry
};

}  // namespace fstrail
