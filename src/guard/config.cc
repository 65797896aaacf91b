#include "guard/config.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <pwd.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <set>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/text.h"
#include "core/unique_fd.h"

namespace fstrail::guard {
namespace {

const std::set<std::string, std::less<>> kKeys = {"name",      "path",    "owner",       "group",
                                                  "mode_max",  "remediate", "enforce", "exempt_users"};

std::string where(const std::string& file, const toml::source_region& region) {
  return fmt::format("{}:{}", file, region.begin.line);
}

template <typename Id>
Result<Id> resolve_id(const toml::node& node, bool is_user) {
  if (auto n = node.value<int64_t>()) {
    if (*n < 0 || *n > 4294967294LL) return Error{fmt::format("{} {} is out of range", is_user ? "uid" : "gid", *n)};
    return static_cast<Id>(*n);
  }
  auto name = node.value<std::string>();
  if (!name) return Error{fmt::format("expected a {} name or number", is_user ? "user" : "group")};
  Id id{};
  auto [end, ec] = std::from_chars(name->data(), name->data() + name->size(), id);
  if (ec == std::errc() && end == name->data() + name->size()) return id;
  char buf[4096];
  if (is_user) {
    passwd pw{}, *found = nullptr;
    if (getpwnam_r(name->c_str(), &pw, buf, sizeof buf, &found) == 0 && found) return static_cast<Id>(pw.pw_uid);
    return Error{fmt::format("unknown user '{}' (not in the user database; give a uid instead)", *name)};
  }
  group gr{}, *found = nullptr;
  if (getgrnam_r(name->c_str(), &gr, buf, sizeof buf, &found) == 0 && found) return static_cast<Id>(gr.gr_gid);
  return Error{fmt::format("unknown group '{}' (not in the group database; give a gid instead)", *name)};
}

Result<mode_t> parse_mode(const toml::node& node) {
  auto text = node.value<std::string>();
  if (!text) return Error{"mode_max must be an octal string such as \"0750\""};
  mode_t mode = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), mode, 8);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || mode > 07777)
    return Error{fmt::format("mode_max \"{}\" is not an octal mode between 0000 and 7777", *text)};
  return mode;
}

Result<GuardRule> parse_rule(const toml::table& t, const std::string& file) {
  GuardRule rule;
  rule.line = static_cast<int>(t.source().begin.line);
  auto fail = [&](const toml::node& at, const std::string& what) {
    return Error{fmt::format("{}: {}", where(file, at.source()), what)};
  };
  for (const auto& [key, value] : t)
    if (!kKeys.count(key.str())) {
      return fail(value, fmt::format("unknown key '{}' in [[guard]] (known: name, path, owner, group, mode_max, "
                                     "remediate, enforce, exempt_users)",
                                     key.str()));
    }
  auto required = [&](const char* key) -> const toml::node* { return t.get(key); };
  for (const char* key : {"name", "path", "owner"})
    if (!required(key)) return Error{fmt::format("{}:{}: [[guard]] needs '{}'", file, rule.line, key)};

  auto name = t["name"].value<std::string>();
  if (!name || name->empty()) return fail(*t.get("name"), "name must be a non-empty string");
  rule.name = *name;
  auto path = t["path"].value<std::string>();
  if (!path || path->empty() || path->front() != '/') return fail(*t.get("path"), "path must be an absolute path");
  rule.path = *path;
  rule.path_line = static_cast<int>(t.get("path")->source().begin.line);
  while (rule.path.size() > 1 && rule.path.back() == '/') rule.path.pop_back();
  if (rule.path == "/")
    return fail(*t.get("path"), "path = \"/\" is refused: a rule for the whole file system would hand every file "
                                "on the host to its owner; name the service's own tree");

  auto owner = resolve_id<uid_t>(*t.get("owner"), true);
  if (!owner) return fail(*t.get("owner"), owner.error().message);
  rule.owner = *owner;
  if (const toml::node* g = t.get("group")) {
    auto gid = resolve_id<gid_t>(*g, false);
    if (!gid) return fail(*g, gid.error().message);
    rule.group = *gid;
  } else {
    passwd pw{}, *found = nullptr;
    char buf[4096];
    if (getpwuid_r(rule.owner, &pw, buf, sizeof buf, &found) != 0 || !found)
      return Error{fmt::format("{}:{}: no 'group' given and uid {} has no primary group", file, rule.line, rule.owner)};
    rule.group = pw.pw_gid;
  }
  if (const toml::node* m = t.get("mode_max")) {
    auto mode = parse_mode(*m);
    if (!mode) return fail(*m, mode.error().message);
    rule.mode_max = *mode;
  }
  for (auto [key, field] : {std::pair{"remediate", &rule.remediate}, std::pair{"enforce", &rule.enforce}}) {
    if (const toml::node* b = t.get(key)) {
      if (!b->is_boolean()) return fail(*b, fmt::format("{} must be true or false", key));
      *field = *b->value<bool>();
    }
  }
  if (const toml::node* e = t.get("exempt_users")) {
    const toml::array* users = e->as_array();
    if (!users) return fail(*e, "exempt_users must be an array of user names or uids");
    for (const auto& u : *users) {
      auto uid = resolve_id<uid_t>(u, true);
      if (!uid) return fail(u, uid.error().message);
      rule.exempt_users.push_back(*uid);
    }
    if (rule.enforce && rule.exempt_users.size() > kMaxExemptEnforced)
      return fail(*e, fmt::format("with enforce = true, exempt_users holds at most {} users (the kernel's rule is "
                                  "fixed-size)", kMaxExemptEnforced));
  }
  return rule;
}

bool is_agent_table(std::string_view key) {
  for (std::string_view table : kAgentTables)
    if (key == table) return true;
  return false;
}

}  // namespace

Result<GuardConfig> parse_config(const std::string& text, const std::string& file_name, bool require_guard) {
  const std::string file = escape_for_terminal(file_name);  // messages are one line
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    return Error{fmt::format("{}:{}: {}", file, e.source().begin.line, escape_for_terminal(e.description()))};
  }
  GuardConfig config{file, {}};
  for (const auto& [key, value] : root)
    if (key.str() != "guard" && !is_agent_table(key.str()))
      return Error{fmt::format("{}: unknown top-level key '{}' (expected [agent], [[watch]], [[guard]], [metrics])",
                               where(file, value.source()), key.str())};
  const toml::node* guard_node = root.get("guard");
  if (!guard_node && !require_guard) return config;
  const toml::array* guards = guard_node ? guard_node->as_array() : nullptr;
  if (guard_node && !guards)
    return Error{fmt::format("{}: 'guard' must be written as [[guard]] tables", where(file, guard_node->source()))};
  if (!guards || guards->empty()) return Error{fmt::format("{}: no [[guard]] block", file)};
  std::set<std::string> names;
  for (const auto& node : *guards) {
    const toml::table* t = node.as_table();
    if (!t) return Error{fmt::format("{}: 'guard' must be written as [[guard]] tables", where(file, node.source()))};
    auto rule = parse_rule(*t, file);
    if (!rule) return rule.error();
    if (!names.insert(rule->name).second)
      return Error{fmt::format("{}:{}: a guard named '{}' is already defined", file, rule->line, rule->name)};
    config.rules.push_back(std::move(*rule));
  }
  return config;
}

Result<GuardConfig> load_config(const std::string& file) {
  auto text = read_config_file(file);
  if (!text) return text.error();
  return parse_config(*text, file);
}

Result<std::string> read_config_file(const std::string& file) {
  std::string shown = escape_for_terminal(file);
  // O_NONBLOCK: a FIFO given by mistake must not hang the open; the type is checked first.
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) {
    return Error{fmt::format("cannot read {}: {} (create it, or pass --config FILE)", shown, std::strerror(errno)),
                 errno};
  }
  struct stat st{};
  if (fstat(fd.get(), &st) != 0) return Error::from_errno("cannot read " + shown);
  if (S_ISDIR(st.st_mode))
    return Error{fmt::format("{} is a directory; --config names the TOML configuration file", shown), EISDIR};
  if (!S_ISREG(st.st_mode))
    return Error{fmt::format("{} is not a regular file; --config names the TOML configuration file", shown),
                 EINVAL};
  if (st.st_size > static_cast<off_t>(kMaxConfigBytes))
    return Error{fmt::format("{} is {} bytes; a configuration is at most {} bytes (1 MiB)", shown, st.st_size,
                             kMaxConfigBytes),
                 EFBIG};
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("cannot read " + shown);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes)  // grew while being read
      return Error{fmt::format("{} is larger than {} bytes (1 MiB)", shown, kMaxConfigBytes), EFBIG};
  }
  return text;
}

Status check_paths(const GuardConfig& config) {
  for (const auto& rule : config.rules) {
    std::string at = fmt::format("{}:{}: guard '{}': path {}", config.file, rule.path_line ? rule.path_line : rule.line,
                                 escape_for_terminal(rule.name), escape_for_terminal(rule.path));
    struct stat st{};
    if (stat(rule.path.c_str(), &st) != 0) return Error{fmt::format("{}: {}", at, std::strerror(errno)), errno};
    if (!S_ISDIR(st.st_mode)) return Error{fmt::format("{} is not a directory", at)};
    // Watches and remediation act on the path as written; a symbolic link on the way could
    // be changed later to send them elsewhere.
    char* real = realpath(rule.path.c_str(), nullptr);
    if (!real) return Error{fmt::format("{}: {}", at, std::strerror(errno)), errno};
    std::string resolved = real;
    free(real);
    if (resolved != rule.path) {
      return Error{fmt::format("{} goes through a symbolic link (or . or ..); write the real path instead: path = {}",
                               at, "\"" + escape_for_terminal(resolved) + "\"")};
    }
  }
  return Ok{};
}

mode_t allowed_mode(const GuardRule& rule, bool is_dir) {
  mode_t allowed = rule.mode_max;
  if (is_dir) {
    if (allowed & S_IRUSR) allowed |= S_IXUSR;
    if (allowed & S_IRGRP) allowed |= S_IXGRP;
    if (allowed & S_IROTH) allowed |= S_IXOTH;
  }
  return allowed;
}

}  // namespace fstrail::guard
