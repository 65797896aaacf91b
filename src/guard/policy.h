// The invariant check: which rule governs a path (the innermost guarded tree)
// and whether an object's owner, group and mode break it.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "guard/config.h"

namespace fstrail::guard {

struct Violation {
  const GuardRule* rule = nullptr;
  std::string path;
  uid_t uid = 0;
  gid_t gid = 0;
  mode_t mode = 0;  // st_mode (type and permission bits)
  dev_t dev = 0;
  ino_t ino = 0;
  bool bad_owner = false, bad_group = false, bad_mode = false;
};

class Policy {
 public:
  explicit Policy(std::vector<GuardRule> rules);
  // The rule of the innermost guarded tree containing `path`, or null.
  const GuardRule* rule_for(std::string_view path) const;
  // A violation when `st` (lstat of `path`) breaks `rule`. Symbolic links have no mode of their own.
  std::optional<Violation> check(const GuardRule& rule, const std::string& path, const struct stat& st) const;
  const std::vector<GuardRule>& rules() const { return rules_; }

 private:
  std::vector<GuardRule> rules_;  // longest path first, so the first match is the innermost
};

}  // namespace fstrail::guard
