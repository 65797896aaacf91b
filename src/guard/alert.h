// Guard alerts: a violation with its rule, expected vs actual values, the actor
// behind it and what remediation did; and the summary of a burst.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/event.h"
#include "guard/policy.h"
#include "guard/remediate.h"

namespace fstrail::guard {

struct Alert {
  enum class Type { kExisting, kViolation, kSummary, kDenied } type = Type::kViolation;
  int64_t time_ns = 0;
  Violation violation;                  // kSummary: the first one of the burst
  std::optional<Event> event;           // the operation that caused it (absent for kExisting)
  std::optional<std::string> cmdline;   // the actor's command line, from /proc when still there
  std::optional<Remediation> action;
  uint64_t count = 1;                   // kSummary: violations in the burst
  std::vector<std::string> first_paths;  // kSummary
};

std::string_view alert_type_name(Alert::Type type);
std::string alert_to_json(const Alert& alert);
std::string alert_to_text(const Alert& alert);

// Turns a burst from one process into a few alerts and one summary: the first
// `individual` violations of an actor (rule, pid) are alerted at once; the rest are
// counted, and when the actor has been quiet for `quiet` a summary is due.
class BurstAggregator {
 public:
  using Clock = std::chrono::steady_clock;
  BurstAggregator(int individual = 3, Clock::duration quiet = std::chrono::seconds(1))
      : individual_(individual), quiet_(quiet) {}

  // True when this alert is to be shown on its own.
  bool admit(const Alert& alert, Clock::time_point now);
  // Summaries of bursts that ended by `now` (all of them when `flush_all`).
  std::vector<Alert> due(Clock::time_point now, bool flush_all = false);

 private:
  struct Burst {
    Alert first;
    uint64_t count = 0;
    std::vector<std::string> paths;
    Clock::time_point last;
  };
  int individual_;
  Clock::duration quiet_;
  std::map<std::pair<std::string, int32_t>, Burst> bursts_;
};

}  // namespace fstrail::guard
