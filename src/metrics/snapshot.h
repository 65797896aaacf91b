// What the agent exports at /metrics: a plain snapshot the agent fills (under its own
// locks) each time it is asked, and the metrics stage renders in Prometheus's text format.
// Names, labels and units of each field are in docs/metrics.md.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "core/event.h"
#include "core/loss.h"

namespace fstrail::metrics {

struct Snapshot {
  std::string backend;  // the backend in use ("fanotify", "bpf-tracepoint", ...)
  std::array<uint64_t, kEventKindCount> events_by_kind{};  // delivered to sinks/store
  LossCounts lost;                                          // every reason the summary knows
  // Kernel queue / ring buffer fill, 0..1; unset where the backend cannot tell.
  std::optional<double> queue_fill_ratio;
  uint64_t spool_bytes = 0;
  std::optional<double> spool_oldest_age_seconds;  // unset when the spool is empty
  uint64_t rows_stored = 0;
  double store_lag_seconds = 0;  // now minus the time of the newest event stored
  // (rule, type) -> count, e.g. ("/srv/app", "owner").
  std::map<std::pair<std::string, std::string>, uint64_t> alerts;
  // result ("fixed", "failed", "not-remediated", ...) -> count.
  std::map<std::string, uint64_t> remediations;
  uint64_t config_reloads = 0;
  uint64_t config_reload_failures = 0;
  double start_time_seconds = 0;  // Unix time the agent started
};

}  // namespace fstrail::metrics
