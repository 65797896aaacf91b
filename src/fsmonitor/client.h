// The hook's side of `fstrail watchd` (connect, ask, print), kept small: git runs the hook
// on every command, so it links neither the backends nor the stores (fstrail-fsmonitor).
#pragma once

#include <cstdio>
#include <string>

namespace fstrail::fsmonitor {

// The hook: `fstrail fsmonitor VERSION TOKEN` in the worktree. Starts the watcher (the
// `fstrail` beside this executable) when none answers. Exit status 0 with git's answer on
// `out`; otherwise 1 and a line on stderr (git then checks every file itself).
int run_fsmonitor_hook(const std::string& version, const std::string& token, FILE* out);

// `fstrail watchd --stop`: stops the caller's watcher, if one runs.
int stop_watchd();

}  // namespace fstrail::fsmonitor
