// The subcommands of the fstrail binary. Each registers its options on the app
// and returns the function that runs it (exit status).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/backend.h"
#include "filter/filter.h"
#include "harden/sandbox.h"

namespace fstrail::cli {

using RunFn = std::function<int()>;

// Exit statuses.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;  // bad arguments, missing paths or privileges

// Options shared by every command that watches trees (watch, record, ...).
struct WatchOptions {
  std::vector<std::string> paths;
  std::string backend = "auto";
  std::string events;
  bool events_given = false;  // --events "" is an error, not "every kind"
  std::vector<std::string> excludes;
  std::string user;
  bool failed = false;
  std::string tracepoint_mode = "auto";
  std::string sandbox = "on";
};
void add_watch_options(CLI::App& app, WatchOptions& options);

struct PreparedWatch {
  WatchSpec spec;
  FilterOptions filter;
};
// Checks paths (exist, directories, canonical) and filters; errors say what to do.
Result<PreparedWatch> prepare_watch(const WatchOptions& options);

// query --path: a relative path made absolute against the current directory (lexically:
// recorded paths are absolute and normalised); a trailing '/' (the whole tree) is kept.
Result<std::string> absolute_query_path(const std::string& path);

// --db-password-file FILE (record, guard, query): the PostgreSQL password from the first line
// of FILE (a regular file of at most 4 KiB), used over one in the connection string.
void add_db_password_file_option(CLI::App& app);
Result<std::string> read_password_file(const std::string& file);
// A password written in a --db value on the command line is readable by every user (ps,
// /proc/PID/cmdline): overwrites it in argv's own bytes with "***" and warns once on `err`.
// Returns how many values were scrubbed.
int scrub_db_passwords(int argc, char** argv, FILE* err);

// Where a recorder on `db` with `spool_dir` creates files: the spool, the SQLite file's directory.
std::vector<std::string> store_dirs(const std::string& db, const std::string& spool_dir);

// "1G", "512M", "100k", "4096" → bytes (--spool-max).
Result<uint64_t> parse_size(const std::string& text);

// Installs SIGINT/SIGTERM handlers that set the returned flag (no SA_RESTART, so
// blocking waits return EINTR).
const std::atomic<bool>& install_stop_handlers();

// --sandbox on|log|off (watch, record, guard): least privilege once started (src/harden).
void add_sandbox_option(CLI::App& app, std::string& mode);
// Enters the sandbox `mode` names for `request`; on failure prints why and returns false.
bool enter_sandbox(const std::string& mode, const harden::SandboxRequest& request);

RunFn add_watch_command(CLI::App& app);
RunFn add_doctor_command(CLI::App& app);
RunFn add_record_command(CLI::App& app);
RunFn add_query_command(CLI::App& app);
RunFn add_guard_command(CLI::App& app);
RunFn add_agent_command(CLI::App& app);
RunFn add_fsmonitor_command(CLI::App& app);
RunFn add_watchd_command(CLI::App& app);
RunFn add_run_command(CLI::App& app);
// `fstrail run PATH... -- COMMAND [ARG...]`: keeps what follows "--" for the run command and
// returns the argc that CLI11 parses (argv unchanged for every other command).
int split_run_command_line(int argc, char** argv);

}  // namespace fstrail::cli
