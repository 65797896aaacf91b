#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include "metrics/render.h"
#include "metrics/server.h"

namespace fstrail::metrics {
namespace {

Snapshot example() {
  Snapshot s;
  s.backend = "bpf-tracepoint";
  s.events_by_kind[static_cast<size_t>(EventKind::kCreate)] = 5;
  s.lost.add(LossReason::kRingBufferFull, 2);
  s.alerts[{"/srv/app", "owner"}] = 1;
  s.start_time_seconds = 1765000000;
  return s;
}

// curl, a real HTTP client: "<status> <content-type>\n<body>".
std::string curl(const std::string& args) {
  std::string cmd =
      "curl -sS -g --max-time 10 -o /dev/stdout -w '\\n%{http_code} %{content_type}' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (p) pclose(p);
  return out;
}

std::string url(const Server& server, const std::string& path, const std::string& host = "127.0.0.1") {
  return "http://" + host + ":" + std::to_string(server.port()) + path;
}

TEST(MetricsServer, ServesMetricsAndHealthToCurl) {
  std::atomic<int> calls = 0;
  auto server = Server::start("127.0.0.1:0", [&] {
    ++calls;
    return example();
  });
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_NE((*server)->port(), 0);

  EXPECT_EQ(curl(url(**server, "/metrics")),
            render(example()) + "\n200 text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(curl(url(**server, "/metrics?x=1")),
            render(example()) + "\n200 text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(curl(url(**server, "/healthz")), "ok\n\n200 text/plain; charset=utf-8");
  EXPECT_EQ(curl(url(**server, "/")), "404 not found: try /metrics or /healthz\n\n404 text/plain");
  EXPECT_EQ(curl(url(**server, "/metrics/x")), "404 not found: try /metrics or /healthz\n\n404 text/plain");
  EXPECT_EQ(curl("-X POST -d x=1 " + url(**server, "/metrics")),
            "405 method not allowed: only GET\n\n405 text/plain");
  EXPECT_EQ(curl("-X DELETE " + url(**server, "/healthz")),
            "405 method not allowed: only GET\n\n405 text/plain");
  std::string head = curl("-I " + url(**server, "/metrics"));  // HEAD: the headers, no body
  EXPECT_TRUE(head.ends_with("\n200 text/plain; version=0.0.4; charset=utf-8")) << head;
  EXPECT_EQ(head.find("fstrail_"), std::string::npos) << head;
  std::string allow = curl("-i -X PUT -d x " + url(**server, "/metrics"));
  EXPECT_NE(allow.find("Allow: GET, HEAD\r\n"), std::string::npos) << allow;
}

TEST(MetricsServer, ListensOnIpv6Loopback) {
  auto server = Server::start("[::1]:0", [] { return example(); });
  ASSERT_TRUE(server) << server.error().message;
  EXPECT_EQ(curl(url(**server, "/healthz", "[::1]")), "ok\n\n200 text/plain; charset=utf-8");
}

TEST(MetricsServer, BadAddressesSayWhatToWrite) {
  for (const char* listen : {"localhost:9764", "127.0.0.1", "9764", "[::1", "[::1]", "[::1]9764", "::1:9764",
                             "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:97x", "300.1.1.1:9764",
                             "[127.0.0.1]:9764", "127.0.0.1:9764,0.0.0.0:80", ""}) {
    auto server = Server::start(listen, [] { return Snapshot{}; });
    ASSERT_FALSE(server) << listen;
    EXPECT_NE(server.error().message.find("bad listen address"), std::string::npos) << server.error().message;
    EXPECT_NE(server.error().message.find("\"127.0.0.1:9764\""), std::string::npos) << server.error().message;
  }
}

TEST(MetricsServer, AddressInUseSaysSo) {
  auto first = Server::start("127.0.0.1:0", [] { return Snapshot{}; });
  ASSERT_TRUE(first) << first.error().message;
  std::string listen = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = Server::start(listen, [] { return Snapshot{}; });
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().err, EADDRINUSE);
  EXPECT_NE(second.error().message.find("cannot listen on " + listen + ": the address is in use"),
            std::string::npos)
      << second.error().message;
}

TEST(MetricsServer, AddressNotOnThisHostSaysSo) {
  auto server = Server::start("192.0.2.1:9764", [] { return Snapshot{}; });  // TEST-NET-1: never local
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().err, EADDRNOTAVAIL);
  EXPECT_NE(server.error().message.find("no interface of this host has address 192.0.2.1"), std::string::npos)
      << server.error().message;
}

int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Sends raw bytes, returns the status line the server answers ("" when it just closes).
std::string raw_exchange(uint16_t port, const std::string& request) {
  int fd = connect_to(port);
  if (fd < 0) return "connect failed";
  // MSG_NOSIGNAL: the server may close before reading everything.
  for (size_t off = 0; off < request.size();) {
    ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string response;
  char buf[4096];
  ssize_t n;
  // The status line is enough; closing then spares waiting out the server's keep-alive.
  while (response.find("\r\n") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0)
    response.append(buf, static_cast<size_t>(n));
  close(fd);
  return response.substr(0, response.find("\r\n"));
}

TEST(MetricsServer, SurvivesGarbageRequests) {
  auto server = Server::start("127.0.0.1:0", [] { return example(); });
  ASSERT_TRUE(server) << server.error().message;
  uint16_t port = (*server)->port();

  EXPECT_EQ(raw_exchange(port, std::string("\x00\xff\x16\x03\x01 garbage\r\n\r\n", 20)),
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(raw_exchange(port, "GET\r\n\r\n"), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(raw_exchange(port, "GET /metrics HTTP/9.9\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 400 Bad Request");
  // Over the request limits: an 8 kB line, a 4 kB body.
  EXPECT_EQ(raw_exchange(port, "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"),
            "HTTP/1.1 414 URI Too Long");
  EXPECT_EQ(raw_exchange(port, "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n"),
            "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(raw_exchange(port, "POST /metrics HTTP/1.1\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n" +
                                   std::string(4096, 'b')),
            "HTTP/1.1 413 Payload Too Large");
  // Nonsense cpp-httplib tolerates: answered, not crashed on.
  EXPECT_EQ(raw_exchange(port, "GET /healthz HTTP/1.1\r\nContent-Length: -5\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK");
  std::string many_headers;
  for (int i = 0; i < 1000; ++i)
    many_headers += "X-" + std::to_string(i) + ": " + std::string(20, 'v') + "\r\n";
  EXPECT_EQ(raw_exchange(port, "GET /healthz HTTP/1.1\r\n" + many_headers + "Connection: close\r\n\r\n"),
            "HTTP/1.1 200 OK");
  // Half a request, then the client goes away.
  int fd = connect_to(port);
  ASSERT_GE(fd, 0);
  ASSERT_GT(send(fd, "GET /met", 8, MSG_NOSIGNAL), 0);
  close(fd);

  // Still serving.
  EXPECT_EQ(raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
            "HTTP/1.1 200 OK");
  EXPECT_EQ(raw_exchange(port, "GET /healthz HTTP/1.0\r\n\r\n"), "HTTP/1.1 200 OK");
}

TEST(MetricsServer, StopsPromptlyWithAnIdleClientConnected) {
  auto server = Server::start("127.0.0.1:0", [] { return Snapshot{}; });
  ASSERT_TRUE(server) << server.error().message;
  int fd = connect_to((*server)->port());
  ASSERT_GE(fd, 0);
  auto begin = std::chrono::steady_clock::now();
  server->reset();
  auto took = std::chrono::steady_clock::now() - begin;
  close(fd);
  EXPECT_LT(took, std::chrono::seconds(3));
}

}  // namespace
}  // namespace fstrail::metrics
