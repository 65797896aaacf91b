#include "agent/alert_log.h"

#include <fmt/format.h>

#include <vector>

namespace fstrail::agent {

store::StoredAlert stored_alert_of(const guard::Alert& alert, const std::string& host) {
  store::StoredAlert row;
  row.time_ns = alert.time_ns;
  row.host = host;
  row.rule = alert.violation.rule ? alert.violation.rule->name : "";
  row.type = std::string(guard::alert_type_name(alert.type));
  row.path = alert.violation.path;
  if (alert.event) {
    row.kind = std::string(kind_name(alert.event->kind));
    row.uid = alert.event->uid;
    row.loginuid = alert.event->loginuid;
    row.comm = alert.event->comm;
  }
  row.json = guard::alert_to_json(alert);
  return row;
}

AlertLog::AlertLog(FILE* log, store::AlertStore* store, std::string host)
    : log_(log), store_(store), host_(std::move(host)) {}

void AlertLog::alert(const guard::Alert& alert) {
  store::StoredAlert row = stored_alert_of(alert, host_);
  std::string line = row.json + "\n";
  std::fwrite(line.data(), 1, line.size(), log_);
  std::lock_guard lock(mutex_);
  ++counts_.by_rule_type[{row.rule, row.type}];
  if (!store_) return;
  if (pending_.size() >= kMaxPending) {
    ++counts_.dropped;
    return;
  }
  pending_.push_back(std::move(row));
  counts_.pending = pending_.size();
}

void AlertLog::flush() {
  std::fflush(log_);
  if (!store_) return;
  // A database that refused is tried again every few seconds, not at every poll.
  constexpr auto kRetry = std::chrono::seconds(5);
  auto now = std::chrono::steady_clock::now();
  if (now < retry_at_) return;
  std::vector<store::StoredAlert> batch;
  {
    std::lock_guard lock(mutex_);
    if (pending_.empty()) return;
    batch.assign(pending_.begin(), pending_.end());
  }
  Status s = store_->insert(batch);
  std::lock_guard lock(mutex_);
  if (!s) {
    if (!warned_)
      fmt::print(log_, "fstrail: cannot store alerts ({}); {} wait in memory and are retried\n",
                 s.error().message, pending_.size());
    warned_ = true;
    retry_at_ = now + kRetry;
    return;
  }
  warned_ = false;
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(batch.size()));
  counts_.stored += batch.size();
  counts_.pending = pending_.size();
}

AlertLogCounts AlertLog::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

}  // namespace fstrail::agent
