#include "guard/engine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/text.h"
#include "core/unique_fd.h"

namespace fstrail::guard {
namespace {

namespace fs = std::filesystem;

// Events that can make an object break an ownership or mode invariant.
bool can_violate(EventKind kind) {
  switch (kind) {
    case EventKind::kCreate:
    case EventKind::kMkdir:
    case EventKind::kChmod:
    case EventKind::kChown:
    case EventKind::kRename:
    case EventKind::kLink:
    case EventKind::kSymlink:
    case EventKind::kLost:
      return true;
    default:
      return false;
  }
}

std::optional<std::string> read_cmdline(int32_t pid) {
  UniqueFd fd(::open(fmt::format("/proc/{}/cmdline", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return std::nullopt;
  char buf[4096];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  std::string line(buf, static_cast<size_t>(n));
  while (!line.empty() && line.back() == '\0') line.pop_back();
  std::replace(line.begin(), line.end(), '\0', ' ');
  return line;
}

class AlertLines final : public AlertOutput {
 public:
  AlertLines(FILE* out, bool json) : out_(out), json_(json) {}
  void alert(const Alert& a) override {
    std::string line = json_ ? alert_to_json(a) : alert_to_text(a);
    line += '\n';
    fwrite(line.data(), 1, line.size(), out_);
  }
  void flush() override { fflush(out_); }

 private:
  FILE* out_;
  bool json_;
};

}  // namespace

std::unique_ptr<AlertOutput> make_alert_output(FILE* out, bool json) { return std::make_unique<AlertLines>(out, json); }

GuardEngine::GuardEngine(const Policy& policy, AlertOutput& output, Remediator* remediator,
                         std::vector<Sink*> event_sinks, Now now)
    : policy_(policy), output_(output), remediator_(remediator), event_sinks_(std::move(event_sinks)),
      now_(std::move(now)) {}

bool GuardEngine::exempt(const GuardRule& rule, const Event& e) const {
  auto listed = [&](const std::optional<uint32_t>& uid) {
    return uid && std::find(rule.exempt_users.begin(), rule.exempt_users.end(), *uid) != rule.exempt_users.end();
  };
  return listed(e.uid) || listed(e.loginuid);
}

void GuardEngine::on_denied(const Event& e) {
  // The kernel decided by inode; the path names the tree the rule is for.
  const GuardRule* rule = policy_.rule_for(e.path);
  if (!rule) return;
  ++counts_.denied;
  Alert alert;
  alert.type = Alert::Type::kDenied;
  alert.time_ns = e.time_ns;
  alert.violation = policy_.denied_state(*rule, e);
  alert.event = e;
  if (e.pid) alert.cmdline = read_cmdline(*e.pid);
  // Every denial on its own (no burst summary): each one is an operation that failed.
  ++counts_.alerts;
  output_.alert(alert);
}

void GuardEngine::emit(Alert alert, bool remediate_it) {
  ++counts_.violations;
  if (remediate_it && remediator_) remediate(alert);
  if (alert.type == Alert::Type::kViolation && !bursts_.admit(alert, now_())) return;
  ++counts_.alerts;
  output_.alert(alert);
}

// Fixes now while the rate allows and nothing waits before it; queues otherwise. A burst
// longer than the rate (root's `cp -a` or `tar x` into the tree) is worked off at the rate
// from flush(), each object re-checked when its turn comes.
void GuardEngine::remediate(Alert& alert) {
  using O = Remediation::Outcome;
  if (queue_.empty() && remediator_->take_token()) {
    alert.action = remediator_->fix(alert.violation);
    record(alert.violation, *alert.action);
    return;
  }
  if (queue_.size() >= kMaxQueued) {
    alert.action = Remediation{O::kSkipped,
                               fmt::format("not fixed: {} objects already wait for remediation; the trees are "
                                           "scanned again once they are done",
                                           queue_.size()),
                               "remediation queue full"};
    record(alert.violation, *alert.action);
    rescan_when_drained_ = true;
    return;
  }
  queue_.push_back({alert.violation.rule, alert.violation.path});
  ++counts_.queued;
  alert.action = Remediation{
      O::kQueued,
      fmt::format("queued behind {} other(s), at most {} fixes a second", queue_.size() - 1, remediator_->per_second()),
      ""};
}

void GuardEngine::record(const Violation& v, const Remediation& r) {
  using O = Remediation::Outcome;
  switch (r.outcome) {
    case O::kFixed:
      ++counts_.fixed;
      alerted_.erase({v.dev, v.ino});  // the same violation again is news
      return;
    case O::kWouldFix:
    case O::kQueued:
      return;
    case O::kSkipped: ++counts_.not_fixed; break;
    case O::kFailed: ++counts_.remediation_failures; break;
  }
  ++counts_.not_fixed_reasons[r.reason];
  if (counts_.not_fixed_first.size() < EngineCounts::kListed)
    counts_.not_fixed_first.push_back(fmt::format("{}: {}", escape_for_terminal(v.path), r.detail));
}

void GuardEngine::drain_queue() {
  while (!queue_.empty()) {
    const Queued& q = queue_.front();
    struct stat st{};
    std::optional<Violation> v;
    if (lstat(q.path.c_str(), &st) == 0) v = policy_.check(*q.rule, q.path, st);
    if (!v) {  // gone, or already right again: nothing left to do
      ++counts_.moot;
      --counts_.queued;
      queue_.pop_front();
      continue;
    }
    if (!remediator_->take_token()) return;
    record(*v, remediator_->fix(*v));
    --counts_.queued;
    queue_.pop_front();
  }
  if (rescan_when_drained_) {
    rescan_when_drained_ = false;
    alerted_.clear();
    for (const auto& rule : policy_.rules()) scan_tree(rule, rule.path, nullptr, Alert::Type::kExisting);
  }
}

namespace {

// False when the event itself says its change kept the invariant: the current state
// then comes from a later operation, which has its own event and its own actor. Only an
// event that knows what it changed says so: one with unknown old values (fanotify and
// inotify read the state after the fact, and the kernel merges one process's queued
// attribute changes into one event) may stand for several changes, the last of which
// broke the rule: a chown away and a chown back read as one change of nothing.
bool event_breaks_rule(const Event& e, const GuardRule& rule, bool is_dir) {
  if (e.kind == EventKind::kChown && (e.old_uid || e.old_gid)) {
    bool uid_ok = !e.new_uid || *e.new_uid == rule.owner;
    bool gid_ok = !e.new_gid || *e.new_gid == rule.group;
    if ((e.new_uid || e.new_gid) && uid_ok && gid_ok) return false;
  }
  if (e.kind == EventKind::kChmod && e.old_mode && e.new_mode &&
      !(e.new_mode.value() & 07777 & ~allowed_mode(rule, is_dir)))
    return false;
  return true;
}

}  // namespace

void GuardEngine::check_path(const std::string& path, const Event* event, Alert::Type type) {
  const GuardRule* rule = policy_.rule_for(path);
  if (!rule) return;
  struct stat st{};
  if (lstat(path.c_str(), &st) != 0) return;  // already gone
  auto violation = policy_.check(*rule, path, st);
  if (!violation) {
    alerted_.erase({st.st_dev, st.st_ino});
    return;
  }
  if (event && !event_breaks_rule(*event, *rule, S_ISDIR(st.st_mode))) return;
  if (event && exempt(*rule, *event)) {
    ++counts_.exempt;
    return;
  }
  // One violation, one alert: a later event that finds the same object in the same
  // state (a create seen after the chown that followed it) adds nothing.
  InodeState state{st.st_uid, st.st_gid, st.st_mode};
  auto [it, inserted] = alerted_.try_emplace({st.st_dev, st.st_ino}, state);
  if (!inserted) {
    if (it->second == state) return;
    it->second = state;
  }
  if (alerted_.size() > kMaxRemembered) alerted_.clear();
  Alert alert;
  alert.type = type;
  alert.time_ns = realtime_now_ns();
  alert.violation = std::move(*violation);
  if (event) {
    alert.event = *event;
    if (event->pid) alert.cmdline = read_cmdline(*event->pid);
  }
  emit(std::move(alert), rule->remediate);
}

void GuardEngine::scan_tree(const GuardRule& rule, const std::string& root, const Event* event, Alert::Type type) {
  check_path(root, event, type);
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string path = it->path().string();
    // A nested rule's tree is scanned under that rule.
    if (policy_.rule_for(path) != &rule && it->is_directory(ec) && !it->is_symlink(ec)) {
      it.disable_recursion_pending();
      continue;
    }
    check_path(path, event, type);
  }
}

uint64_t GuardEngine::scan_existing() {
  uint64_t before = counts_.violations;
  for (const auto& rule : policy_.rules()) scan_tree(rule, rule.path, nullptr, Alert::Type::kExisting);
  output_.flush();
  return counts_.violations - before;
}

void GuardEngine::write(const Event& e) {
  for (Sink* sink : event_sinks_) sink->write(e);
  if (e.denied) return on_denied(e);  // prevented: nothing changed, nothing to check or fix
  if (e.error) return;                // failed: nothing changed either
  if (!can_violate(e.kind)) return;
  if (e.kind == EventKind::kLost) {
    // Events were lost: the only way to be sure is to look at everything again.
    for (const auto& rule : policy_.rules()) scan_tree(rule, rule.path, nullptr, Alert::Type::kExisting);
    return;
  }
  const GuardRule* rule = policy_.rule_for(e.path);
  if (!rule) return;
  // A directory renamed into the tree brings its whole content with it.
  struct stat st{};
  if (e.kind == EventKind::kRename && lstat(e.path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    scan_tree(*rule, e.path, &e, Alert::Type::kViolation);
  else
    check_path(e.path, &e, Alert::Type::kViolation);
}

void GuardEngine::flush() {
  for (Sink* sink : event_sinks_) sink->flush();
  if (remediator_) drain_queue();
  for (Alert& summary : bursts_.due(now_())) {
    summary.time_ns = realtime_now_ns();
    ++counts_.summaries;
    output_.alert(summary);
  }
  output_.flush();
}

void GuardEngine::finish() {
  for (const Queued& q : queue_) {
    ++counts_.not_fixed;
    if (counts_.not_fixed_first.size() < EngineCounts::kListed)
      counts_.not_fixed_first.push_back(escape_for_terminal(q.path) + ": not fixed: guard stopped before its turn");
  }
  if (!queue_.empty()) counts_.not_fixed_reasons["guard stopped before its turn"] += queue_.size();
  counts_.queued = 0;
  queue_.clear();
  for (Alert& summary : bursts_.due(now_(), true)) {
    summary.time_ns = realtime_now_ns();
    ++counts_.summaries;
    output_.alert(summary);
  }
  flush();
}

}  // namespace fstrail::guard
