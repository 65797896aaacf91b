// The agent's guard alerts: each one a JSON line in the log (guard::alert_to_json) and a
// row of fstrail_alerts (store/alert_store.h). Rows wait in memory while the database is
// unavailable (at most kMaxPending; beyond that they are dropped and counted, the log line
// stays) and are written at the next flush that finds it back.
#pragma once

#include <chrono>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "guard/engine.h"
#include "store/alert_store.h"

namespace fstrail::agent {

struct AlertLogCounts {
  std::map<std::pair<std::string, std::string>, uint64_t> by_rule_type;  // (rule name, alert type)
  uint64_t stored = 0;                                                   // rows the database took
  uint64_t pending = 0;                                                  // waiting for the database
  uint64_t dropped = 0;  // not stored: more than kMaxPending waited
};

store::StoredAlert stored_alert_of(const guard::Alert& alert, const std::string& host);

class AlertLog final : public guard::AlertOutput {
 public:
  static constexpr size_t kMaxPending = 100000;
  // `store` may be null (tests; the log only).
  AlertLog(FILE* log, store::AlertStore* store, std::string host = store::local_host_name());

  void alert(const guard::Alert& alert) override;
  void flush() override;
  AlertLogCounts counts() const;  // thread-safe

 private:
  FILE* log_;
  store::AlertStore* store_;
  std::string host_;
  std::deque<store::StoredAlert> pending_;
  bool warned_ = false;  // the database refused: said once until it takes rows again
  std::chrono::steady_clock::time_point retry_at_{};  // after a refusal, the next try
  mutable std::mutex mutex_;
  AlertLogCounts counts_;
};

}  // namespace fstrail::agent
