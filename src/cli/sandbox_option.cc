#include <fmt/format.h>

#include "cli/commands.h"

namespace fstrail::cli {

void add_sandbox_option(CLI::App& app, std::string& mode) {
  app.add_option("--sandbox", mode,
                 "on: once started, keep only the capabilities this command uses, set no_new_privs and "
                 "allow only its system calls (docs/security.md); log: debugging, name each refused system "
                 "call on stderr instead of being killed; off: debugging, no restriction")
      ->check(CLI::IsMember({"on", "log", "off"}))
      ->capture_default_str();
}

bool enter_sandbox(const std::string& mode, const harden::SandboxRequest& request) {
  auto parsed = harden::parse_sandbox_mode(mode);
  if (!parsed) {
    fmt::print(stderr, "fstrail: {}\n", parsed.error().message);
    return false;
  }
  if (Status s = harden::enter_sandbox(request, *parsed, stderr); !s) {
    fmt::print(stderr, "fstrail: {} (use --sandbox off to run without restrictions, for debugging only)\n",
               s.error().message);
    return false;
  }
  return true;
}

}  // namespace fstrail::cli
