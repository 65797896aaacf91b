// The hook's side: connect to the caller's watcher (starting it when none answers), send
// one request, copy the answer to stdout. Nothing else runs on this path: git waits for it.
#include "fsmonitor/client.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "core/unique_fd.h"
#include "fsmonitor/protocol.h"

namespace fstrail::fsmonitor {
namespace {

UniqueFd connect_to(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return UniqueFd();
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return UniqueFd();
  return fd;
}

// Double fork: the watcher is nobody's child (git does not wait for it), in its own
// session, with its output in the private directory's watchd.log.
void spawn_watchd(const std::string& dir) {
  // The fstrail beside this executable (fstrail itself or fstrail-fsmonitor).
  char self[PATH_MAX];
  ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) return;
  std::string exe(self, static_cast<size_t>(len));
  exe = exe.substr(0, exe.rfind('/') + 1) + "fstrail";
  pid_t child = ::fork();
  if (child < 0) return;
  if (child == 0) {
    ::setsid();
    if (::fork() != 0) ::_exit(0);
    int null = ::open("/dev/null", O_RDWR);
    int log = ::open((dir + "/watchd.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ::dup2(null, 0);
    ::dup2(log >= 0 ? log : null, 1);
    ::dup2(log >= 0 ? log : null, 2);
    // Nothing of git's: a pipe end kept open here would make git wait for the watcher's exit.
    ::close_range(3, ~0U, 0);
    if (::chdir("/") != 0) ::_exit(127);
    ::execl(exe.c_str(), "fstrail", "watchd", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
}

// Connects, starting the watcher when none listens; waits for it at most ~5 s.
UniqueFd connect_or_start(const std::string& dir) {
  const std::string socket_path = dir + "/watchd.sock";
  UniqueFd fd = connect_to(socket_path);
  for (int attempt = 0; !fd.valid() && attempt < 500; ++attempt) {
    if (attempt % 100 == 0) spawn_watchd(dir);  // again later: one that was exiting may have kept the lock
    ::usleep(10'000);
    fd = connect_to(socket_path);
  }
  return fd;
}

Result<std::string> exchange(int fd, const std::string& request) {
  for (std::string_view rest = request; !rest.empty();) {
    ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error::from_errno("send to the watcher");
    rest.remove_prefix(static_cast<size_t>(n));
  }
  ::shutdown(fd, SHUT_WR);
  std::string reply;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("read from the watcher");
    if (n == 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  if (reply.empty()) return Error{"the watcher closed the connection without an answer"};
  if (reply[0] != '0') return Error{reply.substr(1)};
  return reply.substr(1);
}

}  // namespace

int run_fsmonitor_hook(const std::string& version, const std::string& token, FILE* out) {
  if (version != "2") {
    // git then scans everything; with the version unset it tries 2 first.
    fmt::print(stderr, "fstrail fsmonitor: hook protocol version {} is not supported (only 2)\n", version);
    return 1;
  }
  auto dir = private_runtime_dir();
  if (!dir) {
    fmt::print(stderr, "fstrail fsmonitor: {}\n", dir.error().message);
    return 1;
  }
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) {
    fmt::print(stderr, "fstrail fsmonitor: getcwd: {}\n", std::strerror(errno));
    return 1;
  }
  UniqueFd fd = connect_or_start(*dir);
  if (!fd.valid()) {
    fmt::print(stderr, "fstrail fsmonitor: cannot reach or start the watcher (see {}/watchd.log)\n", *dir);
    return 1;
  }
  auto answer = exchange(fd.get(), encode_request(Request{'Q', cwd, token}));
  if (!answer) {
    fmt::print(stderr, "fstrail fsmonitor: {}\n", answer.error().message);
    return 1;
  }
  if (std::fwrite(answer->data(), 1, answer->size(), out) != answer->size() || std::fflush(out) != 0)
    return 1;
  return 0;
}

int stop_watchd() {
  auto dir = private_runtime_dir();
  if (!dir) {
    fmt::print(stderr, "fstrail watchd: {}\n", dir.error().message);
    return 2;
  }
  UniqueFd fd = connect_to(*dir + "/watchd.sock");
  if (!fd.valid()) {
    fmt::print(stderr, "fstrail watchd: no watcher runs for you ({}/watchd.sock)\n", *dir);
    return 0;
  }
  auto answer = exchange(fd.get(), encode_request(Request{'S', {}, {}}));
  if (!answer) {
    fmt::print(stderr, "fstrail watchd: {}\n", answer.error().message);
    return 1;
  }
  // Gone once its lock is free: wait for that, so a new watcher can start right after.
  UniqueFd lock(::open((*dir + "/watchd.lock").c_str(), O_RDWR | O_CLOEXEC));
  for (int i = 0; lock.valid() && i < 500 && ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0; ++i)
    ::usleep(10'000);
  fmt::print(stderr, "fstrail watchd: stopped\n");
  return 0;
}

}  // namespace fstrail::fsmonitor
