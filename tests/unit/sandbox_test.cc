// The sandbox's tables without entering it (the host tier enters it: tests/host/sandbox_test.py).
#include "harden/sandbox.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "support/temp_dir.h"

namespace fstrail::harden {
namespace {

std::vector<int> caps_of(const SandboxRequest& request) {
  std::vector<int> caps;
  for (const auto& k : capabilities_for(request)) {
    EXPECT_FALSE(k.why.empty()) << k.cap;
    caps.push_back(k.cap);
  }
  return caps;
}

SandboxRequest request(std::string command, std::string backend) {
  SandboxRequest r;
  r.command = std::move(command);
  r.backend = std::move(backend);
  r.scans_trees = r.command == "guard";
  r.remediates = r.command == "guard";
  return r;
}

TEST(SandboxTest, EachCommandAndBackendKeepsTheDocumentedCapabilities) {
  // docs/security.md, "What each command keeps".
  EXPECT_EQ(caps_of(request("watch", "fanotify")), (std::vector<int>{CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE}));
  EXPECT_EQ(caps_of(request("record", "inotify")), (std::vector<int>{CAP_DAC_READ_SEARCH}));
  for (const char* bpf : {"bpf-tracepoint", "bpf-lsm", "bpf-fentry"})
    EXPECT_EQ(caps_of(request("watch", bpf)), (std::vector<int>{CAP_SYS_PTRACE}));
  EXPECT_EQ(caps_of(request("guard", "fanotify")),
            (std::vector<int>{CAP_CHOWN, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_SYS_PTRACE}));
  EXPECT_EQ(caps_of(request("guard", "inotify")),
            (std::vector<int>{CAP_CHOWN, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID}));
  auto alerts_only = request("guard", "bpf-lsm");
  alerts_only.remediates = false;
  EXPECT_EQ(caps_of(alerts_only), (std::vector<int>{CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE}));
}

TEST(SandboxTest, AStoreDirectoryNotWritableAsItsOwnerKeepsDacOverride) {
  testing::TempDir tmp{"sandbox"};
  std::string locked = tmp.path() + "/locked";
  std::filesystem::create_directory(locked);
  auto r = request("record", "bpf-tracepoint");
  r.write_dirs = {tmp.path(), tmp.path() + "/not-made-yet/spool"};
  EXPECT_EQ(caps_of(r), (std::vector<int>{CAP_SYS_PTRACE}));
  ASSERT_EQ(::chmod(locked.c_str(), 0555), 0);
  r.write_dirs.push_back(locked);
  EXPECT_EQ(caps_of(r), (std::vector<int>{CAP_DAC_OVERRIDE, CAP_SYS_PTRACE}));
}

TEST(SandboxTest, TheAllowListHasEachBackendsCallsAndNeverExec) {
  auto has = [](std::string_view backend, std::string_view name) {
    auto names = allowed_syscalls(backend);
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  EXPECT_TRUE(has("fanotify", "fanotify_mark"));
  EXPECT_TRUE(has("fanotify", "open_by_handle_at"));
  EXPECT_TRUE(has("inotify", "inotify_add_watch"));
  EXPECT_FALSE(has("inotify", "fanotify_mark"));
  for (const char* bpf : {"bpf-tracepoint", "bpf-lsm", "bpf-fentry"}) EXPECT_TRUE(has(bpf, "bpf"));
  EXPECT_FALSE(has("fanotify", "bpf"));
  for (const char* backend : {"fanotify", "inotify", "bpf-tracepoint", "bpf-lsm", "bpf-fentry"})
    for (const char* never : {"execve", "execveat", "fork", "vfork", "ptrace", "clone", "clone3", "socket"})
      EXPECT_FALSE(has(backend, never)) << backend << " " << never;  // clone, socket: argument rules only
}

TEST(SandboxTest, ModesAreOnLogOff) {
  EXPECT_EQ(*parse_sandbox_mode("on"), SandboxMode::kOn);
  EXPECT_EQ(*parse_sandbox_mode("log"), SandboxMode::kLog);
  EXPECT_EQ(*parse_sandbox_mode("off"), SandboxMode::kOff);
  EXPECT_FALSE(parse_sandbox_mode("yes"));
}

}  // namespace
}  // namespace fstrail::harden
