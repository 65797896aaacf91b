#include "harden/sandbox.h"

#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>

#include <fmt/format.h>

namespace fstrail::harden {
namespace {

bool is_bpf(std::string_view backend) { return backend.starts_with("bpf-"); }

// A directory this process can create files in without CAP_DAC_OVERRIDE (one not made yet:
// its nearest existing ancestor, where it will be made).
bool writable_as_owner(std::string dir) {
  struct stat st {};
  while (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT || dir.size() <= 1) return false;
    size_t slash = dir.find_last_of('/', dir.size() - 2);
    dir = slash == 0 ? "/" : slash == std::string::npos ? "." : dir.substr(0, slash);
  }
  if (st.st_uid == ::geteuid()) return (st.st_mode & S_IWUSR) && (st.st_mode & S_IXUSR);
  if (st.st_gid == ::getegid()) return (st.st_mode & S_IWGRP) && (st.st_mode & S_IXGRP);
  return (st.st_mode & S_IWOTH) && (st.st_mode & S_IXOTH);
}

void keep(std::vector<KeptCapability>& kept, int cap, std::string why) {
  for (auto& k : kept)
    if (k.cap == cap) {
      k.why += "; " + why;
      return;
    }
  kept.push_back({cap, std::move(why)});
}

using CapPtr = std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)>;

// Keeps the capabilities of `kept` this process holds (an unprivileged user holds none: its
// sets stay empty).
Status set_process_capabilities(const std::vector<KeptCapability>& kept) {
  CapPtr self(cap_get_proc(), cap_free);
  CapPtr caps(cap_init(), cap_free);
  if (!self || !caps) return Error::from_errno("sandbox: cap_get_proc");
  std::vector<cap_value_t> values;
  for (const auto& k : kept) {
    cap_flag_value_t held = CAP_CLEAR;
    if (cap_get_flag(self.get(), static_cast<cap_value_t>(k.cap), CAP_PERMITTED, &held) == 0 &&
        held == CAP_SET)
      values.push_back(static_cast<cap_value_t>(k.cap));
  }
  if (!values.empty() &&
      (cap_set_flag(caps.get(), CAP_EFFECTIVE, static_cast<int>(values.size()), values.data(), CAP_SET) !=
           0 ||
       cap_set_flag(caps.get(), CAP_PERMITTED, static_cast<int>(values.size()), values.data(), CAP_SET) != 0))
    return Error::from_errno("sandbox: cap_set_flag");
  if (cap_set_proc(caps.get()) != 0)
    return Error::from_errno("sandbox: cannot lower the capability sets (capset)");
  return Ok{};
}

// The bounding set limits what an execve could ever give back. Lowering it needs
// CAP_SETPCAP; a process started without it (an unprivileged user) holds no capability to
// lose, and no_new_privs stops an execve from gaining any.
Status drop_bounding_set(const std::vector<KeptCapability>& kept) {
  cap_flag_value_t have = CAP_CLEAR;
  CapPtr self(cap_get_proc(), cap_free);
  if (!self || cap_get_flag(self.get(), CAP_SETPCAP, CAP_EFFECTIVE, &have) != 0)
    return Error::from_errno("sandbox: cap_get_proc");
  if (have != CAP_SET) return Ok{};
  for (cap_value_t cap = 0; cap_get_bound(cap) >= 0; ++cap) {
    bool wanted = std::any_of(kept.begin(), kept.end(), [cap](const auto& k) { return k.cap == cap; });
    if (wanted || cap_get_bound(cap) != 1) continue;
    if (cap_drop_bound(cap) != 0)
      return Error::from_errno(fmt::format("sandbox: cannot drop capability {} from the bounding set", cap));
  }
  return Ok{};
}

}  // namespace

Result<SandboxMode> parse_sandbox_mode(std::string_view text) {
  if (text == "on") return SandboxMode::kOn;
  if (text == "log") return SandboxMode::kLog;
  if (text == "off") return SandboxMode::kOff;
  return Error{
      fmt::format("--sandbox {}: use on, log (debugging: name the system calls the filter refuses) "
                  "or off (debugging: no restriction)",
                  text)};
}

std::vector<KeptCapability> capabilities_for(const SandboxRequest& r) {
  std::vector<KeptCapability> kept;
  if (r.backend == "fanotify") {
    // Not CAP_SYS_ADMIN: fanotify_init needed it, but an inode mark added later by that group
    // needs only read access to the directory (filesystem and mount marks would need it).
    keep(kept, CAP_DAC_READ_SEARCH,
         "open_by_handle_at (names of moved directories); marking other users' new "
         "directories");
    keep(kept, CAP_SYS_PTRACE, "/proc/PID/exe of other users' processes");
  } else if (r.backend == "inotify") {
    keep(kept, CAP_DAC_READ_SEARCH, "inotify_add_watch and listing of other users' new directories");
  } else if (is_bpf(r.backend)) {
    keep(kept, CAP_SYS_PTRACE, "/proc/PID/exe, cwd and fd links of other users' processes");
  }
  if (r.scans_trees)
    keep(kept, CAP_DAC_READ_SEARCH, "guard: scanning and re-checking other users' directories");
  if (r.remediates) {
    keep(kept, CAP_CHOWN, "guard remediation: chown back");
    keep(kept, CAP_FOWNER, "guard remediation: chmod of files this process does not own");
    keep(kept, CAP_FSETID, "guard remediation: a set-group-ID mode (2770) put back keeps its bit on files of other groups");
    keep(kept, CAP_DAC_READ_SEARCH, "guard remediation: reaching files in other users' directories");
  }
  for (const auto& dir : r.write_dirs)
    if (!writable_as_owner(dir))
      keep(kept, CAP_DAC_OVERRIDE, "writing in " + dir + " (not writable as its owner)");
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.cap < b.cap; });
  return kept;
}

Status enter_sandbox(const SandboxRequest& request, SandboxMode mode, FILE* log) {
  if (mode == SandboxMode::kOff) {
    fmt::print(log,
               "fstrail: {}: --sandbox off: every capability kept, no system call filter (debugging only)\n",
               request.command);
    return Ok{};
  }
  auto kept = capabilities_for(request);
  if (Status s = drop_bounding_set(kept); !s) return s;
  if (Status s = set_process_capabilities(kept); !s) return s;
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    return Error::from_errno("sandbox: cannot clear the ambient capabilities");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return Error::from_errno("sandbox: cannot set no_new_privs");
  if (Status s = install_syscall_filter(request.backend, mode); !s) return s;
  return Ok{};
}

}  // namespace fstrail::harden
