// The agent's HTTP endpoint: GET /metrics (render() of a fresh snapshot) and GET /healthz,
// served by cpp-httplib on threads of its own. Destroying the Server stops it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "core/result.h"
#include "metrics/snapshot.h"

namespace fstrail::metrics {

class Server {
 public:
  // listen: "127.0.0.1:9764", "0.0.0.0:9764" or "[::1]:9764" (port 0: any free port, see port()).
  // snapshot is called on a server thread for each scrape; it must be thread-safe.
  static Result<std::unique_ptr<Server>> start(std::string_view listen, std::function<Snapshot()> snapshot);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;  // the port bound

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fstrail::metrics
