#include "guard/remediate.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "core/unique_fd.h"

namespace fstrail::guard {
namespace {

// openat2 below `root_fd` without crossing any symbolic link or leaving the tree.
int open_beneath(int root_fd, const std::string& relative) {
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, root_fd, relative.empty() ? "." : relative.c_str(), &how, sizeof how));
}

}  // namespace

std::string_view outcome_name(Remediation::Outcome outcome) {
  switch (outcome) {
    case Remediation::Outcome::kFixed: return "fixed";
    case Remediation::Outcome::kWouldFix: return "would fix";
    case Remediation::Outcome::kSkipped: return "skipped";
    case Remediation::Outcome::kFailed: return "failed";
  }
  return "?";
}

bool Remediator::take_token() {
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  tokens_ = std::min<double>(per_second_, tokens_ + elapsed * per_second_);
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

Remediation Remediator::fix(const Violation& v) {
  using O = Remediation::Outcome;
  const GuardRule& rule = *v.rule;
  mode_t wanted_mode = v.mode & 07777 & allowed_mode(rule, S_ISDIR(v.mode));
  std::string plan;
  if (v.bad_owner || v.bad_group) plan += fmt::format("chown {}:{}", rule.owner, rule.group);
  if (v.bad_mode) plan += fmt::format("{}chmod {:04o}", plan.empty() ? "" : ", ", wanted_mode);
  if (dry_run_) return {O::kWouldFix, plan};
  if (!take_token()) return {O::kSkipped, "rate limit reached; " + plan + " not done"};

  UniqueFd root(::open(rule.path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!root.valid()) return {O::kFailed, fmt::format("cannot open {}: {}", rule.path, std::strerror(errno))};
  std::string relative = v.path.size() > rule.path.size() ? v.path.substr(rule.path.size() + 1) : "";
  UniqueFd fd(open_beneath(root.get(), relative));
  if (!fd.valid()) {
    return {O::kSkipped, fmt::format("not fixed: {} cannot be opened without following a symbolic link ({})", v.path,
                                     std::strerror(errno))};
  }
  struct stat st{};
  if (fstat(fd.get(), &st) != 0) return {O::kFailed, fmt::format("fstat: {}", std::strerror(errno))};
  if (st.st_dev != v.dev || st.st_ino != v.ino)
    return {O::kSkipped, "not fixed: the file was replaced after the violation was seen"};
  if ((v.bad_owner || v.bad_group) && fchownat(fd.get(), "", rule.owner, rule.group, AT_EMPTY_PATH) != 0)
    return {O::kFailed, fmt::format("chown failed: {}", std::strerror(errno))};
  if (v.bad_mode && !S_ISLNK(st.st_mode)) {
    // chmod cannot act on an O_PATH descriptor directly; its /proc/self/fd link names
    // exactly this inode, so no path is resolved again.
    std::string self = fmt::format("/proc/self/fd/{}", fd.get());
    if (chmod(self.c_str(), wanted_mode) != 0) return {O::kFailed, fmt::format("chmod failed: {}", std::strerror(errno))};
  }
  return {O::kFixed, plan};
}

}  // namespace fstrail::guard
