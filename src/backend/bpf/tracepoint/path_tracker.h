// User-space half of bpf-tracepoint's path handling: paths arrive as the process
// passed them (relative to its cwd or a directory fd) and are made absolute here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/event.h"
#include "decode/decoder.h"

namespace fstrail::bpf {

// True when `path` (absolute, lexically normal) is a watched root or below one.
bool inside_roots(std::string_view path, const std::vector<std::string>& roots);

// True when `dir` is above a watched root ("/srv" for root "/srv/a"): some of its
// descendants are watched.
bool above_a_root(std::string_view dir, const std::vector<std::string>& roots);

// For each event of a batch (in syscall order): whether a later event of the batch
// removes or replaces what its path names (a delete, an rmdir, a rename from or onto the
// path; failed operations do not count). The file at such a path now is not the one
// the event was about, so looking it up (statx) only costs: a create then delete of
// the same name in one batch skips the lookup. Exact paths only, not ancestors.
std::vector<bool> paths_removed_later(std::span<const Event> batch);

// A set of paths within one batch: open addressing over views of the batch's own
// strings (which must outlive it), one allocation per batch rather than a node and a
// copy per path. Sized for at most `max_inserts` inserts in its life.
class PathViewSet {
 public:
  explicit PathViewSet(size_t max_inserts);
  bool empty() const { return size_ == 0; }
  void insert(std::string_view path);
  bool erase(std::string_view path);  // whether it was there
  bool contains(std::string_view path) { return find(path).data() != nullptr; }

 private:
  static inline const char kErasedMark = 0;  // an erased slot points here
  static constexpr const char* kErased = &kErasedMark;
  std::string_view& find(std::string_view path);
  std::vector<std::string_view> slots_;
  size_t size_ = 0;
};

// Kernel-read mode's filter above the roots (kread.bpf.h): for each ancestor directory
// A of `root` (a canonical absolute path), A's (dev, ino) and the hash of A's key with
// the relative path from A to the root. Ancestors that cannot be stat'ed are left out
// (the kernel then sends nothing from there: it cannot name them either).
struct AncestorPrefix {
  struct {
    uint64_t dev, ino;  // struct fst_root_key
  } dir;
  uint64_t hash;
};
std::vector<AncestorPrefix> ancestor_prefixes(const std::string& root);
// The hash the kernel computes for `rel` (normalised, components joined by one '/')
// relative to the directory (dev, ino).
uint64_t kread_prefix_hash(uint64_t dev, uint64_t ino, std::string_view rel);

// "/a/./b//c/../d" -> "/a/b/d": paths as processes pass them, made comparable.
std::string lexically_normal_path(std::string_view path);
// True when lexically_normal_path(path) == path.
bool is_lexically_normal(std::string_view path);

// Makes paths absolute. Directory fds and working directories are followed from the
// kernel's FST_REC_DIRFD records in syscall order (exact at the time of each event,
// and still known after the process has exited); /proc is the fallback for what was
// never seen (processes older than fstrail, fds inherited at fork), then the
// parent's working directory, which a short-lived child of a shell shares.
class PathTracker final : public PathResolver {
 public:
  // `parent_of`: the pid that forked `pid`, from the kernel (nullopt: unknown).
  using ParentLookup = std::optional<pid_t> (*)(void* context, pid_t pid);

  explicit PathTracker(std::string proc_root = "/proc") : procfs_(proc_root), proc_root_(std::move(proc_root)) {}

  std::optional<std::string> resolve(pid_t pid, int dirfd, std::string_view path) override;
  void apply(const DirFdRecord& record);
  // A cwd read from /proc: kept only for a process not already followed in order.
  void remember_cwd(pid_t pid, std::string cwd);
  void set_parent_lookup(ParentLookup lookup, void* context) {
    parent_of_ = lookup;
    parent_context_ = context;
  }

 private:
  struct FdKey {
    pid_t pid;
    int fd;
    bool operator==(const FdKey&) const = default;
  };
  struct FdKeyHash {
    size_t operator()(const FdKey& k) const {
      return std::hash<uint64_t>()((uint64_t(uint32_t(k.pid)) << 32) | uint32_t(k.fd));
    }
  };

  std::optional<std::string> known_base(pid_t pid, int dirfd) const;
  std::optional<std::string> proc_cwd(pid_t pid) const;

  ProcfsPathResolver procfs_;
  std::string proc_root_;
  ParentLookup parent_of_ = nullptr;
  void* parent_context_ = nullptr;
  std::unordered_map<pid_t, std::string> cwds_;
  std::unordered_map<FdKey, std::string, FdKeyHash> dirs_;
};

}  // namespace fstrail::bpf
