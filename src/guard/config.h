// Guard configuration: ownership and mode invariants on directory trees, read
// from TOML (/etc/fstrail/fstrail.toml). Errors name the file, line and problem.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/result.h"

namespace fstrail::guard {

struct GuardRule {
  std::string name;
  std::string path;  // absolute; the whole subtree
  uid_t owner = 0;
  gid_t group = 0;
  mode_t mode_max = 07777;  // permission bits beyond these are a violation
  bool remediate = false;   // chown/chmod back to the expected values
  bool enforce = false;     // deny violating operations in the kernel (bpf-lsm)
  std::vector<uid_t> exempt_users;
  int line = 0;       // where the [[guard]] block starts, for messages
  int path_line = 0;  // where its path is written
};

struct GuardConfig {
  std::string file;  // for messages: escaped onto one line
  std::vector<GuardRule> rules;
};

// Exempt users an enforcing rule can have (FST_GUARD_MAX_EXEMPT in include/fstrail/guard_map.h).
inline constexpr size_t kMaxExemptEnforced = 8;

inline constexpr size_t kMaxConfigBytes = 1 << 20;  // a regular file, at most this big

inline constexpr const char* kDefaultConfigPath = "/etc/fstrail/fstrail.toml";

// The whole file is also `fstrail agent`'s ([agent], [[watch]], [metrics]: src/agent/config.h);
// guard takes only its [[guard]] blocks and leaves those tables to the agent to check.
inline constexpr const char* kAgentTables[] = {"agent", "watch", "metrics"};

// The file's text: a regular file of at most kMaxConfigBytes (errors say what to do).
Result<std::string> read_config_file(const std::string& file);
Result<GuardConfig> load_config(const std::string& file);
// require_guard: an error when there is no [[guard]] block (guard alone has nothing to do then).
Result<GuardConfig> parse_config(const std::string& text, const std::string& file_name, bool require_guard = true);
// Each guarded path, checked once at load against the file system: an existing directory,
// reached without a symbolic link (the error names the real path to write instead).
Status check_paths(const GuardConfig& config);

// The mode bits a rule allows for an object: mode_max, and for directories the
// search (x) bit of every class that may read.
mode_t allowed_mode(const GuardRule& rule, bool is_dir);

}  // namespace fstrail::guard
