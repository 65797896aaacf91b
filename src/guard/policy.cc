#include "guard/policy.h"

#include <algorithm>

namespace fstrail::guard {

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

}  // namespace fstrail::guard
