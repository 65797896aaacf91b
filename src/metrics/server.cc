#include "metrics/server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "metrics/render.h"

namespace fstrail::metrics {
namespace {

// A scrape is a few hundred bytes of request: anything much larger is not Prometheus.
constexpr size_t kMaxRequestBody = 1024;
constexpr int kWorkerThreads = 4;
// Also bounds how long an idle or slow client holds one of the workers.
constexpr int kTimeoutSeconds = 2;

struct ListenAddress {
  std::string host;  // numeric, without brackets
  int family = AF_INET;
  uint16_t port = 0;
};

Result<ListenAddress> parse_listen(std::string_view listen) {
  auto bad = [&](std::string_view why) {
    return Error{
        fmt::format("metrics: bad listen address \"{}\": {}; write an IP address and a port, like "
                    "\"127.0.0.1:9764\" or \"[::1]:9764\" ([metrics] listen)",
                    listen, why)};
  };
  ListenAddress out;
  std::string_view port;
  if (listen.starts_with('[')) {
    size_t close = listen.find(']');
    if (close == std::string_view::npos) return bad("no ']' after the IPv6 address");
    out.host = listen.substr(1, close - 1);
    out.family = AF_INET6;
    if (listen.substr(close + 1).size() < 2 || listen[close + 1] != ':') return bad("no port after ']'");
    port = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    out.host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) return bad("an IPv6 address goes in brackets");
  }
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(out.family, out.host.c_str(), buf) != 1)
    return bad(out.family == AF_INET6 ? "not an IPv6 address"
                                      : "not an IPv4 address (host names are not looked up)");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    return bad("the port is not a number from 0 to 65535");
  out.port = static_cast<uint16_t>(value);
  return out;
}

// cpp-httplib says only that binding failed: bind once more ourselves to learn why.
Error bind_error(const ListenAddress& address, std::string_view listen) {
  int fd = socket(address.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    sockaddr_storage sa{};
    socklen_t len = 0;
    if (address.family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&sa);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(address.port);
      inet_pton(AF_INET6, address.host.c_str(), &in6->sin6_addr);
      len = sizeof *in6;
    } else {
      auto* in4 = reinterpret_cast<sockaddr_in*>(&sa);
      in4->sin_family = AF_INET;
      in4->sin_port = htons(address.port);
      inet_pton(AF_INET, address.host.c_str(), &in4->sin_addr);
      len = sizeof *in4;
    }
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) err = errno;
    close(fd);
  }
  std::string what = fmt::format("metrics: cannot listen on {}", listen);
  switch (err) {
    case EADDRINUSE:
      return Error{
          fmt::format("{}: the address is in use (another process listens there: ss -ltnp 'sport = :{}'); "
                      "stop it or choose another [metrics] listen",
                      what, address.port),
          err};
    case EADDRNOTAVAIL:
      return Error{fmt::format("{}: no interface of this host has address {}; use 127.0.0.1, [::1] or one of "
                               "this host's addresses ([metrics] listen)",
                               what, address.host),
                   err};
    case EAFNOSUPPORT:
      return Error{fmt::format("{}: this host has no {} support; use an address of the other family", what,
                               address.family == AF_INET6 ? "IPv6" : "IPv4"),
                   err};
    case EACCES:
      return Error{
          fmt::format("{}: ports below 1024 need CAP_NET_BIND_SERVICE; use a port above 1023 such as 9764",
                      what),
          err};
    case 0:
      return Error{
          fmt::format("{}: binding failed, and a second try succeeded (a race with another process?)", what)};
    default:
      return Error::from_errno(what, err);
  }
}

std::string_view status_text(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "not found: try /metrics or /healthz";
    case 405:
      return "method not allowed: only GET";
    case 413:
      return "request too large";
    default:
      return "error";
  }
}

}  // namespace

struct Server::Impl {
  httplib::Server http;
  std::thread thread;
  std::atomic<bool> listen_returned = false;
  uint16_t port = 0;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

uint16_t Server::port() const { return impl_->port; }

Result<std::unique_ptr<Server>> Server::start(std::string_view listen, std::function<Snapshot()> snapshot) {
  auto address = parse_listen(listen);
  if (!address) return address.error();

  auto impl = std::make_unique<Impl>();
  httplib::Server& http = impl->http;
  http.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  http.set_payload_max_length(kMaxRequestBody);
  http.set_read_timeout(kTimeoutSeconds, 0);
  http.set_write_timeout(kTimeoutSeconds, 0);
  http.set_keep_alive_timeout(kTimeoutSeconds);
  http.set_address_family(address->family);
  // cpp-httplib's default also sets SO_REUSEPORT, which would let a second agent bind the same
  // port and silently take half the scrapes: only SO_REUSEADDR (restart while in TIME_WAIT).
  http.set_socket_options([](int fd) {
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });

  http.Get("/metrics", [snapshot = std::move(snapshot)](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(snapshot()), kExpositionContentType);
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain; charset=utf-8");
  });
  // Only GET (and HEAD, which cpp-httplib answers from the GET handlers) on the two paths.
  httplib::Server::Handler not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET, HEAD");
  };
  const std::string paths = "/metrics|/healthz";
  http.Post(paths, not_allowed);
  http.Put(paths, not_allowed);
  http.Patch(paths, not_allowed);
  http.Delete(paths, not_allowed);
  http.Options(paths, not_allowed);
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty())
      res.set_content(fmt::format("{} {}\n", res.status, status_text(res.status)), "text/plain");
  });

  if (address->port == 0) {
    int port = http.bind_to_any_port(address->host);
    if (port <= 0) return bind_error(*address, listen);
    impl->port = static_cast<uint16_t>(port);
  } else {
    if (!http.bind_to_port(address->host, address->port)) return bind_error(*address, listen);
    impl->port = address->port;
  }
  impl->thread = std::thread([impl = impl.get()] {
    impl->http.listen_after_bind();
    impl->listen_returned = true;
  });
  // stop() is a no-op until the listening loop runs: wait for it, so the destructor cannot miss it.
  while (!http.is_running() && !impl->listen_returned)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!http.is_running() && impl->listen_returned) {
    impl->thread.join();
    return Error{
        fmt::format("metrics: the HTTP server on {} stopped as soon as it started (accept failed)", listen)};
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

}  // namespace fstrail::metrics
