#include "decode/decoder.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "fstrail/wire.h"

namespace fstrail {
namespace {

// The decoder turns fst_event.op into EventKind by value: the two enums must agree.
constexpr bool op_is_kind(int op, EventKind kind) { return op == static_cast<int>(kind); }
static_assert(op_is_kind(FST_OP_CREATE, EventKind::kCreate) && op_is_kind(FST_OP_MKDIR, EventKind::kMkdir) &&
              op_is_kind(FST_OP_DELETE, EventKind::kDelete) && op_is_kind(FST_OP_RMDIR, EventKind::kRmdir) &&
              op_is_kind(FST_OP_RENAME, EventKind::kRename) && op_is_kind(FST_OP_MODIFY, EventKind::kModify) &&
              op_is_kind(FST_OP_CHMOD, EventKind::kChmod) && op_is_kind(FST_OP_CHOWN, EventKind::kChown) &&
              op_is_kind(FST_OP_TRUNCATE, EventKind::kTruncate) && op_is_kind(FST_OP_LINK, EventKind::kLink) &&
              op_is_kind(FST_OP_SYMLINK, EventKind::kSymlink) && op_is_kind(FST_OP_XATTR, EventKind::kXattr) &&
              op_is_kind(FST_OP_OPEN, EventKind::kOpen) && op_is_kind(FST_OP_COUNT, EventKind::kLost),
              "enum fst_op (include/fstrail/wire.h) and EventKind (core/event.h) disagree");

constexpr uint32_t kNoId = 4294967295U;  // (u32)-1: no login uid / session

std::optional<std::string> readlink_string(const std::string& link) {
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

std::string join(std::string base, std::string_view rel) {
  while (rel.substr(0, 2) == "./") rel.remove_prefix(2);
  if (rel == ".") return base;
  if (base.empty() || base.back() != '/') base += '/';
  base.append(rel);
  return base;
}

// Names separated by NUL, leaf first -> "/root/.../leaf".
std::string from_reversed_components(std::string_view bytes) {
  std::string path;
  while (!bytes.empty()) {
    if (bytes.back() == '\0') {
      bytes.remove_suffix(1);
      continue;
    }
    size_t start = bytes.rfind('\0');
    start = start == std::string_view::npos ? 0 : start + 1;
    path += '/';
    path.append(bytes.substr(start));
    bytes = bytes.substr(0, start);
  }
  return path.empty() ? "/" : path;
}

}  // namespace

std::string join_lexically(std::string_view dir, std::string_view arg) {
  std::vector<std::string_view> parts;
  auto add = [&parts](std::string_view text) {
    while (!text.empty()) {
      size_t slash = text.find('/');
      std::string_view part = text.substr(0, slash);
      text = slash == std::string_view::npos ? std::string_view() : text.substr(slash + 1);
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (!parts.empty()) parts.pop_back();
        continue;
      }
      parts.push_back(part);
    }
  };
  add(dir);
  add(arg);
  if (parts.empty()) return "/";
  std::string path;
  for (auto part : parts) {
    path += '/';
    path.append(part);
  }
  return path;
}

namespace {

Result<std::string> decode_path(uint8_t encoding, std::string_view bytes, int dirfd, pid_t pid,
                                const DecodeContext& ctx) {
  switch (encoding) {
    case FST_PATH_ABSOLUTE: {
      // bpf_d_path() output is NUL-terminated within its length.
      size_t nul = bytes.find('\0');
      return std::string(bytes.substr(0, nul));
    }
    case FST_PATH_REVERSED_COMPONENTS:
      return from_reversed_components(bytes);
    case FST_PATH_ARG_AT_DIR: {
      size_t nul = bytes.find('\0');
      if (nul == std::string_view::npos) return Error{"argument path without its start directory"};
      return join_lexically(from_reversed_components(bytes.substr(nul + 1)), bytes.substr(0, nul));
    }
    case FST_PATH_AS_PASSED: {
      size_t nul = bytes.find('\0');
      bytes = bytes.substr(0, nul);
      if (!bytes.empty() && bytes.front() == '/') return std::string(bytes);
      if (!ctx.resolver) return Error{"relative path in record but no path resolver"};
      auto resolved = ctx.resolver->resolve(pid, dirfd, bytes);
      if (!resolved) return Error{fmt::format("cannot resolve '{}' of pid {} (process gone)", bytes, pid), ESRCH};
      return *resolved;
    }
    default:
      return Error{fmt::format("unknown path encoding {}", encoding)};
  }
}

template <typename T>
std::optional<T> id_or_null(T v) {
  return v == static_cast<T>(kNoId) ? std::nullopt : std::optional<T>(v);
}

Result<Record> decode_event(std::span<const uint8_t> bytes, const fst_event& w, const DecodeContext& ctx) {
  size_t payload = bytes.size() - sizeof(fst_event);
  if (size_t{w.path_len} + w.old_path_len > payload)
    return Error{fmt::format("event path lengths {}+{} exceed record payload {}", w.path_len, w.old_path_len, payload)};
  if (w.op == 0 || w.op >= FST_OP_COUNT) return Error{fmt::format("unknown op {}", w.op)};
  // 2^62 ns is 146 years of uptime: a larger boot time is a corrupt record, not a time.
  // The kernel's errors are -1..-4095 (MAX_ERRNO); anything else (-2^31 would not even negate).
  if (w.error > 0 || w.error < -4095) return Error{fmt::format("error {} is not a negative errno", w.error)};
  if (w.hdr.ktime_ns >= (uint64_t{1} << 62))
    return Error{fmt::format("boot time {} ns is beyond any uptime", w.hdr.ktime_ns)};

  Event e;
  e.time_ns = ctx.clock.to_realtime(w.hdr.ktime_ns);
  e.kind = static_cast<EventKind>(w.op);
  e.backend = ctx.backend;
  e.actor_source = ActorSource::kKernel;
  const fst_actor& a = w.actor;
  e.pid = static_cast<int32_t>(a.pid);
  e.tid = static_cast<int32_t>(a.tid);
  e.uid = a.uid;
  e.gid = a.gid;
  if (!(a.valid & FST_AF_NO_EFFECTIVE_IDS)) {
    e.euid = a.euid;
    e.egid = a.egid;
  }
  if (a.valid & FST_AF_PPID) e.ppid = static_cast<int32_t>(a.ppid);
  if (a.valid & FST_AF_LOGINUID) e.loginuid = id_or_null(a.loginuid);
  if (a.valid & FST_AF_SESSIONID) e.sessionid = id_or_null(a.sessionid);
  if (a.valid & FST_AF_CGROUP) e.cgroup = std::to_string(a.cgroup_id);
  e.comm = std::string(a.comm, strnlen(a.comm, sizeof a.comm));
  if (w.flags & FST_EF_IS_DIR) e.is_dir = true;
  if (w.flags & FST_EF_HAS_INODE) {
    e.dev = w.dev;
    e.ino = w.ino;
    if (!(w.flags & FST_EF_IS_DIR)) e.is_dir = false;
  }
  if (w.flags & FST_EF_HAS_OLD_MODE) e.old_mode = w.old_mode;
  if (w.flags & FST_EF_HAS_NEW_MODE) e.new_mode = w.new_mode;
  if (w.flags & FST_EF_HAS_OLD_OWNER) {
    e.old_uid = w.old_uid;
    e.old_gid = w.old_gid;
  }
  if (w.flags & FST_EF_HAS_NEW_UID) e.new_uid = w.new_uid;
  if (w.flags & FST_EF_HAS_NEW_GID) e.new_gid = w.new_gid;
  if (w.error) e.error = -w.error;
  if (w.flags & FST_EF_DENIED) e.denied = true;

  // A path longer than the kernel side could carry lacks its top (a walk stopped short)
  // or its end (an argument cut): decoded, it would name a path that does not exist.
  // Rejected with ENAMETOOLONG (counted as a loss), never emitted.
  if (w.flags & (FST_EF_PATH_TRUNCATED | FST_EF_OLD_PATH_TRUNCATED))
    return Error{"path longer than the kernel could carry: it cannot be named", ENAMETOOLONG};
  const char* data = reinterpret_cast<const char*>(bytes.data()) + sizeof(fst_event);
  auto path = decode_path(w.path_enc, {data, w.path_len}, w.dirfd, static_cast<pid_t>(a.pid), ctx);
  if (!path) return path.error();
  e.path = std::move(*path);
  if (w.old_path_enc != FST_PATH_NONE) {
    auto old_path = decode_path(w.old_path_enc, {data + w.path_len, w.old_path_len}, w.old_dirfd,
                                static_cast<pid_t>(a.pid), ctx);
    if (!old_path) return old_path.error();
    e.old_path = std::move(*old_path);
  }
  return Record(std::move(e));
}

}  // namespace

std::optional<std::string> ProcfsPathResolver::resolve(pid_t pid, int dirfd, std::string_view path) {
  if (!path.empty() && path.front() == '/') return std::string(path);
  std::string base = dirfd == AT_FDCWD ? fmt::format("{}/{}/cwd", root_, pid)
                                       : fmt::format("{}/{}/fd/{}", root_, pid, dirfd);
  auto dir = readlink_string(base);
  if (!dir || dir->empty() || dir->front() != '/') return std::nullopt;
  if (path.empty()) return std::move(*dir);  // fd-based call: the file the fd names
  return join(std::move(*dir), path);
}

Result<Record> decode_record(std::span<const uint8_t> bytes, const DecodeContext& ctx) {
  if (bytes.size() < sizeof(fst_header)) return Error{fmt::format("record of {} bytes is shorter than its header", bytes.size())};
  fst_header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (h.version != FST_WIRE_VERSION)
    return Error{fmt::format("wire version {} (this fstrail reads {}): BPF object and binary differ", h.version, FST_WIRE_VERSION)};
  if (h.size > bytes.size()) return Error{fmt::format("record claims {} bytes, has {}", h.size, bytes.size())};
  bytes = bytes.first(h.size);
  switch (h.type) {
    case FST_REC_EVENT: {
      if (bytes.size() < sizeof(fst_event)) return Error{"event record too short"};
      fst_event w;
      std::memcpy(&w, bytes.data(), sizeof w);
      return decode_event(bytes, w, ctx);
    }
    case FST_REC_EXEC: {
      if (bytes.size() < sizeof(fst_exec)) return Error{"exec record too short"};
      fst_exec w;
      std::memcpy(&w, bytes.data(), sizeof w);
      if (w.filename_len > bytes.size() - sizeof(fst_exec)) return Error{"exec filename exceeds record"};
      std::string_view name(reinterpret_cast<const char*>(bytes.data()) + sizeof(fst_exec), w.filename_len);
      name = name.substr(0, name.find('\0'));
      return Record(ExecRecord{static_cast<pid_t>(w.pid), std::string(name)});
    }
    case FST_REC_EXE: {
      if (bytes.size() < sizeof(fst_exe)) return Error{"exe record too short"};
      fst_exe w;
      std::memcpy(&w, bytes.data(), sizeof w);
      if (w.path_len > bytes.size() - sizeof(fst_exe)) return Error{"exe path exceeds record"};
      ExecRecord exec{static_cast<pid_t>(w.pid), {}, true};
      // A truncated walk does not name the file: unknown, never a wrong path.
      if (w.path_enc == FST_PATH_REVERSED_COMPONENTS && !w.truncated)
        exec.filename = from_reversed_components(
            {reinterpret_cast<const char*>(bytes.data()) + sizeof(fst_exe), w.path_len});
      return Record(std::move(exec));
    }
    case FST_REC_DIRFD: {
      if (bytes.size() < sizeof(fst_dirfd)) return Error{"dirfd record too short"};
      fst_dirfd w;
      std::memcpy(&w, bytes.data(), sizeof w);
      if (w.path_len > bytes.size() - sizeof(fst_dirfd)) return Error{"dirfd path exceeds record"};
      std::string_view path(reinterpret_cast<const char*>(bytes.data()) + sizeof(fst_dirfd), w.path_len);
      path = path.substr(0, path.find('\0'));
      return Record(DirFdRecord{static_cast<pid_t>(w.pid), w.fd, w.dirfd, std::string(path)});
    }
    default:
      return Error{fmt::format("unknown record type {}", h.type)};
  }
}

}  // namespace fstrail
