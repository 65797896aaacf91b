// What this kernel allows, read once: lockdown, active LSMs, BTF, limits.
// Virtual so tests can pretend to be another kernel.
#pragma once

#include <optional>
#include <string>

namespace fstrail {

class KernelFeatures {
 public:
  virtual ~KernelFeatures() = default;
  virtual std::string release() const;
  virtual bool is_root() const;
  // "none", "integrity" or "confidentiality"; nullopt when securityfs cannot be read.
  // Mounts securityfs on /sys/kernel/security when it is empty and we are root.
  virtual std::optional<std::string> lockdown() const;
  virtual std::optional<std::string> active_lsms() const;  // "lockdown,capability,...,bpf"
  virtual bool has_btf() const;                             // /sys/kernel/btf/vmlinux
  virtual std::optional<long> sysctl(const std::string& name) const;  // "fs/inotify/max_user_watches"

  bool bpf_lsm_active() const;  // "bpf" in active_lsms()
};

const KernelFeatures& host_kernel();

}  // namespace fstrail
