// `fstrail run`: watches trees and runs a developer's command after changes, debounced,
// settled, with git's ignore rules, optionally blind to the command's own changes.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "devtools/batcher.h"

namespace fstrail::devtools {

// What to do with changes that come while the command is still running.
enum class OnBusy {
  kQueue,      // run again once it exits (one run for everything that came meanwhile)
  kRestart,    // stop its process group (SIGTERM, SIGKILL after stop_timeout), run again
  kSignal,     // send `signal` to its process group; no new run
  kDoNothing,  // drop the changes
};

struct RunOptions {
  WatchSpec spec;  // roots: absolute, canonical
  std::string backend = "auto";
  std::vector<std::string> excludes;  // gitignore patterns relative to each root
  std::vector<std::string> command;
  BatchTiming timing;
  OnBusy on_busy = OnBusy::kQueue;
  int signal = 15;  // SIGTERM
  int stop_timeout_ms = 5000;
  bool postpone = false;
  bool ignore_self = false;
  bool paths_to_stdin = false;
  bool clear = false;
  bool once = false;
};

// Runs until `stop` is set (status 0), or with `once` until the command ran once (its
// status). A setup failure (backend, ignore rules, --ignore-self without attribution) is
// printed and gives 2.
int run_on_changes(const RunOptions& options, const std::atomic<bool>& stop);

// The backends that can tell which process made a change (--ignore-self).
bool backend_attributes(std::string_view backend_name);

// The events file's JSON: {"rescan":BOOL,"lost":N,"changes":[EVENT...]}, each EVENT an
// object of docs/events.md.
std::string batch_to_json(const Batch& batch);

}  // namespace fstrail::devtools
