// The guard engine: checks every file event under a guarded tree against its
// rule, alerts with the actor behind a violation, and remediates when asked.
// It is a Sink, so it sits at the end of the ordinary watch pipeline.
#pragma once

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

struct EngineCounts {
  uint64_t violations = 0, alerts = 0, summaries = 0, fixed = 0, remediation_failures = 0, exempt = 0, denied = 0;
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
  void finish();                            // every pending summary, at exit
  const EngineCounts& counts() const { return counts_; }

 private:
  void check_path(const std::string& path, const Event* event, Alert::Type type);
  void scan_tree(const GuardRule& rule, const std::string& root, const Event* event, Alert::Type type);
  bool exempt(const GuardRule& rule, const Event& event) const;
  void on_denied(const Event& event);
  void emit(Alert alert, bool remediate);

  struct InodeState {
    uid_t uid;
    gid_t gid;
    mode_t mode;
    bool operator==(const InodeState&) const = default;
  };
  static constexpr size_t kMaxRemembered = 1 << 16;

  const Policy& policy_;
  AlertOutput& output_;
  Remediator* remediator_;
  std::vector<Sink*> event_sinks_;  // e.g. the store: every event, not just alerts
  Now now_;
  BurstAggregator bursts_;
  EngineCounts counts_;
  std::map<std::pair<dev_t, ino_t>, InodeState> alerted_;  // last violating state alerted, per object
};

}  // namespace fstrail::guard
