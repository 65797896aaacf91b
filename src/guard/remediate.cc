#include "guard/remediate.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include <fmt/format.h>

#include "core/text.h"
#include "core/unique_fd.h"

namespace fstrail::guard {
namespace {

// openat2 from `dir_fd` without crossing any symbolic link (and with RESOLVE_BENEATH,
// without leaving the directory).
int open_beneath(int dir_fd, const std::string& relative, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC | flags;
  how.resolve = resolve | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(syscall(SYS_openat2, dir_fd, relative.empty() ? "." : relative.c_str(), &how, sizeof how));
}

}  // namespace

std::string_view outcome_name(Remediation::Outcome outcome) {
  switch (outcome) {
    case Remediation::Outcome::kFixed: return "fixed";
    case Remediation::Outcome::kWouldFix: return "would fix";
    case Remediation::Outcome::kSkipped: return "skipped";
    case Remediation::Outcome::kFailed: return "failed";
    case Remediation::Outcome::kQueued: return "queued";
  }
  return "?";
}

bool Remediator::take_token() {
  if (dry_run_) return true;
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

  // The root too is reached without a symbolic link: one swapped in on the way after the
  // configuration was checked must not take remediation elsewhere.
  UniqueFd root(open_beneath(AT_FDCWD, rule.path, O_DIRECTORY, 0));
  if (!root.valid()) {
    return {O::kFailed, fmt::format("not fixed: cannot open {} without following a symbolic link: {}",
                                    escape_for_terminal(rule.path), std::strerror(errno)),
            "guarded root unreachable"};
  }
  std::string relative = v.path.size() > rule.path.size() ? v.path.substr(rule.path.size() + 1) : "";
  UniqueFd fd(open_beneath(root.get(), relative, 0, RESOLVE_BENEATH));
  if (!fd.valid()) {
    if (errno == ENOENT) return {O::kSkipped, "not fixed: it was removed", "removed"};
    return {O::kSkipped,
            fmt::format("not fixed: {} cannot be opened without following a symbolic link ({})",
                        escape_for_terminal(v.path), std::strerror(errno)),
            "symbolic link on the way"};
  }
  struct stat st{};
  if (fstat(fd.get(), &st) != 0) return {O::kFailed, fmt::format("fstat: {}", std::strerror(errno)), "fstat failed"};
  if (st.st_dev != v.dev || st.st_ino != v.ino)
    return {O::kSkipped, "not fixed: the file was replaced after the violation was seen", "replaced"};
  // Another name of this inode may be outside the tree: changing it here changes it there.
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1)
    return {O::kSkipped, fmt::format("not remediated: {} hard links", st.st_nlink), "hard links"};
  if (dry_run_) return {O::kWouldFix, plan, ""};
  if ((v.bad_owner || v.bad_group) && fchownat(fd.get(), "", rule.owner, rule.group, AT_EMPTY_PATH) != 0)
    return {O::kFailed, fmt::format("chown failed: {}", std::strerror(errno)), "chown failed"};
  if (v.bad_mode && !S_ISLNK(st.st_mode)) {
    // chmod cannot act on an O_PATH descriptor directly; its /proc/self/fd link names
    // exactly this inode, so no path is resolved again.
    std::string self = fmt::format("/proc/self/fd/{}", fd.get());
    if (chmod(self.c_str(), wanted_mode) != 0)
      return {O::kFailed, fmt::format("chmod failed: {}", std::strerror(errno)), "chmod failed"};
  }
  return {O::kFixed, plan, ""};
}

}  // namespace fstrail::guard
