// VM tier: the bpf-lsm and bpf-fentry backends on a kernel that loads them (run by
// tests/vm/run-in-vm.sh inside tools/vmtest.sh; FSTRAIL_BACKEND names the backend).
// One backend is started per suite; each test adds its own roots while it runs, which
// is also what it tests. File operations run in a child process because the backend
// excludes its own process in the kernel.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "backend/bpf/common/subtree_backend.h"
#include "backend/kernel_features.h"

namespace fstrail {
namespace {

namespace fs = std::filesystem;

std::string backend_under_test() {
  const char* name = std::getenv("FSTRAIL_BACKEND");
  return name ? name : "";
}

// Runs `ops` in a child process (the backend ignores its own), returns its exit status.
int in_child(const std::function<void()>& ops) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ops();
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

void write_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) ::_exit(10);
  if (::write(fd, "x", 1) != 1) ::_exit(11);
  ::close(fd);
}

class SubtreeVmTest : public ::testing::Test {
 protected:
  static bool report_failed() { return false; }
  static void SetUpTestSuite() { start_suite_backend(report_failed()); }
  static void start_suite_backend(bool failed) {
    fs::remove_all(kBase);
    fs::create_directories(kBase + "/marker");
    const BackendInfo* info = find_backend(backend_under_test());
    ASSERT_NE(info, nullptr) << "FSTRAIL_BACKEND must name bpf-lsm or bpf-fentry, not '" << backend_under_test() << "'";
    Availability a = info->probe();
    ASSERT_TRUE(a.usable) << info->name << " cannot run in this VM: " << a.detail;
    auto backend = info->create();
    WatchSpec spec;
    spec.roots = {kBase + "/marker"};
    spec.report_failed = failed;
    Status s = backend->start(spec);
    ASSERT_TRUE(s) << s.error().message;
    backend_.reset(dynamic_cast<bpf::SubtreeBackend*>(backend.release()));
    ASSERT_NE(backend_, nullptr);
  }
  static void TearDownTestSuite() { backend_.reset(); }

  void SetUp() override { ASSERT_NE(backend_, nullptr) << "the backend did not start (see the first failure)"; }

  // Every event up to a marker file created after `ops` (a child process runs both).
  std::vector<Event> events_of(const std::function<void()>& ops) {
    std::string marker = fmt::format("{}/marker/m{}", kBase, ++markers_);
    EXPECT_EQ(in_child([&] {
                ops();
                write_file(marker);
              }),
              0);
    std::vector<Event> seen;
    bool marker_seen = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!marker_seen && std::chrono::steady_clock::now() < deadline) {
      Status s = backend_->poll(200, [&](Event&& e) {
        if (e.kind == EventKind::kCreate && e.path == marker) marker_seen = true;
        else if (e.path.rfind(kBase + "/marker/", 0) != 0) seen.push_back(std::move(e));
      });
      EXPECT_TRUE(s) << s.error().message;
    }
    EXPECT_TRUE(marker_seen) << "no event for the marker " << marker << " within 60 s";
    return seen;
  }

  static bool has(const std::vector<Event>& events, EventKind kind, const std::string& path) {
    for (const auto& e : events)
      if (e.kind == kind && e.path == path) return true;
    return false;
  }

  static std::string dump(const std::vector<Event>& events) {
    std::string out;
    for (const auto& e : events) out += fmt::format("  {} {} error={}\n", kind_name(e.kind), e.path, e.error.value_or(0));
    return out.empty() ? "  (none)\n" : out;
  }

  static inline const std::string kBase = "/tmp/fstrail-vm-" + backend_under_test();
  static inline std::unique_ptr<bpf::SubtreeBackend> backend_;
  static inline int markers_ = 0;
};

TEST_F(SubtreeVmTest, TmpfsMountedInsideWatchedTreeIsCrossed) {
  std::string root = kBase + "/mounts";
  fs::create_directories(root + "/inner");
  ASSERT_EQ(::mount("tmpfs", (root + "/inner").c_str(), "tmpfs", 0, nullptr), 0) << std::strerror(errno);
  ASSERT_TRUE(backend_->add_root(root));
  auto events = events_of([&] {
    ::mkdir((root + "/inner/a").c_str(), 0755);
    write_file(root + "/inner/a/file");
  });
  EXPECT_TRUE(has(events, EventKind::kMkdir, root + "/inner/a")) << dump(events);
  EXPECT_TRUE(has(events, EventKind::kCreate, root + "/inner/a/file")) << dump(events);
  EXPECT_TRUE(has(events, EventKind::kModify, root + "/inner/a/file")) << dump(events);
  ASSERT_TRUE(backend_->remove_root(root));
  ::umount(((root + "/inner").c_str()));
}

TEST_F(SubtreeVmTest, RootOfTheMountedFilesystemItselfIsWatched) {
  std::string mnt = kBase + "/tmpfs-root";
  fs::create_directories(mnt);
  ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, nullptr), 0) << std::strerror(errno);
  ASSERT_TRUE(backend_->add_root(mnt));
  auto events = events_of([&] { write_file(mnt + "/f"); });
  EXPECT_TRUE(has(events, EventKind::kCreate, mnt + "/f")) << dump(events);
  ASSERT_TRUE(backend_->remove_root(mnt));
  ::umount(mnt.c_str());
}

TEST_F(SubtreeVmTest, RenamedRootStaysWatched) {
  std::string before = kBase + "/rename-a/watched", after = kBase + "/rename-b";
  fs::create_directories(before);
  ASSERT_TRUE(backend_->add_root(before));
  auto events = events_of([&] {
    ::rename(before.c_str(), after.c_str());
    write_file(after + "/after-rename");
  });
  EXPECT_TRUE(has(events, EventKind::kCreate, after + "/after-rename")) << dump(events);
  ASSERT_TRUE(backend_->remove_root(after));
}

TEST_F(SubtreeVmTest, ThousandRootsEachWatchedOthersNot) {
  std::string base = kBase + "/many";
  for (int i = 0; i < 1001; ++i) fs::create_directories(fmt::format("{}/d{}", base, i));
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(backend_->add_root(fmt::format("{}/d{}", base, i)));
  auto events = events_of([&] {
    for (int i : {0, 500, 999, 1000}) write_file(fmt::format("{}/d{}/f", base, i));
  });
  for (int i : {0, 500, 999}) EXPECT_TRUE(has(events, EventKind::kCreate, fmt::format("{}/d{}/f", base, i))) << dump(events);
  EXPECT_FALSE(has(events, EventKind::kCreate, base + "/d1000/f")) << "d1000 is not a root\n" << dump(events);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(backend_->remove_root(fmt::format("{}/d{}", base, i)));
  auto after = events_of([&] { write_file(base + "/d0/g"); });
  EXPECT_FALSE(has(after, EventKind::kCreate, base + "/d0/g")) << "a removed root is still watched\n" << dump(after);
}

TEST_F(SubtreeVmTest, Depth200PathIsMatchedAndFullyNamed) {
  std::string root = kBase + "/deep";
  std::string leaf = root;
  for (int i = 0; i < 200; ++i) leaf += "/d";
  fs::create_directories(leaf);
  ASSERT_TRUE(backend_->add_root(root));
  auto events = events_of([&] { write_file(leaf + "/bottom"); });
  EXPECT_TRUE(has(events, EventKind::kCreate, leaf + "/bottom")) << dump(events);
  ASSERT_TRUE(backend_->remove_root(root));
}

TEST_F(SubtreeVmTest, EventsOutsideEveryRootAreNeverReported) {
  std::string root = kBase + "/inside", outside = kBase + "/outside";
  fs::create_directories(root);
  fs::create_directories(outside);
  ASSERT_TRUE(backend_->add_root(root));
  auto events = events_of([&] {
    std::string f = outside + "/f", g = outside + "/g", d = outside + "/d";
    write_file(f);
    ::chmod(f.c_str(), 0600);
    ::chown(f.c_str(), 65534, 65534);
    ::truncate(f.c_str(), 0);
    ::link(f.c_str(), (outside + "/hard").c_str());
    ::symlink("f", (outside + "/soft").c_str());
    ::mkdir(d.c_str(), 0755);
    ::rename(f.c_str(), g.c_str());
    ::unlink(g.c_str());
    ::unlink((outside + "/hard").c_str());
    ::unlink((outside + "/soft").c_str());
    ::rmdir(d.c_str());
  });
  for (const auto& e : events)
    EXPECT_EQ(e.path.rfind(outside, 0), std::string::npos) << "reported outside every root: " << kind_name(e.kind) << " " << e.path;
  ASSERT_TRUE(backend_->remove_root(root));
}

TEST_F(SubtreeVmTest, KernelAttributionOfAnotherUser) {
  std::string root = kBase + "/attribution";
  fs::create_directories(root);
  ::chmod(root.c_str(), 0777);
  ASSERT_TRUE(backend_->add_root(root));
  auto events = events_of([&] {
    int status = in_child([&] {  // a grandchild: the marker is then written as root
      if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(20);
      write_file(root + "/by-nobody");
    });
    if (status != 0) ::_exit(status);
  });
  bool found = false;
  for (const auto& e : events) {
    if (e.kind != EventKind::kCreate || e.path != root + "/by-nobody") continue;
    found = true;
    EXPECT_EQ(e.actor_source, ActorSource::kKernel);
    EXPECT_EQ(e.uid, 65534u);
    EXPECT_EQ(e.euid, 65534u);
    EXPECT_EQ(e.gid, 65534u);
    EXPECT_NE(e.ppid, ::getpid()) << "the grandchild's parent is the child";
    EXPECT_GT(e.ppid.value_or(0), 0);
    EXPECT_TRUE(e.cgroup.has_value());
    EXPECT_TRUE(e.comm.has_value());
  }
  EXPECT_TRUE(found) << dump(events);
  ASSERT_TRUE(backend_->remove_root(root));
}

// Failed operations: the hooks run before the operation, only its end knows the result.
std::vector<Event> failed_operations(const std::function<std::vector<Event>(const std::function<void()>&)>& events_of,
                                     bpf::SubtreeBackend& backend, const std::string& root) {
  fs::create_directories(root + "/full/child");
  {
    int fd = ::open((root + "/owned-by-root").c_str(), O_CREAT | O_WRONLY, 0644);
    ::close(fd);
  }
  ::chmod(root.c_str(), 0777);
  EXPECT_TRUE(backend.add_root(root));
  return events_of([&] {
    ::rmdir((root + "/full").c_str());  // ENOTEMPTY, after the rmdir hook
    int status = in_child([&] {
      if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(20);
      ::chmod((root + "/owned-by-root").c_str(), 0666);  // EPERM, after the chmod hook
    });
    if (status != 0) ::_exit(status);
  });
}

TEST_F(SubtreeVmTest, FailedOperationsAreNotReportedByDefault) {
  std::string root = kBase + "/failing-default";
  auto events = failed_operations([this](const std::function<void()>& ops) { return events_of(ops); }, *backend_, root);
  EXPECT_TRUE(events.empty()) << dump(events);
  ASSERT_TRUE(backend_->remove_root(root));
}

class FailedVmTest : public SubtreeVmTest {
 protected:
  static void SetUpTestSuite() { start_suite_backend(true); }
};

TEST_F(FailedVmTest, FailedOperationsAreReportedWithTheirError) {
  std::string root = kBase + "/failing-reported";
  auto events = failed_operations([this](const std::function<void()>& ops) { return events_of(ops); }, *backend_, root);
  bool rmdir_seen = false, chmod_seen = false;
  for (const auto& e : events) {
    if (e.kind == EventKind::kRmdir && e.path == root + "/full") {
      rmdir_seen = true;
      EXPECT_EQ(e.error, ENOTEMPTY);
    }
    if (e.kind == EventKind::kChmod && e.path == root + "/owned-by-root") {
      chmod_seen = true;
      EXPECT_EQ(e.error, EPERM);
      EXPECT_EQ(e.uid, 65534u);
    }
  }
  EXPECT_TRUE(rmdir_seen) << dump(events);
  EXPECT_TRUE(chmod_seen) << dump(events);
  ASSERT_TRUE(backend_->remove_root(root));
}

// `auto` picks the best backend that works: in this VM, bpf-lsm.
TEST(BackendChoiceVmTest, AutoChoosesBpfLsmAndDoctorSaysSo) {
  ASSERT_TRUE(host_kernel().bpf_lsm_active()) << "the VM boots with lsm=...,bpf";
  WatchSpec spec;
  spec.roots = {"/tmp"};
  auto selection = start_backend("auto", spec);
  ASSERT_TRUE(selection) << selection.error().message;
  EXPECT_EQ(selection->backend->name(), "bpf-lsm") << selection->why;

  const char* bin = std::getenv("FSTRAIL_BIN");
  ASSERT_NE(bin, nullptr) << "FSTRAIL_BIN must name the fstrail binary";
  FILE* doctor = ::popen(fmt::format("{} doctor", bin).c_str(), "r");
  ASSERT_NE(doctor, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, doctor)) out += buf;
  EXPECT_EQ(::pclose(doctor), 0) << out;
  EXPECT_NE(out.find("--backend auto would use: bpf-lsm"), std::string::npos) << out;
}

}  // namespace
}  // namespace fstrail
