// Remediation: puts owner, group and mode back. Never follows a symbolic link and
// never acts on a file swapped in after the violation was seen: the object is
// opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) below the guarded
// root (itself opened with RESOLVE_NO_SYMLINKS), O_PATH | O_NOFOLLOW, and must be
// the same inode that was checked. Never acts on a non-directory with more than one
// hard link: its other names may be outside the tree (a link made into the tree by
// the service user, or by root by mistake), and the inode is the same file there.
#pragma once

#include <chrono>
#include <string>

#include "guard/policy.h"

namespace fstrail::guard {

struct Remediation {
  enum class Outcome { kFixed, kWouldFix, kSkipped, kFailed, kQueued } outcome = Outcome::kSkipped;
  std::string detail;  // what was (or would be) done, or why not
  std::string reason;  // kSkipped, kFailed: why not, in a few words the summary counts by
};
std::string_view outcome_name(Remediation::Outcome outcome);

class Remediator {
 public:
  static constexpr int kDefaultRate = 200;
  // At most `per_second` fixes a second (a runaway loop must not hog the machine): the
  // caller asks take_token() before fix() and queues what has to wait.
  Remediator(bool dry_run, int per_second = kDefaultRate) : dry_run_(dry_run), per_second_(per_second) {}
  Remediation fix(const Violation& violation);
  bool take_token();
  bool dry_run() const { return dry_run_; }
  int per_second() const { return per_second_; }

 private:
  bool dry_run_;
  int per_second_;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace fstrail::guard
