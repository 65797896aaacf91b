// The decoder: the only C++ code that knows the wire format (include/fstrail/wire.h).
// It turns ring-buffer records from the BPF backends into events.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "core/clock.h"
#include "core/event.h"
#include "core/result.h"

namespace fstrail {

// Resolves a path as a process passed it to a syscall (relative to dirfd, or to its
// working directory for AT_FDCWD) into an absolute one. Done after the fact, in user space.
class PathResolver {
 public:
  virtual ~PathResolver() = default;
  virtual std::optional<std::string> resolve(pid_t pid, int dirfd, std::string_view path) = 0;
};

// Reads /proc/<pid>/cwd and /proc/<pid>/fd/<dirfd>.
class ProcfsPathResolver final : public PathResolver {
 public:
  explicit ProcfsPathResolver(std::string proc_root = "/proc") : root_(std::move(proc_root)) {}
  std::optional<std::string> resolve(pid_t pid, int dirfd, std::string_view path) override;

 private:
  std::string root_;
};

// A process image changed (FST_REC_EXEC), or the kernel named a process's
// executable file (FST_REC_EXE: `from_kernel`, filename absolute or empty = unknown).
struct ExecRecord {
  pid_t pid = 0;
  std::string filename;
  bool from_kernel = false;
};

// `arg` as a process passed it, joined to the absolute directory it starts from
// (an absolute `arg` starts from `dir` too: the process's root), then normalised
// lexically: no filesystem access, so a symbolic link in `arg` stays as written.
// "." and empty components go; ".." removes the previous component (never above "/").
std::string join_lexically(std::string_view dir, std::string_view arg);

// A process opened a directory as `fd` (FST_REC_DIRFD); `path` as passed, relative
// to `dirfd` when not absolute. Left unresolved: the backend keeps its own fd table.
struct DirFdRecord {
  pid_t pid = 0;
  int fd = -1;
  int dirfd = -1;
  std::string path;
};

struct DecodeContext {
  const BootClock& clock;
  std::string_view backend;
  PathResolver* resolver = nullptr;  // needed for FST_PATH_AS_PASSED
};

using Record = std::variant<Event, ExecRecord, DirFdRecord>;

// A malformed record (short, wrong version, lengths past its end) is an error, never a crash.
Result<Record> decode_record(std::span<const uint8_t> bytes, const DecodeContext& ctx);

}  // namespace fstrail
