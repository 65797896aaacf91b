#include <fmt/format.h>

#include "backend/kernel_features.h"
#include "cli/commands.h"

namespace fstrail::cli {
namespace {

std::string or_unknown(const std::optional<std::string>& v, const char* why) {
  return v ? *v : fmt::format("unknown ({})", why);
}

std::string or_unknown(const std::optional<long>& v) { return v ? std::to_string(*v) : "unknown"; }

int run_doctor() {
  const KernelFeatures& k = host_kernel();
  fmt::print("kernel        {}\n", k.release());
  fmt::print("privileges    {}\n", k.is_root() ? "root" : "not root (fanotify and eBPF backends need root)");
  fmt::print("lockdown      {}\n", or_unknown(k.lockdown(), "securityfs not readable; run as root"));
  fmt::print("active LSMs   {}{}\n", or_unknown(k.active_lsms(), "securityfs not readable; run as root"),
             k.active_lsms() && !k.bpf_lsm_active() ? "  (no 'bpf': BPF LSM programs would never run; "
                                                      "boot with lsm=...,bpf)"
                                                    : "");
  fmt::print("BTF           {}\n", k.has_btf() ? "/sys/kernel/btf/vmlinux" : "absent (CO-RE eBPF backends need it)");
  fmt::print("inotify       max_user_watches={} max_user_instances={}\n",
             or_unknown(k.sysctl("fs/inotify/max_user_watches")), or_unknown(k.sysctl("fs/inotify/max_user_instances")));
  fmt::print("fanotify      max_user_marks={} max_queued_events={}\n",
             or_unknown(k.sysctl("fs/fanotify/max_user_marks")), or_unknown(k.sysctl("fs/fanotify/max_queued_events")));
  fmt::print("\nbackends, best first:\n");
  const BackendInfo* chosen = nullptr;
  for (const auto& b : all_backends()) {
    Availability a = b.probe();
    if (a.usable && !chosen) chosen = &b;
    fmt::print("  {:<15} {:<9} {}\n", b.name, a.usable ? "works" : "no", a.detail);
  }
  fmt::print("\n--backend auto would use: {}\n", chosen ? std::string(chosen->name) : "nothing (see reasons above)");
  return kExitOk;
}

}  // namespace

RunFn add_doctor_command(CLI::App& app) {
  app.add_subcommand("doctor", "Explain which backends can run on this machine, and why not when they cannot");
  return run_doctor;
}

}  // namespace fstrail::cli
