#include "guard/alert.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/text.h"

namespace fstrail::guard {
namespace {

using Json = nlohmann::ordered_json;
constexpr size_t kFirstPaths = 10;

std::string octal(mode_t mode) { return fmt::format("{:04o}", mode & 07777); }

template <typename T>
Json or_null(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace

std::string_view alert_type_name(Alert::Type type) {
  switch (type) {
    case Alert::Type::kExisting: return "existing";
    case Alert::Type::kViolation: return "violation";
    case Alert::Type::kSummary: return "summary";
    case Alert::Type::kDenied: return "denied";
  }
  return "?";
}

std::string alert_to_json(const Alert& a) {
  const Violation& v = a.violation;
  const GuardRule& rule = *v.rule;
  Json j;
  j["time"] = format_rfc3339(a.time_ns);
  j["alert"] = alert_type_name(a.type);
  j["rule"] = rule.name;
  j["path"] = v.path;
  if (!is_valid_utf8(v.path)) j["path_b64"] = base64_encode(v.path);
  Json problems = Json::array();
  if (v.bad_owner) problems.push_back("owner");
  if (v.bad_group) problems.push_back("group");
  if (v.bad_mode) problems.push_back("mode");
  j["problems"] = problems;
  j["expected"] = {{"uid", rule.owner}, {"gid", rule.group}, {"mode_max", octal(rule.mode_max)}};
  j["actual"] = {{"uid", v.uid}, {"gid", v.gid}, {"mode", octal(v.mode)}};
  if (a.type == Alert::Type::kSummary) {
    j["count"] = a.count;
    j["first_paths"] = a.first_paths;
  }
  const Event* e = a.event ? &*a.event : nullptr;
  j["kind"] = e ? Json(kind_name(e->kind)) : Json(nullptr);
  j["pid"] = e ? or_null(e->pid) : Json(nullptr);
  j["ppid"] = e ? or_null(e->ppid) : Json(nullptr);
  j["uid"] = e ? or_null(e->uid) : Json(nullptr);
  j["euid"] = e ? or_null(e->euid) : Json(nullptr);
  j["loginuid"] = e ? or_null(e->loginuid) : Json(nullptr);
  j["comm"] = e ? or_null(e->comm) : Json(nullptr);
  j["exe"] = e ? or_null(e->exe) : Json(nullptr);
  j["cmdline"] = or_null(a.cmdline);
  j["backend"] = e ? Json(e->backend) : Json(nullptr);
  j["actor_source"] = e ? Json(actor_source_name(e->actor_source)) : Json(nullptr);
  if (a.action) j["action"] = {{"result", outcome_name(a.action->outcome)}, {"detail", a.action->detail}};
  else j["action"] = nullptr;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string alert_to_text(const Alert& a) {
  const Violation& v = a.violation;
  const GuardRule& rule = *v.rule;
  std::string what;
  if (v.bad_owner || v.bad_group) what += fmt::format("owner {}:{} (expected {}:{})", v.uid, v.gid, rule.owner, rule.group);
  if (v.bad_mode)
    what += fmt::format("{}mode {} (max {})", what.empty() ? "" : ", ", octal(v.mode), octal(rule.mode_max));
  std::string who;
  if (a.event && a.event->pid) {
    const Event& e = *a.event;
    who = fmt::format(" by pid {} {} uid {}", *e.pid, e.comm ? escape_for_terminal(*e.comm) : "?",
                      e.uid ? std::to_string(*e.uid) : "?");
    if (e.loginuid) who += fmt::format(" (login uid {})", *e.loginuid);
    if (a.cmdline) who += ": " + escape_for_terminal(*a.cmdline);
  }
  std::string line = fmt::format("{} GUARD {} [{}] {}: {}{}", format_rfc3339(a.time_ns).substr(11, 12),
                                 alert_type_name(a.type), rule.name, escape_for_terminal(v.path), what, who);
  if (a.type == Alert::Type::kSummary) line += fmt::format(" — {} violations in this burst", a.count);
  if (a.action) line += fmt::format(" [{}: {}]", outcome_name(a.action->outcome), a.action->detail);
  return line;
}

bool BurstAggregator::admit(const Alert& alert, Clock::time_point now) {
  int32_t pid = alert.event && alert.event->pid ? *alert.event->pid : -1;
  Burst& b = bursts_[{alert.violation.rule->name, pid}];
  if (b.count == 0) b.first = alert;
  ++b.count;
  b.last = now;
  if (b.paths.size() < kFirstPaths) b.paths.push_back(alert.violation.path);
  return b.count <= static_cast<uint64_t>(individual_);
}

std::vector<Alert> BurstAggregator::due(Clock::time_point now, bool flush_all) {
  std::vector<Alert> out;
  for (auto it = bursts_.begin(); it != bursts_.end();) {
    Burst& b = it->second;
    if (!flush_all && now - b.last < quiet_) {
      ++it;
      continue;
    }
    if (b.count > static_cast<uint64_t>(individual_)) {
      Alert summary = b.first;
      summary.type = Alert::Type::kSummary;
      summary.count = b.count;
      summary.first_paths = b.paths;
      summary.action.reset();
      out.push_back(std::move(summary));
    }
    it = bursts_.erase(it);
  }
  return out;
}

}  // namespace fstrail::guard
