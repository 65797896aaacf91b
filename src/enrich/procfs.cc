#include "enrich/procfs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "core/unique_fd.h"

namespace fstrail {
namespace {

std::optional<std::string> read_small_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > 65536) break;
  }
  return out;
}

template <typename T>
std::optional<T> parse_number(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

// "Uid:\t0\t0\t0\t0" -> the n-th number after the key.
template <typename T>
std::optional<T> status_field(std::string_view status, std::string_view key, int n) {
  size_t at = status.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = status.substr(at + key.size());
  rest = rest.substr(0, rest.find('\n'));
  for (int i = 0; i < n; ++i) {
    size_t tab = rest.find_first_of("\t ", rest.find_first_not_of("\t "));
    if (tab == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(tab);
  }
  return parse_number<T>(rest);
}

// EPERM: alive, but not ours to signal (another user's process, and fstrail keeps no CAP_KILL
// once started: docs/security.md).
bool process_alive(int pidfd) {
  return syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0 || errno == EPERM;
}

}  // namespace

std::optional<std::string> ProcfsReader::exe(pid_t pid) const {
  std::string link = root_ + "/" + std::to_string(pid) + "/exe";
  char buf[4096];
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> ProcfsReader::cgroup(pid_t pid) const {
  auto text = read_small_file(root_ + "/" + std::to_string(pid) + "/cgroup");
  if (!text) return std::nullopt;
  // cgroup v2: "0::/system.slice/x.service"
  size_t at = text->find("0::");
  if (at == std::string::npos) return std::nullopt;
  std::string path = text->substr(at + 3);
  return path.substr(0, path.find('\n'));
}

namespace {

void parse_status(std::string_view status, ProcessInfo& info) {
  info.ppid = status_field<int32_t>(status, "\nPPid:", 0);
  info.uid = status_field<uint32_t>(status, "\nUid:", 0);
  info.euid = status_field<uint32_t>(status, "\nUid:", 1);
  info.gid = status_field<uint32_t>(status, "\nGid:", 0);
  info.egid = status_field<uint32_t>(status, "\nGid:", 1);
  if (status.rfind("Name:", 0) == 0) {
    std::string_view name = status.substr(5, status.find('\n') - 5);
    while (!name.empty() && (name.front() == '\t' || name.front() == ' ')) name.remove_prefix(1);
    info.comm = std::string(name);
  }
}

}  // namespace

int ProcStatusFiles::open_status(pid_t pid) const {
  std::string path = root_ + "/" + std::to_string(pid) + "/status";
  return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
}

void ProcStatusFiles::clear() {
  for (auto& [pid, fd] : fds_) ::close(fd);
  fds_.clear();
}

void ProcStatusFiles::forget(pid_t pid) {
  auto it = fds_.find(pid);
  if (it == fds_.end()) return;
  ::close(it->second);
  fds_.erase(it);
}

std::optional<ProcessInfo> ProcStatusFiles::read_credentials(pid_t pid) {
  // Ppid and the ids are in the first ~600 bytes; one read gets them (the kernel
  // formats the whole file on each read from offset 0 anyway).
  char buf[4096];
  ssize_t n = -1;
  if (auto it = fds_.find(pid); it != fds_.end()) {
    n = ::pread(it->second, buf, sizeof buf, 0);
    if (n <= 0) forget(pid);  // that process is gone: whatever has the pid now is opened below
  }
  if (n <= 0) {
    if (fds_.size() >= max_open_) clear();
    int fd = open_status(pid);
    if (fd < 0) return std::nullopt;
    n = ::pread(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      ::close(fd);
      return std::nullopt;
    }
    fds_.emplace(pid, fd);
  }
  ProcessInfo info;
  parse_status(std::string_view(buf, static_cast<size_t>(n)), info);
  return info;
}

ProcessInfo ProcfsReader::read_login(pid_t pid) const {
  std::string dir = root_ + "/" + std::to_string(pid);
  ProcessInfo info;
  if (auto v = read_small_file(dir + "/loginuid")) info.loginuid = parse_number<uint32_t>(*v);
  if (auto v = read_small_file(dir + "/sessionid")) info.sessionid = parse_number<uint32_t>(*v);
  // (uid_t)-1: no login user (a daemon, or audit off); unknown is null, never made up.
  if (info.loginuid == kNoLoginUid) info.loginuid.reset();
  if (info.sessionid == kNoLoginUid) info.sessionid.reset();
  return info;
}

std::optional<ProcessInfo> ProcfsReader::read(pid_t pid) const {
  std::string dir = root_ + "/" + std::to_string(pid);
  auto status = read_small_file(dir + "/status");
  if (!status) return std::nullopt;
  ProcessInfo info;
  parse_status(*status, info);
  ProcessInfo login = read_login(pid);
  info.loginuid = login.loginuid;
  info.sessionid = login.sessionid;
  info.exe = exe(pid);
  info.cgroup = cgroup(pid);
  return info;
}

void Enricher::enrich(Event& e, int pidfd) {
  if (!e.pid || pidfd < 0) return;
  auto info = reader_.read(*e.pid);
  if (!info) return;
  if (!process_alive(pidfd)) return;
  fill_unknown_actor_fields(e, *info);
}

void fill_unknown_actor_fields(Event& e, const ProcessInfo& info) {
  auto fill = [](auto& field, const auto& value) {
    if (!field) field = value;
  };
  fill(e.ppid, info.ppid);
  fill(e.uid, info.uid);
  fill(e.gid, info.gid);
  fill(e.euid, info.euid);
  fill(e.egid, info.egid);
  fill(e.loginuid, info.loginuid);
  fill(e.sessionid, info.sessionid);
  fill(e.comm, info.comm);
  fill(e.exe, info.exe);
  fill(e.cgroup, info.cgroup);
}

}  // namespace fstrail
