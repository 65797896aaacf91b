// The agent's configuration: the whole of /etc/fstrail/fstrail.toml. [agent] (where events
// go), [[watch]] (trees to record), [[guard]] (guard/config.h, as `fstrail guard` reads
// them) and [metrics]. Unknown keys and bad values are errors naming the file and line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "filter/filter.h"
#include "guard/config.h"

namespace fstrail::agent {

struct WatchBlock {
  std::string path;  // absolute, without a trailing '/'
  std::vector<std::string> exclude;
  KindSet kinds = default_kinds();
  int line = 0;  // where the [[watch]] block starts
};

inline constexpr const char* kDefaultMetricsListen = "127.0.0.1:9764";

struct AgentConfig {
  std::string file;  // escaped onto one line, for messages
  std::string backend = "auto";
  std::string db;             // default: store::default_db_url()
  std::string password_file;  // PostgreSQL: the password, first line ("" = libpq's own ways)
  std::string spool;          // default: <state dir>/spool
  std::optional<int64_t> retention_ns;
  std::string log = "journal";  // "journal" | "stderr" | an absolute file path
  std::vector<WatchBlock> watches;
  guard::GuardConfig guard;
  std::string metrics_listen = kDefaultMetricsListen;
  int agent_line = 0;  // where [agent] starts (0: absent), for messages about its keys
};

Result<AgentConfig> parse_agent_config(const std::string& text, const std::string& file_name);
Result<AgentConfig> load_agent_config(const std::string& file);
// The paths as the file system has them now: every watch and guard path an existing
// directory written without a symbolic link, and at least one tree to watch.
Status check_agent_paths(const AgentConfig& config);

// Every tree the agent watches: the [[watch]] paths and the guarded paths, each once.
std::vector<std::string> watched_roots(const AgentConfig& config);

// Settings of [agent] that only a restart changes (the backend, the database, the spool,
// the log): what differs between `before` and `after`, e.g. "db, spool"; "" when none.
std::string restart_only_changes(const AgentConfig& before, const AgentConfig& after);

}  // namespace fstrail::agent
