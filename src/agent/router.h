// Where each event goes in the agent: into the store when a [[watch]] wants it (its events
// and excludes) or when it lies in a guarded tree, and to the guard engine when it lies in a
// guarded tree. Events under no current root (a tree removed by a reload, whose last events
// were already queued) are dropped and counted. The routes change only on the event thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/config.h"
#include "filter/filter.h"
#include "sink/sink.h"

namespace fstrail::agent {

struct Routes {
  struct Watch {
    std::string root;
    Filter filter;
  };
  std::vector<Watch> watches;        // longest root first: the innermost [[watch]] decides
  std::vector<std::string> guarded;  // guarded roots
};

Routes routes_of(const AgentConfig& config);

struct RouterCounts {
  std::array<uint64_t, kEventKindCount> stored_by_kind{};  // handed to the recorder
  uint64_t excluded = 0;                                   // a [[watch]]'s events or exclude said no
  uint64_t outside = 0;                                    // under no current root
};

class Router final : public Sink {
 public:
  // `guard` may be null (no [[guard]] block); set_guard changes it on reload.
  Router(Routes routes, Sink& recorder, Sink* guard);

  void write(const Event& event) override;
  void flush() override;
  void set_routes(Routes routes) { routes_ = std::move(routes); }
  void set_guard(Sink* guard) { guard_ = guard; }
  const RouterCounts& counts() const { return counts_; }

 private:
  bool guarded(const Event& event) const;
  const Routes::Watch* watch_of(const std::string& path) const;

  Routes routes_;
  Sink& recorder_;
  Sink* guard_;
  RouterCounts counts_;
};

}  // namespace fstrail::agent
