#include "backend/bpf/tracepoint/path_tracker.h"

#include <fcntl.h>
#include <linux/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <unordered_set>

#include <fmt/format.h>

#include "backend/bpf/tracepoint/kread.bpf.h"
#include "fstrail/wire.h"

namespace fstrail::bpf {
namespace {

constexpr size_t kMaxEntries = 65536;

std::string join_path(std::string base, std::string_view rel) {
  if (rel.empty()) return base;
  if (base.empty() || base.back() != '/') base += '/';
  base.append(rel);
  return base;
}

template <typename Map, typename Key>
void bounded_put(Map& map, const Key& key, std::string value) {
  if (map.size() >= kMaxEntries && !map.contains(key)) map.clear();
  map[key] = std::move(value);
}

}  // namespace

PathViewSet::PathViewSet(size_t max_inserts) {
  size_t capacity = 16;
  while (capacity < 2 * max_inserts) capacity *= 2;
  slots_.resize(capacity);
}

void PathViewSet::insert(std::string_view path) {
  std::string_view& slot = find(path);
  if (slot.data() && slot.data() != kErased) return;  // there
  slot = path;
  ++size_;
}

bool PathViewSet::erase(std::string_view path) {
  std::string_view& slot = find(path);
  if (!slot.data() || slot.data() == kErased) return false;
  slot = std::string_view(kErased, 0);
  --size_;
  return true;
}

// The slot holding `path`, or else an empty one (a null data pointer: a path of an event
// is never one) at the end of its probe sequence. An erased slot keeps the sequence going
// and is never reused, which keeps lookups simple: a set holds at most max_inserts paths
// ever inserted, in a table of twice that.
std::string_view& PathViewSet::find(std::string_view path) {
  size_t mask = slots_.size() - 1;
  for (size_t i = std::hash<std::string_view>{}(path) & mask;; i = (i + 1) & mask) {
    std::string_view& slot = slots_[i];
    if (!slot.data() || (slot.data() != kErased && slot == path)) return slot;
  }
}

std::vector<bool> paths_removed_later(std::span<const Event> batch) {
  std::vector<bool> removed_later(batch.size(), false);
  PathViewSet removed(2 * batch.size());  // by an event after the current one; at most 2 inserts per event
  for (size_t i = batch.size(); i-- > 0;) {
    const Event& e = batch[i];
    removed_later[i] = !removed.empty() && removed.contains(e.path);
    if (e.error) continue;
    switch (e.kind) {
      case EventKind::kDelete:
      case EventKind::kRmdir:
        removed.insert(e.path);
        break;
      case EventKind::kRename:
        removed.insert(e.path);  // replaced, if something was there
        if (e.old_path) removed.insert(*e.old_path);
        break;
      default:
        break;
    }
  }
  return removed_later;
}

bool inside_roots(std::string_view path, const std::vector<std::string>& roots) {
  for (std::string_view root : roots) {
    if (root == "/") return !path.empty() && path.front() == '/';
    if (path.substr(0, root.size()) == root && (path.size() == root.size() || path[root.size()] == '/'))
      return true;
  }
  return false;
}

bool above_a_root(std::string_view dir, const std::vector<std::string>& roots) {
  for (std::string_view root : roots) {
    if (root.size() <= dir.size()) continue;
    if (dir == "/" || (root.substr(0, dir.size()) == dir && root[dir.size()] == '/')) return true;
  }
  return false;
}

bool is_lexically_normal(std::string_view path) {
  if (path.empty() || (path.size() > 1 && path.back() == '/')) return false;
  // One pass: no component is empty (but the root's), "." or "..".
  const char* p = path.data();
  size_t n = path.size(), start = 0;
  for (size_t i = 0; i <= n; ++i) {
    if (i < n && p[i] != '/') continue;
    size_t len = i - start;
    if (len == 0 && start != 0 && i != n) return false;
    if (len == 1 && p[start] == '.') return false;
    if (len == 2 && p[start] == '.' && p[start + 1] == '.') return false;
    start = i + 1;
  }
  return true;
}

std::string lexically_normal_path(std::string_view path) {
  // Almost every path is already normal: std::filesystem costs several allocations.
  if (is_lexically_normal(path)) return std::string(path);
  std::string normal = std::filesystem::path(path).lexically_normal().string();
  if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  return normal;
}

std::optional<std::string> PathTracker::proc_cwd(pid_t pid) const {
  char buf[4096];
  std::string link = fmt::format("{}/{}/cwd", proc_root_, pid);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0 || buf[0] != '/') return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> PathTracker::known_base(pid_t pid, int dirfd) const {
  if (dirfd == AT_FDCWD) {
    auto it = cwds_.find(pid);
    return it == cwds_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  auto it = dirs_.find(FdKey{pid, dirfd});
  return it == dirs_.end() ? std::nullopt : std::optional<std::string>(it->second);
}

std::optional<std::string> PathTracker::resolve(pid_t pid, int dirfd, std::string_view path) {
  if (!path.empty() && path.front() == '/') return std::string(path);
  if (auto base = known_base(pid, dirfd)) return join_path(std::move(*base), path);
  if (auto live = procfs_.resolve(pid, dirfd, path)) return live;
  if (dirfd != AT_FDCWD || !parent_of_) return std::nullopt;
  auto parent = parent_of_(parent_context_, pid);
  if (!parent) return std::nullopt;
  if (auto base = known_base(*parent, AT_FDCWD)) return join_path(std::move(*base), path);
  return procfs_.resolve(*parent, AT_FDCWD, path);
}

void PathTracker::apply(const DirFdRecord& d) {
  if (d.fd == FST_DIRFD_EXITED || d.fd == FST_DIRFD_FORKED) {
    cwds_.erase(d.pid);
    std::erase_if(dirs_, [&](const auto& entry) { return entry.first.pid == d.pid; });
  }
  if (d.fd == FST_DIRFD_EXITED) return;
  if (d.fd == FST_DIRFD_FORKED) {
    auto parent = static_cast<pid_t>(d.dirfd);
    auto cwd = known_base(parent, AT_FDCWD);
    if (!cwd) cwd = proc_cwd(parent);
    if (cwd) bounded_put(cwds_, d.pid, lexically_normal_path(*cwd));
    return;
  }
  auto dir = resolve(d.pid, d.dirfd, d.path);
  if (!dir) return;
  if (d.fd == AT_FDCWD)
    bounded_put(cwds_, d.pid, lexically_normal_path(*dir));
  else
    bounded_put(dirs_, FdKey{d.pid, d.fd}, lexically_normal_path(*dir));
}

void PathTracker::remember_cwd(pid_t pid, std::string cwd) {
  if (!cwds_.contains(pid)) bounded_put(cwds_, pid, std::move(cwd));
}

uint64_t kread_prefix_hash(uint64_t dev, uint64_t ino, std::string_view rel) {
  uint64_t h = fst_kr_dir_seed(dev, ino);
  for (char c : rel) h = fst_kr_hash_byte(h, static_cast<uint8_t>(c));
  return h;
}

std::vector<AncestorPrefix> ancestor_prefixes(const std::string& root) {
  std::vector<AncestorPrefix> entries;
  std::string normal = lexically_normal_path(root);
  if (normal == "/") return entries;
  for (size_t slash = normal.rfind('/'); slash != std::string::npos;
       slash = slash == 0 ? std::string::npos : normal.rfind('/', slash - 1)) {
    std::string dir = slash == 0 ? "/" : normal.substr(0, slash);
    std::string_view rel = std::string_view(normal).substr(slash + 1);
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) continue;
    AncestorPrefix e{};
    e.dir.dev = st.st_dev;
    e.dir.ino = st.st_ino;
    e.hash = kread_prefix_hash(st.st_dev, st.st_ino, rel);
    entries.push_back(e);
  }
  return entries;
}

}  // namespace fstrail::bpf
