#include "enrich/procfs.h"

#include <sys/syscall.h>
#include <sys/wait.h>
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

// A pidfd of a live process (this one): the process an event's pid named is still there.
int live_pidfd() { return static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0)); }

TEST_F(FakeProc, FillsUnknownActorFields) {
  Enricher enricher{ProcfsReader(root.string())};
  Event e;
  e.pid = 42;
  e.comm = "kept";  // known fields are not overwritten
  int pidfd = live_pidfd();
  ASSERT_GE(pidfd, 0);
  enricher.enrich(e, pidfd);
  close(pidfd);
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
  ProcStatusFiles files(root.string());
  auto info = files.read_credentials(42);
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
  ProcessInfo login = ProcfsReader(root.string()).read_login(42);
  EXPECT_EQ(login.loginuid, 1001u);
  EXPECT_EQ(login.sessionid, 7u);
  EXPECT_FALSE(files.read_credentials(43).has_value());
}

TEST_F(FakeProc, UnsetLoginUidAndGoneProcessStayNull) {
  write("42/loginuid", "4294967295");
  Enricher enricher{ProcfsReader(root.string())};
  Event e;
  e.pid = 42;
  int pidfd = live_pidfd();
  ASSERT_GE(pidfd, 0);
  enricher.enrich(e, pidfd);
  EXPECT_FALSE(e.loginuid.has_value());
  Event gone;
  gone.pid = 43;
  enricher.enrich(gone, pidfd);
  EXPECT_FALSE(gone.uid.has_value());
  EXPECT_FALSE(gone.comm.has_value());
  close(pidfd);
}

// Never a guess: without a pidfd, or with one whose process has exited, a pid's /proc
// entry may belong to a newer process, so nothing is filled.
TEST_F(FakeProc, NothingWithoutALiveProcessBehindThePid) {
  Enricher enricher{ProcfsReader(root.string())};
  Event no_pidfd;
  no_pidfd.pid = 42;
  enricher.enrich(no_pidfd, -1);
  EXPECT_FALSE(no_pidfd.uid.has_value());
  EXPECT_FALSE(no_pidfd.comm.has_value());

  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
  ASSERT_GE(pidfd, 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  Event exited;
  exited.pid = 42;  // /proc/42 exists (the fake one), as a recycled pid's would
  enricher.enrich(exited, pidfd);
  EXPECT_FALSE(exited.uid.has_value());
  EXPECT_FALSE(exited.exe.has_value());
  close(pidfd);
}

// The same answers as a fresh read, from a file kept open: for the same process each
// time (its egid changed in between is seen: each read formats the file afresh), and
// nothing once that process is gone (the open file is dropped, not reused).
TEST(RealProc, StatusFilesKeptOpenFollowTheProcess) {
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  bool root = geteuid() == 0;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    if (read(to_child[0], &c, 1) != 1) _exit(1);
    if (root && setresgid(static_cast<gid_t>(-1), 4242, static_cast<gid_t>(-1)) != 0) _exit(1);
    if (write(from_child[1], "x", 1) != 1) _exit(1);
    if (read(to_child[0], &c, 1) != 1) _exit(1);
    _exit(0);
  }
  ProcStatusFiles files;
  auto before = files.read_credentials(child);
  ASSERT_TRUE(before.has_value());
  EXPECT_EQ(before->ppid, getpid());
  EXPECT_EQ(before->egid, getegid());
  EXPECT_EQ(files.open_files(), 1u);
  char c = 'x';
  ASSERT_EQ(write(to_child[1], &c, 1), 1);
  ASSERT_EQ(read(from_child[0], &c, 1), 1);
  auto after = files.read_credentials(child);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->egid, root ? 4242u : getegid());
  EXPECT_EQ(after->egid, ProcStatusFiles().read_credentials(child)->egid);  // as a fresh open reads it
  EXPECT_EQ(files.open_files(), 1u);
  ASSERT_EQ(write(to_child[1], &c, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_FALSE(files.read_credentials(child).has_value());
  EXPECT_EQ(files.open_files(), 0u);
  auto self = files.read_credentials(getpid());
  ASSERT_TRUE(self.has_value());
  files.forget(getpid());
  EXPECT_EQ(files.open_files(), 0u);
  for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) close(fd);
}

TEST(RealProc, ReadsThisProcess) {
  Enricher enricher;
  Event e;
  e.pid = getpid();
  int pidfd = live_pidfd();
  ASSERT_GE(pidfd, 0);
  enricher.enrich(e, pidfd);
  close(pidfd);
  EXPECT_EQ(e.uid, getuid());
  EXPECT_EQ(e.ppid, getppid());
  ASSERT_TRUE(e.exe.has_value());
  EXPECT_NE(e.exe->find("fstrail_unit_tests"), std::string::npos);
}

}  // namespace
}  // namespace fstrail
