// Remediation: puts owner, group and mode back. Never follows a symbolic link and
// never acts on a file swapped in after the violation was seen: the object is
// opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) below the guarded
// root, O_PATH | O_NOFOLLOW, and must be the same inode that was checked.
#pragma once

#include <chrono>
#include <string>

#include "guard/policy.h"

namespace fstrail::guard {

struct Remediation {
  enum class Outcome { kFixed, kWouldFix, kSkipped, kFailed } outcome = Outcome::kSkipped;
  std::string detail;  // what was (or would be) done, or why not
};
std::string_view outcome_name(Remediation::Outcome outcome);

class Remediator {
 public:
  // At most `per_second` fixes a second (a runaway loop must not hog the machine).
  Remediator(bool dry_run, int per_second = 200) : dry_run_(dry_run), per_second_(per_second) {}
  Remediation fix(const Violation& violation);

 private:
  bool take_token();
  bool dry_run_;
  int per_second_;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace fstrail::guard
