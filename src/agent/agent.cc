#include "agent/agent.h"

#include <fcntl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/clock.h"
#include "core/text.h"

namespace fstrail::agent {
namespace {

constexpr int64_t kPublishEveryNs = 100'000'000;
constexpr int64_t kAlertRetentionEveryNs = 3'600'000'000'000;
constexpr uint64_t kSpoolMaxBytes = 1ull << 30;

void add_counts(guard::EngineCounts& sum, const guard::EngineCounts& c) {
  sum.violations += c.violations;
  sum.alerts += c.alerts;
  sum.summaries += c.summaries;
  sum.fixed += c.fixed;
  sum.remediation_failures += c.remediation_failures;
  sum.exempt += c.exempt;
  sum.denied += c.denied;
  sum.not_fixed += c.not_fixed;
  sum.moot += c.moot;
}

bool has_enforcing(const AgentConfig& c) {
  return std::any_of(c.guard.rules.begin(), c.guard.rules.end(), [](const auto& r) { return r.enforce; });
}

bool same_rules(const AgentConfig& a, const AgentConfig& b) {
  auto key = [](const guard::GuardRule& r) {
    return std::tie(r.name, r.path, r.owner, r.group, r.mode_max, r.remediate, r.enforce, r.exempt_users);
  };
  return std::equal(a.guard.rules.begin(), a.guard.rules.end(), b.guard.rules.begin(), b.guard.rules.end(),
                    [&](const auto& x, const auto& y) { return key(x) == key(y); });
}

}  // namespace

Result<FILE*> open_log(const std::string& log) {
  if (log == "journal" || log == "stderr") return stderr;
  FILE* f = std::fopen(log.c_str(), "ae");
  if (!f)
    return Error{fmt::format("cannot open the log {}: {}", escape_for_terminal(log), std::strerror(errno)),
                 errno};
  setvbuf(f, nullptr, _IOLBF, 0);
  return f;
}

Result<std::unique_ptr<Agent>> Agent::start(AgentConfig config, std::string config_path) {
  std::unique_ptr<Agent> agent(new Agent());
  agent->config_ = std::move(config);
  agent->config_path_ = std::move(config_path);
  agent->published_.start_time_seconds = static_cast<double>(realtime_now_ns()) / 1e9;
  if (Status s = agent->open_outputs(); !s) return s.error();
  if (Status s = agent->start_backend(); !s) return s.error();
  agent->start_guard(agent->config_);
  agent->publish();
  return agent;
}

Agent::~Agent() {
  if (!finished_ && recorder_) recorder_->close();
  if (own_log_) std::fclose(log_);
}

Status Agent::open_outputs() {
  auto log = open_log(config_.log);
  if (!log) return log.error();
  log_ = *log;
  own_log_ = log_ != stderr;
  store::RecorderOptions options;
  options.retention_ns = config_.retention_ns;
  options.log = log_;
  auto recorder = store::start_recorder(config_.db, config_.spool, kSpoolMaxBytes, options);
  if (!recorder) return recorder.error();
  recorder_ = std::move(*recorder);
  auto alerts = store::open_alert_store(config_.db);
  // The recorder spools while the database is down; alerts then wait in memory.
  if (alerts)
    alert_store_ = std::move(*alerts);
  else
    fmt::print(log_, "fstrail: alerts are not stored until the agent restarts: {}\n", alerts.error().message);
  alert_log_ = std::make_unique<AlertLog>(log_, alert_store_.get());
  return Ok{};
}

Status Agent::start_backend() {
  WatchSpec spec;
  spec.roots = watched_roots(config_);
  for (const auto& w : config_.watches) spec.kinds |= w.kinds;  // `open` only when a watch asks
  std::string backend = config_.backend;
  if (has_enforcing(config_)) {
    for (const auto& rule : config_.guard.rules) spec.guarded_trees.push_back(guard::guarded_tree_of(rule));
    if (backend == "auto") backend = "bpf-lsm";  // only it denies; its error says why not
  }
  auto selection = fstrail::start_backend(backend, spec);
  if (!selection) return selection.error();
  backend_ = std::move(selection->backend);
  if (config_.backend == "auto") fmt::print(log_, "fstrail: {}\n", selection->why);
  FilterOptions all;  // the router decides per tree
  all.kinds.set();
  auto router = std::make_unique<Router>(routes_of(config_), *recorder_, nullptr);
  router_ = router.get();
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::move(router));
  pipeline_ = std::make_unique<Pipeline>(Filter(all), std::move(sinks));
  published_.backend = std::string(backend_->name());
  fmt::print(log_, "fstrail: agent recording {} tree(s) with {} into {} (spool {}); {} guard(s)\n",
             spec.roots.size(), backend_->name(), store::redact_url(config_.db), config_.spool,
             config_.guard.rules.size());
  return Ok{};
}

void Agent::start_guard(const AgentConfig& config) {
  if (config.guard.rules.empty()) return;
  policy_ = std::make_unique<guard::Policy>(config.guard.rules);
  if (!remediator_) remediator_ = std::make_unique<guard::Remediator>(false);
  engine_ = std::make_unique<guard::GuardEngine>(*policy_, *alert_log_, remediator_.get());
  router_->set_guard(engine_.get());
  // Watches first (the backend runs), then the scan: nothing changed meanwhile is missed.
  uint64_t existing = engine_->scan_existing();
  fmt::print(log_, "fstrail: guarding {} tree(s); {} existing violation(s)\n", config.guard.rules.size(),
             existing);
}

void Agent::retire_guard() {
  if (!engine_) return;
  engine_->finish();
  add_counts(retired_counts_, engine_->counts());
  router_->set_guard(nullptr);
  engine_.reset();
  policy_.reset();
}

Status Agent::run(const std::atomic<bool>& stop, std::atomic<bool>& reload) {
  return run_until_stopped(*backend_, *pipeline_, stop, [&] { return between_polls(reload); });
}

Status Agent::between_polls(std::atomic<bool>& reload) {
  if (reload.exchange(false)) (void)this->reload();
  int64_t now = realtime_now_ns();
  if (now >= next_publish_ns_) {
    publish();
    next_publish_ns_ = now + kPublishEveryNs;
  }
  if (config_.retention_ns && alert_store_ && now >= next_alert_retention_ns_) {
    if (Status s = alert_store_->apply_retention(*config_.retention_ns); !s)
      fmt::print(log_, "fstrail: alert retention: {}\n", s.error().message);
    next_alert_retention_ns_ = now + kAlertRetentionEveryNs;
  }
  return Ok{};
}

Status Agent::reload() {
  auto fail = [&](const Error& e) -> Status {
    ++reload_failures_;
    fmt::print(log_, "fstrail: reload: {}; the configuration in use is kept\n", e.message);
    publish();
    return e;
  };
  auto next = load_agent_config(config_path_);
  if (!next) return fail(next.error());
  if (Status s = check_agent_paths(*next); !s) return fail(s.error());
  const bool rules_changed = !same_rules(config_, *next);
  if (rules_changed && (has_enforcing(config_) || has_enforcing(*next)))
    return fail(Error{"guards with enforce = true change only with a restart (systemctl restart fstrail)"});
  if (std::string fixed = restart_only_changes(config_, *next); !fixed.empty())
    fmt::print(log_, "fstrail: reload: {} change(s) only with a restart; the running values are kept\n",
               fixed);
  std::vector<std::string> roots = watched_roots(*next);
  if (roots != watched_roots(config_)) {
    if (Status s = backend_->update_roots(roots); !s) return fail(s.error());
  }
  router_->set_routes(routes_of(*next));
  if (rules_changed) {
    retire_guard();
    start_guard(*next);
  }
  // What only a restart changes stays as it runs.
  next->backend = config_.backend;
  next->db = config_.db;
  next->password_file = config_.password_file;
  next->spool = config_.spool;
  next->log = config_.log;
  next->metrics_listen = config_.metrics_listen;
  next->retention_ns = config_.retention_ns;
  config_ = std::move(*next);
  ++reloads_;
  fmt::print(log_, "fstrail: reloaded {}: {} tree(s), {} guard(s)\n", config_.file, roots.size(),
             config_.guard.rules.size());
  publish();
  return Ok{};
}

void Agent::finish() {
  if (finished_) return;
  finished_ = true;
  retire_guard();
  alert_log_->flush();
  recorder_->close();
  publish();
  print_summary(log_, pipeline_->counts(), backend_->stats());
  store::print_recorder_summary(log_, recorder_->stats());
  const auto& c = retired_counts_;
  if (!config_.guard.rules.empty())
    fmt::print(log_, "fstrail: {} violation(s), {} fixed, {} not fixed, {} remediation failure(s)\n",
               c.violations, c.fixed, c.not_fixed, c.remediation_failures);
}

void Agent::publish() {
  guard::EngineCounts guard_counts = retired_counts_;
  if (engine_) add_counts(guard_counts, engine_->counts());
  BackendStats backend_stats = backend_->stats();
  std::lock_guard lock(published_mutex_);
  published_.events_by_kind = router_->counts().stored_by_kind;
  published_.lost = pipeline_->counts().lost.max_with(backend_stats.lost);
  published_.remediations = {{"fixed", guard_counts.fixed},
                             {"failed", guard_counts.remediation_failures},
                             {"not-fixed", guard_counts.not_fixed},
                             {"moot", guard_counts.moot},
                             {"queued", engine_ ? engine_->counts().queued : 0}};
  published_.config_reloads = reloads_;
  published_.config_reload_failures = reload_failures_;
}

metrics::Snapshot Agent::snapshot() const {
  metrics::Snapshot s;
  {
    std::lock_guard lock(published_mutex_);
    s = published_;
  }
  s.alerts = alert_log_->counts().by_rule_type;
  const store::RecorderLevels levels = recorder_->levels();
  s.rows_stored = recorder_->stats().stored;
  s.spool_bytes = levels.spool_bytes;
  const int64_t now = realtime_now_ns();
  if (levels.spool_oldest_ns)
    s.spool_oldest_age_seconds = static_cast<double>(now - *levels.spool_oldest_ns) / 1e9;
  // Nothing waiting (queue and spool empty): the store is up to date, whatever the age of the
  // newest event. Otherwise: how far the newest stored event is behind now.
  if (recorder_->queue_depth() > 0 || levels.spool_bytes > 0) {
    int64_t newest = levels.newest_stored_ns.value_or(static_cast<int64_t>(s.start_time_seconds * 1e9));
    s.store_lag_seconds = std::max(0.0, static_cast<double>(now - newest) / 1e9);
  }
  return s;
}

}  // namespace fstrail::agent
