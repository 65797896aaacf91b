#include "backend/kernel_features.h"

#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fstrail {
namespace {

std::optional<std::string> read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

void ensure_securityfs() {
  static bool tried = false;
  if (tried || std::filesystem::exists("/sys/kernel/security/lsm")) return;
  tried = true;
  if (geteuid() == 0) ::mount("securityfs", "/sys/kernel/security", "securityfs", 0, nullptr);
}

}  // namespace

std::string KernelFeatures::release() const {
  utsname u{};
  uname(&u);
  return u.release;
}

bool KernelFeatures::is_root() const { return geteuid() == 0; }

std::optional<std::string> KernelFeatures::lockdown() const {
  ensure_securityfs();
  auto line = read_line("/sys/kernel/security/lockdown");
  if (!line) return std::nullopt;
  // "none [integrity] confidentiality": the bracketed word is the mode in force.
  auto open = line->find('['), close = line->find(']');
  if (open == std::string::npos || close == std::string::npos) return line;
  return line->substr(open + 1, close - open - 1);
}

std::optional<std::string> KernelFeatures::active_lsms() const {
  ensure_securityfs();
  return read_line("/sys/kernel/security/lsm");
}

bool KernelFeatures::has_btf() const { return std::filesystem::exists("/sys/kernel/btf/vmlinux"); }

std::optional<long> KernelFeatures::sysctl(const std::string& name) const {
  auto line = read_line("/proc/sys/" + name);
  if (!line) return std::nullopt;
  try {
    return std::stol(*line);
  } catch (...) {
    return std::nullopt;
  }
}

bool KernelFeatures::bpf_lsm_active() const {
  auto lsms = active_lsms();
  if (!lsms) return false;
  std::stringstream ss(*lsms);
  std::string name;
  while (std::getline(ss, name, ','))
    if (name == "bpf") return true;
  return false;
}

const KernelFeatures& host_kernel() {
  static const KernelFeatures features;
  return features;
}

}  // namespace fstrail
