#include "enrich/procfs.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace fstrail {
namespace {

namespace fs = std::filesystem;

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    root = fs::temp_directory_path() / ("fstrail-proc-" + std::to_string(getpid()));
    fs::create_directories(root / "42");
    write("42/status", "Name:\tchown\nUmask:\t0022\nState:\tR\nPPid:\t41\nUid:\t0\t0\t0\t0\nGid:\t10\t11\t11\t11\n");
    write("42/loginuid", "1001");
    write("42/sessionid", "7");
    write("42/cgroup", "0::/user.slice/session-7.scope\n");
    fs::create_symlink("/usr/bin/chown", root / "42/exe");
  }
  void TearDown() override { fs::remove_all(root); }
  void write(const std::string& rel, const std::string& text) { std::ofstream(root / rel) << text; }
  fs::path root;
};

TEST_F(FakeProc, FillsUnknownActorFields) {
  Enricher enricher{ProcfsReader(root.string())};
  Event e;
  e.pid = 42;
  e.comm = "kept";  // known fields are not overwritten
  enricher.enrich(e);
  EXPECT_EQ(e.ppid, 41);
  EXPECT_EQ(e.uid, 0u);
  EXPECT_EQ(e.gid, 10u);
  EXPECT_EQ(e.egid, 11u);
  EXPECT_EQ(e.loginuid, 1001u);
  EXPECT_EQ(e.sessionid, 7u);
  EXPECT_EQ(e.comm, "kept");
  EXPECT_EQ(e.exe, "/usr/bin/chown");
  EXPECT_EQ(e.cgroup, "/user.slice/session-7.scope");
}

TEST_F(FakeProc, CredentialsComeFromStatusAloneAndLoginApart) {
  ProcfsReader reader(root.string());
  auto info = reader.read_credentials(42);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->ppid, 41);
  EXPECT_EQ(info->uid, 0u);
  EXPECT_EQ(info->euid, 0u);
  EXPECT_EQ(info->gid, 10u);
  EXPECT_EQ(info->egid, 11u);
  EXPECT_EQ(info->comm, "chown");
  EXPECT_FALSE(info->loginuid.has_value());
  EXPECT_FALSE(info->exe.has_value());
  EXPECT_FALSE(info->cgroup.has_value());
  ProcessInfo login = reader.read_login(42);
  EXPECT_EQ(login.loginuid, 1001u);
  EXPECT_EQ(login.sessionid, 7u);
  EXPECT_FALSE(reader.read_credentials(43).has_value());
}

TEST_F(FakeProc, UnsetLoginUidAndGoneProcessStayNull) {
  write("42/loginuid", "4294967295");
  Enricher enricher{ProcfsReader(root.string())};
  Event e;
  e.pid = 42;
  enricher.enrich(e);
  EXPECT_FALSE(e.loginuid.has_value());
  Event gone;
  gone.pid = 43;
  enricher.enrich(gone);
  EXPECT_FALSE(gone.uid.has_value());
  EXPECT_FALSE(gone.comm.has_value());
}

TEST(RealProc, ReadsThisProcess) {
  Enricher enricher;
  Event e;
  e.pid = getpid();
  enricher.enrich(e);
  EXPECT_EQ(e.uid, getuid());
  EXPECT_EQ(e.ppid, getppid());
  ASSERT_TRUE(e.exe.has_value());
  EXPECT_NE(e.exe->find("fstrail_unit_tests"), std::string::npos);
}

}  // namespace
}  // namespace fstrail
