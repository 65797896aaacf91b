// Least privilege for the long-running commands (watch, record, guard, the agent): once the
// backend is started, keep only the capabilities the command still uses (effective, permitted
// and bounding set; inheritable and ambient cleared), set no_new_privs, and install a seccomp
// allow-list of the system calls it makes (syscall_allowlist.cc). Which capability each
// command/backend pair keeps, and why: docs/security.md.
//
// Call enter_sandbox() on the main thread before starting any other thread: capabilities are
// per thread and a new thread copies its creator's (the seccomp filter is synchronised to
// every thread, capabilities are not). Commands that start a user's program (`fstrail run`)
// must not call it: the restrictions would pass on to that program.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace fstrail::harden {

enum class SandboxMode {
  kOn,   // a system call outside the allow-list kills the process (SIGSYS)
  kLog,  // debugging: it fails with ENOSYS and is named on stderr; the process goes on
  kOff,  // debugging only: every capability kept, no filter (a warning says so)
};
Result<SandboxMode> parse_sandbox_mode(std::string_view text);

struct SandboxRequest {
  std::string command;       // "watch", "record", "guard", "agent": for messages
  std::string backend;       // the backend that runs (its name() after start_backend)
  bool remediates = false;   // guard: chown/chmod back (not with --dry-run)
  bool scans_trees = false;  // guard: walks its trees (scan, re-checks) as any user's files
  // Directories the command creates files in after the sandbox is on (SQLite file, spool,
  // quarantine): one not writable by this process's owner keeps CAP_DAC_OVERRIDE.
  std::vector<std::string> write_dirs;
};

struct KeptCapability {
  int cap;          // CAP_*
  std::string why;  // one line, for --help-like output and tests
};
// The capabilities `request` keeps (the table of docs/security.md, in code).
std::vector<KeptCapability> capabilities_for(const SandboxRequest& request);

// Drops capabilities, sets no_new_privs and installs the filter. Any step that fails is an
// error naming it (nothing is skipped silently); kOff only warns on `log`.
Status enter_sandbox(const SandboxRequest& request, SandboxMode mode, FILE* log);

// The allow-list (syscall_allowlist.cc): names of the system calls `backend` makes after
// start-up, in every command.
std::vector<std::string_view> allowed_syscalls(std::string_view backend);
// Installs the filter (no_new_privs must be set). kLog traps instead of killing.
Status install_syscall_filter(std::string_view backend, SandboxMode mode);

}  // namespace fstrail::harden
