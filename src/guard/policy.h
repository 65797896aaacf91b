// The invariant check: which rule governs a path (the innermost guarded tree)
// and whether an object's owner, group and mode break it.
#pragma once

#include <sys/stat.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
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

// The rule as the kernel enforces it (bpf-lsm): owner, group, the modes allowed on files
// and on directories (allowed_mode), the enforce flag and the exempt users.
GuardedTree guarded_tree_of(const GuardRule& rule);

class Policy {
 public:
  explicit Policy(std::vector<GuardRule> rules);
  // The rule of the innermost guarded tree containing `path`, or null.
  const GuardRule* rule_for(std::string_view path) const;
  // A violation when `st` (lstat of `path`) breaks `rule`. Symbolic links have no mode of their own.
  std::optional<Violation> check(const GuardRule& rule, const std::string& path, const struct stat& st) const;
  // What a denied operation (Event::denied) would have made of its object: owner,
  // group and mode from the event's new values, else its old ones.
  Violation denied_state(const GuardRule& rule, const Event& denied) const;
  const std::vector<GuardRule>& rules() const { return rules_; }

 private:
  std::vector<GuardRule> rules_;  // longest path first, so the first match is the innermost
};

}  // namespace fstrail::guard
