#include "guard/policy.h"

#include <algorithm>

#include "fstrail/guard_map.h"

namespace fstrail::guard {

static_assert(kMaxExemptEnforced == FST_GUARD_MAX_EXEMPT, "the config and the kernel rule agree");

Policy::Policy(std::vector<GuardRule> rules) : rules_(std::move(rules)) {
  std::stable_sort(rules_.begin(), rules_.end(),
                   [](const GuardRule& a, const GuardRule& b) { return a.path.size() > b.path.size(); });
}

const GuardRule* Policy::rule_for(std::string_view path) const {
  for (const auto& rule : rules_) {
    std::string_view root = rule.path;
    if (path.substr(0, root.size()) != root) continue;
    if (path.size() == root.size() || root == "/" || path[root.size()] == '/') return &rule;
  }
  return nullptr;
}

std::optional<Violation> Policy::check(const GuardRule& rule, const std::string& path, const struct stat& st) const {
  Violation v;
  v.rule = &rule;
  v.path = path;
  v.uid = st.st_uid;
  v.gid = st.st_gid;
  v.mode = st.st_mode;
  v.dev = st.st_dev;
  v.ino = st.st_ino;
  v.bad_owner = st.st_uid != rule.owner;
  v.bad_group = st.st_gid != rule.group;
  if (!S_ISLNK(st.st_mode)) v.bad_mode = (st.st_mode & 07777 & ~allowed_mode(rule, S_ISDIR(st.st_mode))) != 0;
  if (!v.bad_owner && !v.bad_group && !v.bad_mode) return std::nullopt;
  return v;
}

Violation Policy::denied_state(const GuardRule& rule, const Event& e) const {
  Violation v;
  v.rule = &rule;
  v.path = e.path;
  v.uid = e.new_uid.value_or(e.old_uid.value_or(rule.owner));
  v.gid = e.new_gid.value_or(e.old_gid.value_or(rule.group));
  v.mode = e.new_mode.value_or(e.old_mode.value_or(0));
  v.dev = e.dev.value_or(0);
  v.ino = e.ino.value_or(0);
  v.bad_owner = v.uid != rule.owner;
  v.bad_group = v.gid != rule.group;
  if (!S_ISLNK(v.mode)) v.bad_mode = (v.mode & 07777 & ~allowed_mode(rule, S_ISDIR(v.mode))) != 0;
  return v;
}

GuardedTree guarded_tree_of(const GuardRule& rule) {
  GuardedTree tree;
  tree.path = rule.path;
  tree.owner = rule.owner;
  tree.group = rule.group;
  tree.file_mode = allowed_mode(rule, false);
  tree.dir_mode = allowed_mode(rule, true);
  tree.enforce = rule.enforce;
  tree.exempt_users.assign(rule.exempt_users.begin(), rule.exempt_users.end());
  return tree;
}

}  // namespace fstrail::guard
