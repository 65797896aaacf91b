// The watcher: one socket in the caller's private runtime directory, one WorktreeWatch per
// worktree asked about. Queries are served one at a time (each takes a few milliseconds:
// the cookie round trip); a lock file makes sure a single watcher runs per user.
#include "fsmonitor/watchd.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <random>

#include "core/clock.h"
#include "core/unique_fd.h"
#include "fsmonitor/protocol.h"
#include "fsmonitor/worktree_watch.h"

namespace fstrail::fsmonitor {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

uint64_t random_instance() {
  std::random_device random;
  uint64_t value = (static_cast<uint64_t>(random()) << 32) | random();
  return value ? value : 1;
}

// Reads a request: the client writes it and shuts its side down.
std::optional<Request> read_request(int fd) {
  std::string bytes;
  char buf[4096];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 2000) <= 0) return std::nullopt;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(buf, static_cast<size_t>(n));
    if (bytes.size() > 65536) return std::nullopt;
  }
  return decode_request(bytes);
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

bool same_user(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == ::geteuid();
}

class Watchd {
 public:
  explicit Watchd(const WatchdOptions& options) : options_(options), instance_(random_instance()) {}

  // Answers one client; true when it asked the watcher to stop.
  bool serve(int client) {
    if (!same_user(client)) return false;
    auto request = read_request(client);
    if (!request) {
      write_all(client, "Emalformed request");
      return false;
    }
    if (request->op == 'S') {
      write_all(client, "0");
      return true;
    }
    write_all(client, answer(*request));
    return false;
  }

  void forget_idle() {
    const int64_t now = boottime_now_ns();
    for (auto it = watches_.begin(); it != watches_.end();) {
      bool idle = options_.idle_timeout_s > 0 &&
                  now - it->second->last_query_ns() > int64_t{options_.idle_timeout_s} * 1'000'000'000;
      if (idle) fmt::print(stderr, "fstrail watchd: {} idle, no longer watched\n", it->first);
      it = idle ? watches_.erase(it) : std::next(it);
    }
    if (watches_.empty() && idle_since_ == 0) idle_since_ = now;
    if (!watches_.empty()) idle_since_ = 0;
  }

  bool idle_too_long() const {
    return options_.idle_timeout_s > 0 && idle_since_ != 0 &&
           boottime_now_ns() - idle_since_ > int64_t{options_.idle_timeout_s} * 1'000'000'000;
  }

 private:
  std::string answer(const Request& request) {
    char resolved[PATH_MAX];
    if (!::realpath(request.root.c_str(), resolved) || request.root.front() != '/')
      return fmt::format("Ecannot resolve the worktree {}: {}", request.root, std::strerror(errno));
    std::string root = resolved;
    auto it = watches_.find(root);
    if (it != watches_.end() && it->second->broken()) {
      watches_.erase(it);
      it = watches_.end();
    }
    if (it == watches_.end()) {
      auto watch = WorktreeWatch::start(root, options_.backend, instance_, sequence_);
      if (!watch) return "E" + watch.error().message;
      fmt::print(stderr, "fstrail watchd: watching {} with {}\n", root, (*watch)->backend_name());
      std::string first = (*watch)->first_answer();
      watches_.emplace(root, std::move(*watch));
      idle_since_ = 0;
      return "0" + first;
    }
    auto output = it->second->query(request.token, options_.query_timeout_ms);
    if (!output) return "E" + output.error().message;
    return "0" + *output;
  }

  WatchdOptions options_;
  uint64_t instance_;
  std::atomic<uint64_t> sequence_{0};
  std::map<std::string, std::unique_ptr<WorktreeWatch>> watches_;
  int64_t idle_since_ = 0;
};

Result<UniqueFd> listen_on(const std::string& dir) {
  std::string lock_path = dir + "/watchd.lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) return Error::from_errno("open " + lock_path);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0)
    return Error{fmt::format("another watcher already runs (it holds {})", lock_path), EEXIST};
  std::string path = dir + "/watchd.sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Error{"socket path too long: " + path};
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error::from_errno("socket");
  ::unlink(path.c_str());  // a dead watcher's: we hold the lock
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::from_errno("bind " + path);
  if (::listen(fd.get(), 64) != 0) return Error::from_errno("listen " + path);
  (void)lock.release();  // held until exit
  return fd;
}

}  // namespace

int run_watchd(const WatchdOptions& options) {
  auto dir = private_runtime_dir();
  if (!dir) {
    fmt::print(stderr, "fstrail watchd: {}\n", dir.error().message);
    return 2;
  }
  auto listener = listen_on(*dir);
  if (!listener) {
    fmt::print(stderr, "fstrail watchd: {}\n", listener.error().message);
    return listener.error().err == EEXIST ? 0 : 1;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Watchd watchd(options);
  fmt::print(stderr, "fstrail watchd: listening on {}/watchd.sock\n", *dir);
  while (!g_stop) {
    pollfd pfd{listener->get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, 1000);
    if (ready > 0) {
      UniqueFd client(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (client.valid() && watchd.serve(client.get())) break;
    }
    watchd.forget_idle();
    if (watchd.idle_too_long()) {
      fmt::print(stderr, "fstrail watchd: nothing watched for {} s, exiting\n", options.idle_timeout_s);
      break;
    }
  }
  ::unlink((*dir + "/watchd.sock").c_str());
  return 0;
}

}  // namespace fstrail::fsmonitor
