#include <fmt/format.h>
#include <signal.h>

#include "agent/agent.h"
#include "cli/commands.h"
#include "core/text.h"
#include "metrics/server.h"

namespace fstrail::cli {
namespace {

std::atomic<bool> g_reload{false};

void on_reload_signal(int) { g_reload.store(true); }

std::atomic<bool>& install_reload_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_reload_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the backend's wait returns and the loop reloads
  sigaction(SIGHUP, &sa, nullptr);
  return g_reload;
}

struct AgentCommand {
  std::string config_file = guard::kDefaultConfigPath;
  bool check_config = false;

  int run() {
    auto config = agent::load_agent_config(config_file);
    if (!config) {
      fmt::print(stderr, "fstrail: {}\n", config.error().message);
      return kExitUsage;
    }
    if (Status paths = agent::check_agent_paths(*config); !paths) {
      fmt::print(stderr, "fstrail: {}\n", paths.error().message);
      return kExitUsage;
    }
    if (check_config) {
      fmt::print("{}: {} watch(es), {} guard(s), backend {}, db {}, metrics on {}: ok\n", config->file,
                 config->watches.size(), config->guard.rules.size(), config->backend,
                 store::redact_url(config->db), config->metrics_listen);
      return kExitOk;
    }
    if (!config->password_file.empty()) {
      auto password = read_password_file(config->password_file);
      if (!password) {
        fmt::print(stderr, "fstrail: {}: password_file: {}\n", config->file, password.error().message);
        return kExitUsage;
      }
      store::set_postgres_password(std::move(*password));
    }
    // Handlers first: a SIGHUP or SIGTERM during the start-up is not lost.
    const auto& stop = install_stop_handlers();
    auto& reload = install_reload_handler();
    auto started = agent::Agent::start(std::move(*config), config_file);
    if (!started) {
      fmt::print(stderr, "fstrail: {}\n", started.error().message);
      return kExitUsage;
    }
    agent::Agent& a = **started;
    // After the agent (destroyed before it): a scrape may come while the agent finishes.
    auto server = metrics::Server::start(a.config().metrics_listen, [&a] { return a.snapshot(); });
    if (!server) {
      fmt::print(a.log(), "fstrail: [metrics] listen: {}\n", server.error().message);
      a.finish();
      return kExitUsage;
    }
    fmt::print(a.log(), "fstrail: metrics on http://{}/metrics\n", a.config().metrics_listen);
    Status s = a.run(stop, reload);
    a.finish();
    if (!s) {
      fmt::print(a.log(), "fstrail: {}\n", s.error().message);
      return kExitFailure;
    }
    return kExitOk;
  }
};

}  // namespace

RunFn add_agent_command(CLI::App& app) {
  auto cmd = std::make_shared<AgentCommand>();
  CLI::App* sub = app.add_subcommand(
      "agent",
      "Run as a service: record the [[watch]] trees, run the [[guard]]s and keep their alerts, all from "
      "one configuration file");
  sub->add_option("--config", cmd->config_file, "The TOML configuration (see below)")->capture_default_str();
  sub->add_flag(
      "--check-config", cmd->check_config,
      "Validate the whole file (syntax, keys, values, paths) and exit: 0 when good, else 2 with FILE:LINE");
  sub->footer(
      "Configuration (/etc/fstrail/fstrail.toml; keys exactly these; docs/agent.md has them all):\n"
      "  [agent]\n"
      "  backend = \"auto\"                             # as `fstrail watch --backend`\n"
      "  db = \"sqlite:///var/lib/fstrail/events.db\"   # or postgresql://user@host/db\n"
      "  password_file = \"/etc/fstrail/db-password\"   # PostgreSQL password, first line (never in db)\n"
      "  spool = \"/var/lib/fstrail/spool\"             # events wait here while the database is down\n"
      "  retention = \"90d\"                            # events and alerts older than this are deleted\n"
      "  log = \"journal\"                              # or stderr, or /path/file: messages and alerts\n"
      "  [[watch]]                                    # a tree to record (repeatable)\n"
      "  path = \"/etc\"\n"
      "  exclude = [\"*.swp\"]                          # as `fstrail watch --exclude`\n"
      "  events = [\"create\", \"modify\", \"delete\", \"rename\", \"chmod\", \"chown\"]\n"
      "  [[guard]]                                    # as `fstrail guard --help` shows; recorded too\n"
      "  [metrics]\n"
      "  listen = \"127.0.0.1:9764\"                    # the default\n"
      "Signals: SIGHUP re-reads the file (trees added and removed, rules changed, the backend keeps\n"
      "running; a bad file is reported with FILE:LINE and the running configuration kept). SIGTERM\n"
      "drains the kernel queue into the store (or the spool) and exits 0.\n"
      "Alerts: JSON lines in the log and rows in the database: `fstrail query --alerts`.\n"
      "Examples:\n"
      "  sudo fstrail agent --check-config\n"
      "  sudo fstrail agent --config ./fstrail.toml\n"
      "  sudo systemctl reload fstrail      # SIGHUP");
  return [cmd] { return cmd->run(); };
}

}  // namespace fstrail::cli
