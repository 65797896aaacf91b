#include "agent/config.h"

#include <fmt/format.h>
#include <limits.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <set>

#include "backend/backend.h"
#include "core/text.h"
#include "store/store.h"

namespace fstrail::agent {
namespace {

using Keys = std::set<std::string, std::less<>>;
const Keys kAgentKeys = {"backend", "db", "password_file", "spool", "retention", "log"};
const Keys kWatchKeys = {"path", "exclude", "events"};
const Keys kMetricsKeys = {"listen"};

struct Parser {
  const std::string& file;

  Error fail(const toml::node& at, const std::string& what) const {
    return Error{fmt::format("{}:{}: {}", file, at.source().begin.line, what)};
  }

  Status known_keys(const toml::table& t, const Keys& keys, const char* block) const {
    for (const auto& [key, value] : t) {
      if (keys.count(key.str())) continue;
      std::string known;
      for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
      return fail(value, fmt::format("unknown key '{}' in {} (known: {})", escape_for_terminal(key.str()),
                                     block, known));
    }
    return Ok{};
  }

  Result<std::string> string_of(const toml::table& t, const char* key, bool absolute_path) const {
    const toml::node* n = t.get(key);
    auto v = n->value<std::string>();
    if (!v || v->empty()) return fail(*n, fmt::format("{} must be a non-empty string", key));
    if (absolute_path && v->front() != '/') return fail(*n, fmt::format("{} must be an absolute path", key));
    return *v;
  }

  Result<std::vector<std::string>> strings_of(const toml::node& n, const char* key) const {
    const toml::array* a = n.as_array();
    if (!a) return fail(n, fmt::format("{} must be an array of strings, e.g. [\"*.swp\"]", key));
    std::vector<std::string> out;
    for (const auto& item : *a) {
      auto s = item.value<std::string>();
      if (!s || s->empty()) return fail(item, fmt::format("{} holds non-empty strings only", key));
      out.push_back(*s);
    }
    return out;
  }

  Status agent_table(const toml::table& t, AgentConfig& c) const {
    c.agent_line = static_cast<int>(t.source().begin.line);
    if (Status s = known_keys(t, kAgentKeys, "[agent]"); !s) return s;
    if (t.get("backend")) {
      auto b = string_of(t, "backend", false);
      if (!b) return b.error();
      if (*b != "auto" && !find_backend(*b))
        return fail(*t.get("backend"),
                    fmt::format("unknown backend '{}' (auto, bpf-lsm, bpf-fentry, bpf-tracepoint, "
                                "fanotify, inotify; see `fstrail doctor`)",
                                escape_for_terminal(*b)));
      c.backend = *b;
    }
    if (t.get("db")) {
      auto db = string_of(t, "db", false);
      if (!db) return db.error();
      if (auto file = store::sqlite_file(*db); !file) return fail(*t.get("db"), file.error().message);
      if (!store::find_password(*db).empty())
        return fail(*t.get("db"),
                    "db holds a password: put it in password_file instead (the configuration is "
                    "readable by more than the database needs)");
      c.db = *db;
    }
    for (auto [key, field] : {std::pair{"password_file", &c.password_file}, std::pair{"spool", &c.spool}}) {
      if (!t.get(key)) continue;
      auto v = string_of(t, key, true);
      if (!v) return v.error();
      *field = *v;
    }
    if (t.get("retention")) {
      auto r = string_of(t, "retention", false);
      if (!r) return r.error();
      auto keep = store::parse_duration(*r);
      if (!keep) return fail(*t.get("retention"), "retention: " + keep.error().message);
      if (*keep < 86'400'000'000'000LL)
        return fail(*t.get("retention"), "retention is at least 1d (whole days are dropped)");
      c.retention_ns = *keep;
    }
    if (t.get("log")) {
      auto log = string_of(t, "log", false);
      if (!log) return log.error();
      if (*log != "journal" && *log != "stderr" && log->front() != '/')
        return fail(*t.get("log"), "log is \"journal\", \"stderr\" or an absolute file path");
      c.log = *log;
    }
    return Ok{};
  }

  Result<WatchBlock> watch_block(const toml::table& t) const {
    WatchBlock w;
    w.line = static_cast<int>(t.source().begin.line);
    if (Status s = known_keys(t, kWatchKeys, "[[watch]]"); !s) return s.error();
    if (!t.get("path")) return Error{fmt::format("{}:{}: [[watch]] needs 'path'", file, w.line)};
    auto path = string_of(t, "path", true);
    if (!path) return path.error();
    w.path = *path;
    while (w.path.size() > 1 && w.path.back() == '/') w.path.pop_back();
    if (const toml::node* e = t.get("exclude")) {
      auto globs = strings_of(*e, "exclude");
      if (!globs) return globs.error();
      w.exclude = std::move(*globs);
    }
    if (const toml::node* e = t.get("events")) {
      auto names = strings_of(*e, "events");
      if (!names) return names.error();
      if (names->empty()) return fail(*e, "events is not empty (leave it out for every kind)");
      std::string list;
      for (const auto& n : *names) list += (list.empty() ? "" : ",") + n;
      auto kinds = parse_kinds(list);
      if (!kinds) return fail(*e, "events: " + kinds.error().message);
      w.kinds = *kinds;
    }
    return w;
  }

  Status metrics_table(const toml::table& t, AgentConfig& c) const {
    if (Status s = known_keys(t, kMetricsKeys, "[metrics]"); !s) return s;
    if (!t.get("listen")) return Ok{};
    auto listen = string_of(t, "listen", false);
    if (!listen) return listen.error();
    size_t colon = listen->rfind(':');
    uint32_t port = 0;
    const char* end = listen->data() + listen->size();
    bool ok = colon != std::string::npos && colon > 0;
    if (ok) {
      auto [p, ec] = std::from_chars(listen->data() + colon + 1, end, port);
      ok = ec == std::errc() && p == end && port >= 1 && port <= 65535;
    }
    std::string host = ok ? listen->substr(0, colon) : "";
    if (ok && host.front() == '[')
      ok = host.back() == ']' && host.size() > 2;
    else if (ok)
      ok = host.find(':') == std::string::npos;
    if (!ok)
      return fail(*t.get("listen"),
                  fmt::format("listen \"{}\" is not HOST:PORT (e.g. \"{}\" or \"[::1]:9764\")",
                              escape_for_terminal(*listen), kDefaultMetricsListen));
    c.metrics_listen = *listen;
    return Ok{};
  }
};

Status parse_tables(const toml::table& root, const Parser& p, AgentConfig& c) {
  if (const toml::node* a = root.get("agent")) {
    if (!a->as_table()) return p.fail(*a, "'agent' must be written as an [agent] table");
    if (Status s = p.agent_table(*a->as_table(), c); !s) return s;
  }
  if (const toml::node* m = root.get("metrics")) {
    if (!m->as_table()) return p.fail(*m, "'metrics' must be written as a [metrics] table");
    if (Status s = p.metrics_table(*m->as_table(), c); !s) return s;
  }
  if (const toml::node* w = root.get("watch")) {
    const toml::array* blocks = w->as_array();
    if (!blocks) return p.fail(*w, "'watch' must be written as [[watch]] tables");
    for (const auto& node : *blocks) {
      if (!node.as_table()) return p.fail(node, "'watch' must be written as [[watch]] tables");
      auto block = p.watch_block(*node.as_table());
      if (!block) return block.error();
      for (const auto& other : c.watches)
        if (other.path == block->path)
          return Error{fmt::format("{}:{}: path {} is already watched by the [[watch]] at line {}", p.file,
                                   block->line, escape_for_terminal(block->path), other.line)};
      c.watches.push_back(std::move(*block));
    }
  }
  return Ok{};
}

}  // namespace

Result<AgentConfig> parse_agent_config(const std::string& text, const std::string& file_name) {
  AgentConfig c;
  c.file = escape_for_terminal(file_name);
  // The top-level keys, [[guard]] and TOML syntax: checked by the guard's parser.
  auto guards = guard::parse_config(text, file_name, false);
  if (!guards) return guards.error();
  c.guard = std::move(*guards);
  toml::table root = toml::parse(text, file_name);  // parses: guard::parse_config said so
  if (Status s = parse_tables(root, Parser{c.file}, c); !s) return s.error();
  if (c.watches.empty() && c.guard.rules.empty())
    return Error{fmt::format("{}: nothing to do: add a [[watch]] or a [[guard]] block", c.file)};
  if (c.db.empty()) c.db = store::default_db_url();
  if (c.spool.empty()) c.spool = store::default_state_dir() + "/spool";
  return c;
}

Result<AgentConfig> load_agent_config(const std::string& file) {
  auto text = guard::read_config_file(file);
  if (!text) return text.error();
  return parse_agent_config(*text, file);
}

Status check_agent_paths(const AgentConfig& config) {
  for (const auto& w : config.watches) {
    std::string at = fmt::format("{}:{}: watch path {}", config.file, w.line, escape_for_terminal(w.path));
    struct stat st {};
    if (::stat(w.path.c_str(), &st) != 0)
      return Error{fmt::format("{}: {}", at, std::strerror(errno)), errno};
    if (!S_ISDIR(st.st_mode)) return Error{fmt::format("{} is not a directory", at)};
    char real[PATH_MAX];
    if (!::realpath(w.path.c_str(), real))
      return Error{fmt::format("{}: {}", at, std::strerror(errno)), errno};
    if (w.path != real)
      return Error{
          fmt::format("{} goes through a symbolic link (or . or ..); write the real path instead: path = "
                      "\"{}\"",
                      at, escape_for_terminal(real))};
  }
  return guard::check_paths(config.guard);
}

std::vector<std::string> watched_roots(const AgentConfig& config) {
  std::vector<std::string> roots;
  auto add = [&](const std::string& path) {
    if (std::find(roots.begin(), roots.end(), path) == roots.end()) roots.push_back(path);
  };
  for (const auto& w : config.watches) add(w.path);
  for (const auto& rule : config.guard.rules) add(rule.path);
  return roots;
}

std::string restart_only_changes(const AgentConfig& before, const AgentConfig& after) {
  std::string changed;
  auto note = [&](bool differs, const char* key) {
    if (differs) changed += (changed.empty() ? "" : ", ") + std::string(key);
  };
  note(before.backend != after.backend, "backend");
  note(before.db != after.db, "db");
  note(before.password_file != after.password_file, "password_file");
  note(before.spool != after.spool, "spool");
  note(before.log != after.log, "log");
  note(before.metrics_listen != after.metrics_listen, "listen");
  return changed;
}

}  // namespace fstrail::agent
