// The agent's metrics snapshot against a real backend (root, host tier): the numbers it
// gives while running and after the stop are the events, rows, alerts and reloads made.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "agent/agent.h"
#include "support/temp_dir.h"

namespace fstrail::agent {
namespace {

using namespace std::chrono_literals;

const char* backend_name() {
  const char* b = std::getenv("FSTRAIL_BACKEND");
  return b && *b ? b : "fanotify";
}

std::string config_text(const std::string& base, const std::string& mode_max) {
  return "[agent]\nbackend = \"" + std::string(backend_name()) + "\"\ndb = \"sqlite://" + base +
         "/events.db\"\nspool = \"" + base + "/spool\"\nlog = \"" + base +
         "/agent.log\"\n[[watch]]\npath = \"" + base +
         "/w\"\nevents = [\"create\", \"chmod\"]\n[[guard]]\nname = \"svc\"\npath = \"" + base +
         "/g\"\nowner = 0\ngroup = 0\nmode_max = \"" + mode_max + "\"\n";
}

// In a child: the agent does not report its own process's operations.
void shell(const std::string& command) { ASSERT_EQ(std::system(command.c_str()), 0) << command; }

template <typename Fn>
bool eventually(Fn&& fn) {
  for (int i = 0; i < 200; ++i) {
    if (fn()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return fn();
}

TEST(AgentSnapshot, CountsWhatHappened) {
  ASSERT_EQ(geteuid(), 0u) << "host tier: run as root";
  testing::TempDir dir("agent-snapshot");
  const std::string base = dir.path();
  ::mkdir((base + "/w").c_str(), 0755);
  ::mkdir((base + "/g").c_str(), 0700);
  ::chmod((base + "/g").c_str(), 0700);  // fine under both rules of the test
  const std::string file = base + "/fstrail.toml";
  std::ofstream(file) << config_text(base, "0755");
  auto config = load_agent_config(file);
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto started = Agent::start(std::move(*config), file);
  ASSERT_TRUE(started.ok()) << started.error().message;
  Agent& agent = **started;
  std::atomic<bool> stop{false}, reload{false};
  std::thread loop([&] { EXPECT_TRUE(agent.run(stop, reload).ok()); });

  constexpr int kFiles = 25;
  shell(fmt::format("cd {0}/w && for i in $(seq 0 {1}); do : > f$i; done && chmod 600 f0", base, kFiles - 1));
  shell(fmt::format("umask 022 && : > {}/g/ok", base));  // 0644 under 0755: no alert
  const auto create = static_cast<size_t>(EventKind::kCreate), chmod = static_cast<size_t>(EventKind::kChmod);
  // Read from this thread while the loop runs: the snapshot is built under the agent's locks.
  EXPECT_TRUE(eventually([&] {
    auto s = agent.snapshot();
    return s.events_by_kind[create] == kFiles + 1 && s.events_by_kind[chmod] == 1 &&
           s.rows_stored == kFiles + 2;
  })) << "create "
      << agent.snapshot().events_by_kind[create] << ", rows " << agent.snapshot().rows_stored;

  std::ofstream(file) << config_text(base, "0700");  // the same trees, a tighter rule
  reload = true;
  EXPECT_TRUE(eventually([&] { return agent.snapshot().config_reloads == 1; }));
  shell(fmt::format("chmod 640 {}/g/ok", base));  // a violation under 0700
  EXPECT_TRUE(eventually([&] {
    auto s = agent.snapshot();
    auto it = s.alerts.find({"svc", "violation"});
    return it != s.alerts.end() && it->second == 1;
  }));
  std::ofstream(file) << "[agent]\nbogus = 1\n";
  reload = true;
  EXPECT_TRUE(eventually([&] { return agent.snapshot().config_reload_failures == 1; }));

  stop = true;
  loop.join();
  agent.finish();
  metrics::Snapshot s = agent.snapshot();
  EXPECT_EQ(s.backend, backend_name());
  EXPECT_EQ(s.events_by_kind[create], static_cast<uint64_t>(kFiles + 1));
  EXPECT_EQ(s.events_by_kind[chmod], 2u);
  EXPECT_EQ(s.rows_stored, static_cast<uint64_t>(kFiles + 3));
  EXPECT_EQ(s.lost.total(), 0u);
  EXPECT_EQ(s.config_reloads, 1u);
  EXPECT_EQ(s.config_reload_failures, 1u);
  // The reload's rescan finds g/ok (0644 under 0700) as existing, then the chmod's violation.
  EXPECT_EQ((s.alerts[{"svc", "existing"}]), 1u);
  EXPECT_EQ((s.alerts[{"svc", "violation"}]), 1u);
  EXPECT_EQ(s.spool_bytes, 0u);
  EXPECT_FALSE(s.spool_oldest_age_seconds);
  EXPECT_EQ(s.store_lag_seconds, 0.0);
  EXPECT_EQ(s.remediations["fixed"], 0u);
  EXPECT_GT(s.start_time_seconds, 1.7e9);
}

}  // namespace
}  // namespace fstrail::agent
