// The host side of the VM tier: where the kernel refuses LSM and fentry programs (the
// CI host: lockdown), `auto` must not choose bpf-lsm or bpf-fentry and the probes must
// say why; where it accepts them, `auto` must choose bpf-lsm. Either way `fstrail
// doctor` agrees with the probes.
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backend/backend.h"

namespace fstrail {
namespace {

std::string run(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  ::pclose(pipe);
  return out;
}

TEST(HostBackendChoiceTest, AutoAndDoctorFollowTheLsmAndFentryProbes) {
  const BackendInfo* lsm = find_backend("bpf-lsm");
  const BackendInfo* fentry = find_backend("bpf-fentry");
  ASSERT_NE(lsm, nullptr);
  ASSERT_NE(fentry, nullptr);
  Availability lsm_here = lsm->probe(), fentry_here = fentry->probe();

  const char* bin = std::getenv("FSTRAIL_BIN");
  ASSERT_NE(bin, nullptr) << "FSTRAIL_BIN must name the fstrail binary";
  std::string doctor = run(fmt::format("{} doctor", bin));

  WatchSpec spec;
  spec.roots = {"/tmp"};
  auto selection = start_backend("auto", spec);
  ASSERT_TRUE(selection) << selection.error().message;
  std::string_view chosen = selection->backend->name();

  if (lsm_here.usable) {
    EXPECT_EQ(chosen, "bpf-lsm") << selection->why;
    EXPECT_NE(doctor.find("--backend auto would use: bpf-lsm"), std::string::npos) << doctor;
    return;
  }
  EXPECT_NE(chosen, "bpf-lsm") << selection->why;
  EXPECT_FALSE(lsm_here.detail.empty());
  EXPECT_NE(doctor.find(fmt::format("bpf-lsm         no        {}", lsm_here.detail)), std::string::npos) << doctor;
  if (!fentry_here.usable) {
    EXPECT_NE(chosen, "bpf-fentry") << selection->why;
    EXPECT_FALSE(fentry_here.detail.empty());
    EXPECT_NE(doctor.find(fmt::format("bpf-fentry      no        {}", fentry_here.detail)), std::string::npos) << doctor;
    EXPECT_NE(selection->why.find("bpf-fentry: " + fentry_here.detail), std::string::npos) << selection->why;
  }
  std::printf("here: bpf-lsm: %s\n      bpf-fentry: %s\n      %s\n", lsm_here.detail.c_str(),
              fentry_here.detail.c_str(), selection->why.c_str());
}

}  // namespace
}  // namespace fstrail
