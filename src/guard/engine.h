// The guard engine: checks every file event under a guarded tree against its
// rule, alerts with the actor behind a violation, and remediates when asked.
// It is a Sink, so it sits at the end of the ordinary watch pipeline.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>

#include "guard/alert.h"
#include "guard/policy.h"
#include "guard/remediate.h"
#include "sink/sink.h"

namespace fstrail::guard {

class AlertOutput {
 public:
  virtual ~AlertOutput() = default;
  virtual void alert(const Alert& alert) = 0;
  virtual void flush() = 0;
};

// JSON lines (`json`) or readable lines, to `out`.
std::unique_ptr<AlertOutput> make_alert_output(FILE* out, bool json);

// With remediation, every violation ends as exactly one of: fixed, not fixed (with its
// reason), a remediation failure, moot (when its turn came the object was gone or
// already right again), or still queued.
struct EngineCounts {
  uint64_t violations = 0, alerts = 0, summaries = 0, fixed = 0, remediation_failures = 0, exempt = 0, denied = 0;
  uint64_t not_fixed = 0, moot = 0, queued = 0;
  std::map<std::string, uint64_t> not_fixed_reasons;  // not fixed and failures, by reason
  std::vector<std::string> not_fixed_first;            // "path: detail" of the first kListed of them
  static constexpr size_t kListed = 20;
};

class GuardEngine final : public Sink {
 public:
  using Now = std::function<BurstAggregator::Clock::time_point()>;
  GuardEngine(const Policy& policy, AlertOutput& output, Remediator* remediator,
              std::vector<Sink*> event_sinks = {}, Now now = BurstAggregator::Clock::now);

  // Reports (and with `remediate`, fixes) what already breaks a rule. Returns violations found.
  uint64_t scan_existing();

  void write(const Event& event) override;  // Sink: one file event
  void flush() override;                    // alerts for bursts that ended
  void finish();                            // every pending summary, at exit; queued fixes end as not fixed
  const EngineCounts& counts() const { return counts_; }

 private:
  void check_path(const std::string& path, const Event* event, Alert::Type type);
  void scan_tree(const GuardRule& rule, const std::string& root, const Event* event, Alert::Type type);
  bool exempt(const GuardRule& rule, const Event& event) const;
  void on_denied(const Event& event);
  void emit(Alert alert, bool remediate);
  void remediate(Alert& alert);
  void record(const Violation& violation, const Remediation& outcome);
  void drain_queue();

  struct InodeState {
    uid_t uid;
    gid_t gid;
    mode_t mode;
    bool operator==(const InodeState&) const = default;
  };
  static constexpr size_t kMaxRemembered = 1 << 16;
  // Violations waiting for the rate limit: re-checked by path when their turn comes.
  struct Queued {
    const GuardRule* rule;
    std::string path;
  };
  static constexpr size_t kMaxQueued = 1 << 20;

  const Policy& policy_;
  AlertOutput& output_;
  Remediator* remediator_;
  std::vector<Sink*> event_sinks_;  // e.g. the store: every event, not just alerts
  Now now_;
  BurstAggregator bursts_;
  EngineCounts counts_;
  std::map<std::pair<dev_t, ino_t>, InodeState> alerted_;  // last violating state alerted, per object
  std::deque<Queued> queue_;
  bool rescan_when_drained_ = false;  // the queue overflowed: look at every tree again
};

}  // namespace fstrail::guard
