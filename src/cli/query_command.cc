#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <cstdio>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/clock.h"
#include "core/text.h"
#include "sink/sink.h"
#include "store/alert_store.h"
#include "store/store.h"

namespace fstrail::cli {
namespace {

std::string user_label(const std::optional<uint32_t>& uid) {
  if (!uid) return "-";
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(*uid, &pw, buf, sizeof buf, &found) == 0 && found) return fmt::format("{}({})", pw.pw_name, *uid);
  return std::to_string(*uid);
}

void print_table(FILE* out, const std::vector<store::StoredEvent>& rows) {
  struct Line {
    std::string time, host, kind, user, proc, what;
  };
  std::vector<Line> lines;
  lines.reserve(rows.size());
  Line header{"TIME (UTC)", "HOST", "KIND", "USER", "PROCESS", "PATH"};
  size_t w_host = header.host.size(), w_kind = header.kind.size(), w_user = header.user.size(),
         w_proc = header.proc.size();
  for (const auto& row : rows) {
    const Event& e = row.event;
    Line l;
    l.time = format_rfc3339(e.time_ns).substr(0, 23);
    l.host = row.host;
    l.kind = std::string(kind_name(e.kind));
    l.user = user_label(e.uid);
    if (e.loginuid && e.uid && *e.loginuid != *e.uid && *e.loginuid != 4294967295U)
      l.user += " by " + user_label(e.loginuid);
    l.proc = e.pid ? fmt::format("{} {}", *e.pid, e.comm ? escape_for_terminal(*e.comm) : "?") : "-";
    l.what = escape_for_terminal(e.path);
    if (e.old_path) l.what = escape_for_terminal(*e.old_path) + " -> " + l.what;
    if (e.kind == EventKind::kChmod && e.new_mode) l.what += fmt::format("  mode {:o}", *e.new_mode & 07777);
    if (e.kind == EventKind::kLost)
      l.what += fmt::format("  {} events lost: {}", e.lost ? std::to_string(*e.lost) : "some",
                            loss_reason_name(e.lost_reason));
    if (e.error) l.what += fmt::format("  FAILED errno {}", *e.error);
    w_host = std::max(w_host, l.host.size());
    w_kind = std::max(w_kind, l.kind.size());
    w_user = std::max(w_user, l.user.size());
    w_proc = std::max(w_proc, l.proc.size());
    lines.push_back(std::move(l));
  }
  auto print = [&](const Line& l) {
    fmt::print(out, "{:<23}  {:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", l.time, l.host, w_host, l.kind, w_kind, l.user,
               w_user, l.proc, w_proc, l.what);
  };
  print(header);
  for (const auto& l : lines) print(l);
}

// Alerts (--alerts): TIME HOST RULE ALERT PROBLEMS USER PROCESS PATH, from each row's JSON.
void print_alert_table(FILE* out, const std::vector<store::StoredAlert>& rows) {
  fmt::print(out, "{:<23}  {:<12}  {:<12}  {:<9}  {:<16}  {:<14}  {:<16}  {}\n", "TIME (UTC)", "HOST", "RULE", "ALERT",
             "PROBLEMS", "USER", "PROCESS", "PATH");
  for (const auto& row : rows) {
    nlohmann::json j = nlohmann::json::parse(row.json, nullptr, false);
    if (j.is_discarded()) j = nlohmann::json::object();
    std::string problems;
    for (const auto& p : j.value("problems", nlohmann::json::array()))
      if (p.is_string()) problems += (problems.empty() ? "" : ",") + p.get<std::string>();
    std::optional<uint32_t> uid;
    if (j.contains("uid") && j["uid"].is_number_unsigned()) uid = j["uid"].get<uint32_t>();
    std::string proc = "-";
    if (j.contains("pid") && j["pid"].is_number())
      proc = fmt::format("{} {}", j["pid"].get<int64_t>(), j.contains("comm") && j["comm"].is_string()
                                                               ? escape_for_terminal(j["comm"].get<std::string>())
                                                               : "?");
    std::string path = j.contains("path") && j["path"].is_string() ? j["path"].get<std::string>() : "?";
    if (row.type == "summary" && j.contains("count")) path += fmt::format("  ({} in the burst)", j["count"].dump());
    fmt::print(out, "{:<23}  {:<12}  {:<12}  {:<9}  {:<16}  {:<14}  {:<16}  {}\n",
               format_rfc3339(row.time_ns).substr(0, 23), escape_for_terminal(row.host),
               escape_for_terminal(row.rule), row.type, problems, user_label(uid), proc, escape_for_terminal(path));
  }
}

}  // namespace

Result<std::string> absolute_query_path(const std::string& path) {
  if (path.front() == '/') return path;
  char* cwd = ::getcwd(nullptr, 0);
  if (!cwd) return Error::from_errno("cannot make " + escape_for_terminal(path) + " absolute: current directory");
  std::string base = cwd;
  std::free(cwd);
  bool tree = path.back() == '/';
  std::string joined = std::filesystem::path(base + "/" + path).lexically_normal().string();
  while (joined.size() > 1 && joined.back() == '/') joined.pop_back();
  if (tree && joined != "/") joined += '/';
  return joined;
}

namespace {

struct QueryCommand {
  std::string db;
  std::string path, since, until, user, comm, kinds, host;
  CLI::Option* kind_option = nullptr;
  bool login_user = false, last = false, json = false, alerts = false;
  uint64_t limit = 0;

  int run() {
    store::QuerySpec spec;
    int64_t now = realtime_now_ns();
    if (!path.empty()) {
      auto absolute = absolute_query_path(path);
      if (!absolute) return usage("--path", absolute.error());
      spec.path = *absolute;
    }
    if (!since.empty()) {
      auto t = store::parse_time_arg(since, now);
      if (!t) return usage("--since", t.error());
      spec.since_ns = *t;
    }
    if (!until.empty()) {
      auto t = store::parse_time_arg(until, now);
      if (!t) return usage("--until", t.error());
      spec.until_ns = *t;
    }
    if (!user.empty()) {
      auto uid = parse_user(user);
      if (!uid) return usage("--user", uid.error());
      spec.uid = *uid;
    }
    spec.login_user = login_user;
    if (!comm.empty()) spec.comm = comm;
    if (kind_option && kind_option->count() > 0) {
      auto k = parse_kinds(kinds);
      if (!k) return usage("--kind", k.error());
      spec.kinds = *k;
      // watch always reports losses; a query asks for exactly the kinds it names.
      if (("," + kinds + ",").find(",lost,") == std::string::npos)
        spec.kinds->reset(static_cast<size_t>(EventKind::kLost));
    }
    if (!host.empty()) spec.host = host;
    if (limit) spec.limit = limit;
    spec.last_per_path = last;
    if (db.empty()) db = store::default_db_url();
    auto file = store::sqlite_file(db);
    if (!file) {
      fmt::print(stderr, "fstrail: {}\n", file.error().message);
      return kExitUsage;
    }
    if (*file && ::access((*file)->c_str(), F_OK) != 0) {
      fmt::print(stderr, "fstrail: no history at {} (record some with `fstrail record`, or give --db)\n", **file);
      return kExitFailure;
    }
    if (alerts) return run_alerts(spec);
    auto opened = store::open_store(db);
    if (!opened) {
      fmt::print(stderr, "fstrail: {}\n", opened.error().message);
      return kExitFailure;
    }
    auto rows = (*opened)->query(spec);
    if (!rows) {
      fmt::print(stderr, "fstrail: {}\n", rows.error().message);
      return kExitFailure;
    }
    if (json) {
      std::string line;
      for (const auto& row : *rows) {
        line = event_to_json(row.event);
        line.pop_back();  // the closing brace: host and event_id join the watch --json object
        line += fmt::format(",\"host\":{},\"event_id\":{}}}\n", nlohmann::json(row.host).dump(), row.event_id);
        std::fwrite(line.data(), 1, line.size(), stdout);
      }
    } else {
      print_table(stdout, *rows);
    }
    return kExitOk;
  }

  int run_alerts(const store::QuerySpec& spec) {
    auto opened = store::open_alert_store(db);
    if (!opened) {
      fmt::print(stderr, "fstrail: {}\n", opened.error().message);
      return kExitFailure;
    }
    auto rows = (*opened)->query(spec);
    if (!rows) {
      fmt::print(stderr, "fstrail: {}\n", rows.error().message);
      return kExitFailure;
    }
    if (!json) {
      print_alert_table(stdout, *rows);
      return kExitOk;
    }
    for (const auto& row : *rows) {
      std::string line = row.json;
      if (line.empty() || line.back() != '}') continue;
      line.pop_back();  // the closing brace: host joins the logged alert object
      line += fmt::format(",\"host\":{}}}\n", nlohmann::json(row.host).dump());
      std::fwrite(line.data(), 1, line.size(), stdout);
    }
    return kExitOk;
  }

  static int usage(std::string_view option, const Error& e) {
    fmt::print(stderr, "fstrail: {}: {}\n", option, e.message);
    return kExitUsage;
  }
};

}  // namespace

RunFn add_query_command(CLI::App& app) {
  auto cmd = std::make_shared<QueryCommand>();
  CLI::App* sub = app.add_subcommand("query", "Search the recorded history (from `fstrail record`)");
  add_db_password_file_option(*sub);
  sub->add_option("--db", cmd->db, "sqlite:///path/file.db or a PostgreSQL connection string (default: " +
                                       store::default_db_url() + ")")
      ->type_name("URL");
  sub->add_option("--path", cmd->path,
                  "This file, or with a trailing '/' the whole tree under it; a relative path is taken from the "
                  "current directory (made absolute, as recorded paths are)")
      ->type_name("P");
  sub->add_option("--since", cmd->since, "From this time: 30m, 1h, 2d ago, or RFC 3339")->type_name("TIME");
  sub->add_option("--until", cmd->until, "Up to this time: 30m, 1h, 2d ago, or RFC 3339")->type_name("TIME");
  sub->add_option("--user", cmd->user, "Operations by this user (name or uid)")->type_name("USER");
  sub->add_flag("--login-user", cmd->login_user, "--user also matches the login user (the human behind sudo)");
  sub->add_option("--comm", cmd->comm, "Operations by processes with this name")->type_name("NAME");
  cmd->kind_option = sub->add_option("--kind", cmd->kinds, "Only these kinds, comma-separated (create,modify,...)")->type_name("KINDS");
  sub->add_option("--host", cmd->host, "Only events recorded on this host")->type_name("HOST");
  sub->add_option("--limit", cmd->limit, "The most recent N events")->type_name("N")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            uint64_t n = 0;
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec == std::errc() && end == v.data() + v.size() && n > 0) return {};
            return "'" + v + "' is not a number of events (1 or more)";
          },
          ""));  // a description would be shown after the type name: "N:N"
  sub->add_flag("--last", cmd->last, "Only the most recent event of each path");
  sub->add_flag("--json", cmd->json,
                "JSON lines: the `watch --json` object plus host and event_id (with --alerts: the alert as the "
                "agent logged it, plus host)");
  sub->add_flag("--alerts", cmd->alerts,
                "Guard alerts kept by `fstrail agent` instead of events. The same filters apply: --path (the "
                "violating object), --since/--until, --user/--login-user and --comm (the actor), --kind (of "
                "the operation behind it), --host, --limit, --last (the latest alert per path)");
  sub->footer(
      "Examples:\n"
      "  fstrail query --path /srv/app/ --since 1h          # who touched /srv/app in the last hour\n"
      "  fstrail query --path /etc/passwd --last            # the last change of one file\n"
      "  fstrail query --db 'host=db dbname=fstrail' --user alice --login-user --json\n"
      "  fstrail query --alerts --since 1d                  # guard alerts the agent kept");
  return [cmd] { return cmd->run(); };
}

}  // namespace fstrail::cli
