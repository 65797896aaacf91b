// Host integration: runs the real `fstrail watch --json` with the backend named by
// FSTRAIL_BACKEND on a fresh temporary tree, makes changes, and checks the events.
// Needs root, util-linux (setpriv) and nothing else from the machine: no users are
// created (the other user is the numeric 65534), so /etc may be read-only.
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "child_process.h"
#include "core/text.h"
#include "support/temp_dir.h"

namespace {

using fstrail::testing::TempDir;
using Json = nlohmann::json;
using namespace std::chrono_literals;
// How long an expected event (or the startup line) may take to show up: generous, as
// loading BPF programs in the emulated VM of the VM tier takes seconds.
constexpr auto kDeadline = 30s;
constexpr uint32_t kOtherUid = 65534;

// What each backend can report. A new backend adds one row.
struct BackendRow {
  std::string name;
  std::set<std::string> kinds;  // kinds it reports as such; the others come out as some other kind
  std::string actor_source;     // "kernel" | "procfs" | "none"
  bool knows_actor;             // pid and uid of the process behind an event
  bool knows_old_attrs;         // chmod old_mode, chown old_uid/old_gid
  bool filters_uid;             // --uid works (else: exit 2 with a reason)
  // The kernel queue is bounded (inotify: fs.inotify.max_queued_events), so a stopped
  // reader overflows it; fanotify runs with FAN_UNLIMITED_QUEUE.
  bool bounded_queue;
  bool needs_root;  // else it runs as any user
};

const std::vector<BackendRow>& backend_table() {
  static const std::set<std::string> all = {"create", "mkdir",  "delete", "rmdir",   "rename", "modify", "chmod",
                                            "chown",  "truncate", "link", "symlink", "xattr",  "open"};
  static const std::vector<BackendRow> rows = {
      {"bpf-lsm", all, "kernel", true, true, true, false, true},     // VM tier (tests/vm/run-in-vm.sh)
      {"bpf-fentry", all, "kernel", true, true, true, false, true},  // VM tier
      {"fanotify", all, "procfs", true, true, true, false, true},
      {"inotify", all, "none", false, true, false, true, false},
      // An 8 MiB ring buffer: the overflow test's burst fits (a real overflow is
      // counted as `lost` too, but bpf-tracepoint has nothing to rescan).
      {"bpf-tracepoint", all, "kernel", true, true, true, false, true},
  };
  return rows;
}

const BackendRow* current_row() {
  const char* name = std::getenv("FSTRAIL_BACKEND");
  if (!name) return nullptr;
  for (const auto& row : backend_table())
    if (row.name == name) return &row;
  return nullptr;
}

std::string fstrail_bin() {
  const char* bin = std::getenv("FSTRAIL_BIN");
  return bin ? bin : FSTRAIL_DEFAULT_BIN;
}

using fstrail::testing::Child;

class WatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    row_ = current_row();
    ASSERT_NE(row_, nullptr) << "set FSTRAIL_BACKEND to a backend of the table in " << __FILE__
                             << " (e.g. FSTRAIL_BACKEND=fanotify)";
    ASSERT_EQ(geteuid(), 0u) << "the host integration tests need root (fanotify, setpriv, chown); run: sudo ctest -L host";
    ASSERT_EQ(access(fstrail_bin().c_str(), X_OK), 0) << "fstrail binary not found: " << fstrail_bin()
                                                     << " (set FSTRAIL_BIN)";
    ASSERT_EQ(chmod(base_.c_str(), 0755), 0);  // the other user must reach the tree
    root_ = base_ + "/watched";
    outside_ = base_ + "/outside";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
  }
  void TearDown() override { watcher_.reset(); }

  std::string in_root(const std::string& name) const { return root_ + "/" + name; }

  // Starts fstrail on the tree and waits for its "watching" line.
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {fstrail_bin(), "watch", "--json", "--backend", row_->name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(root_);
    watcher_ = std::make_unique<Child>(argv);
    std::string want = "fstrail: watching 1 path(s) with " + row_->name;
    auto until = std::chrono::steady_clock::now() + kDeadline;
    while (watcher_->stderr_.find(want) == std::string::npos && std::chrono::steady_clock::now() < until) {
      if (!watcher_->pump(50ms)) break;
    }
    ASSERT_NE(watcher_->stderr_.find(want), std::string::npos) << "no startup line; stderr: " << watcher_->stderr_;
  }

  // Parses new complete lines of output into events_.
  void parse() {
    size_t nl;
    while ((nl = watcher_->stdout_.find('\n', parsed_)) != std::string::npos) {
      std::string line = watcher_->stdout_.substr(parsed_, nl - parsed_);
      parsed_ = nl + 1;
      events_.push_back(Json::parse(line));
    }
  }

  // The first event (seen or still to come, within the deadline) that satisfies `pred`.
  std::optional<Json> wait_for(const std::function<bool(const Json&)>& pred) {
    size_t checked = 0;
    auto until = std::chrono::steady_clock::now() + kDeadline;
    for (;;) {
      parse();
      for (; checked < events_.size(); ++checked)
        if (pred(events_[checked])) return events_[checked];
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      watcher_->pump(50ms);
    }
  }
  std::optional<Json> wait_for(const std::string& kind, const std::string& path) {
    return wait_for([&](const Json& e) { return e["kind"] == kind && e["path"] == path; });
  }

  // A change inside the tree that marks a point in the event stream: once its event is
  // seen, every event of earlier changes has been seen too.
  void sync_marker() {
    std::string marker = in_root("marker-" + std::to_string(markers_++));
    int fd = open(marker.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
    ASSERT_TRUE(wait_for([&](const Json& e) { return e["path"] == marker; })) << "marker " << marker << " not seen";
  }

  std::vector<Json> events_matching(const std::function<bool(const Json&)>& pred) {
    parse();
    std::vector<Json> out;
    for (const auto& e : events_)
      if (pred(e)) out.push_back(e);
    return out;
  }

  // The actor fields of an event done by this test process (root).
  void expect_our_actor(const Json& e) {
    EXPECT_EQ(e["backend"], row_->name) << e;
    EXPECT_EQ(e["actor_source"], row_->actor_source) << e;
    if (row_->knows_actor) {
      EXPECT_EQ(e["pid"], getpid()) << e;
      EXPECT_EQ(e["uid"], 0) << e;
    } else {
      EXPECT_TRUE(e["pid"].is_null() && e["uid"].is_null()) << e;
    }
  }

  // Checks the event for `path` of `kind`, or when the backend cannot tell that kind,
  // that the change was reported at all.
  std::optional<Json> expect_kind(const std::string& kind, const std::string& path) {
    if (row_->kinds.contains(kind)) {
      auto e = wait_for(kind, path);
      EXPECT_TRUE(e) << "no " << kind << " event for " << path << "; events:\n" << dump();
      if (e) expect_our_actor(*e);
      return e;
    }
    auto e = wait_for([&](const Json& j) { return j["path"] == path; });
    EXPECT_TRUE(e) << row_->name << " cannot report " << kind << " but reported nothing at all for " << path;
    return std::nullopt;
  }

  std::string dump() {
    parse();
    std::string out;
    for (const auto& e : events_) out += e.dump() + "\n";
    return out + watcher_->stderr_;
  }

  void write_file(const std::string& path, const std::string& text) {
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
  }

  // Stops fstrail with `sig`; expects exit 0 and the summary line.
  void stop_and_expect_summary(int sig = SIGINT) {
    int status = watcher_->stop(sig);
    EXPECT_EQ(status, 0) << "stderr: " << watcher_->stderr_;
    EXPECT_NE(watcher_->stderr_.find(" events"), std::string::npos) << watcher_->stderr_;
    EXPECT_NE(watcher_->stderr_.find(" lost"), std::string::npos) << watcher_->stderr_;
    parse();
  }

  const BackendRow* row_ = nullptr;
  TempDir dir_{"it"};
  const std::string base_ = dir_.path();
  std::string root_, outside_;
  std::unique_ptr<Child> watcher_;
  std::vector<Json> events_;
  size_t parsed_ = 0;
  int markers_ = 0;
};

TEST_F(WatchTest, StartupLineAndSummaryOnSigint) {
  start();
  write_file(in_root("a"), "x");
  ASSERT_TRUE(wait_for("create", in_root("a")));
  stop_and_expect_summary(SIGINT);
  EXPECT_NE(watcher_->stderr_.find("create 1"), std::string::npos) << watcher_->stderr_;
}

TEST_F(WatchTest, SummaryOnSigterm) {
  start();
  stop_and_expect_summary(SIGTERM);
  EXPECT_NE(watcher_->stderr_.find("fstrail: 0 events, 0 lost"), std::string::npos) << watcher_->stderr_;
}

TEST_F(WatchTest, MissingPathExits2WithReason) {
  Child c({fstrail_bin(), "watch", "--json", "--backend", row_->name, root_ + "/does-not-exist"});
  EXPECT_EQ(c.wait_exit(), 2);
  EXPECT_NE(c.stderr_.find("cannot watch " + root_ + "/does-not-exist: No such file or directory"),
            std::string::npos)
      << c.stderr_;
}

// Without root: a backend that needs it refuses with a one-line reason naming the fix
// (exit 2); one that does not, runs.
TEST_F(WatchTest, AsAnotherUser) {
  Child c({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", fstrail_bin(), "watch", "--backend",
           row_->name, root_});
  if (row_->needs_root) {
    EXPECT_EQ(c.wait_exit(), 2);
    EXPECT_NE(c.stderr_.find("backend " + row_->name + " cannot run here: needs root"), std::string::npos)
        << c.stderr_;
    EXPECT_NE(c.stderr_.find("sudo"), std::string::npos) << c.stderr_;
    return;
  }
  auto until = std::chrono::steady_clock::now() + kDeadline;
  while (c.stderr_.find("fstrail: watching 1 path(s) with " + row_->name) == std::string::npos &&
         std::chrono::steady_clock::now() < until && c.pump(50ms)) {
  }
  EXPECT_NE(c.stderr_.find("fstrail: watching 1 path(s) with " + row_->name), std::string::npos) << c.stderr_;
  EXPECT_EQ(c.stop(SIGINT), 0) << c.stderr_;
}

TEST_F(WatchTest, CreateAndModifyOncePerWriteSession) {
  start();
  std::string path = in_root("file.txt");
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(write(fd, "abc", 3), 3);
  close(fd);
  auto created = expect_kind("create", path);
  if (created) {
    EXPECT_EQ(created->at("is_dir"), false);
    EXPECT_FALSE(created->at("ino").is_null()) << *created;
  }
  expect_kind("modify", path);
  // Opened for writing but not written: no modify.
  fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  close(fd);
  sync_marker();
  auto modifies = events_matching([&](const Json& e) { return e["kind"] == "modify" && e["path"] == path; });
  EXPECT_EQ(modifies.size(), 1u) << dump();
  // open is reported only when asked for.
  EXPECT_TRUE(events_matching([](const Json& e) { return e["kind"] == "open"; }).empty()) << dump();
}

TEST_F(WatchTest, MkdirRmdirDelete) {
  start();
  std::string dir = in_root("d");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  if (auto e = expect_kind("mkdir", dir)) {
    EXPECT_EQ(e->at("is_dir"), true);
  }
  write_file(dir + "/f", "x");
  expect_kind("create", dir + "/f");
  ASSERT_EQ(unlink((dir + "/f").c_str()), 0);
  expect_kind("delete", dir + "/f");
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  expect_kind("rmdir", dir);
}

TEST_F(WatchTest, RemovingTheRootItselfIsReported) {
  start();
  write_file(in_root("f"), "x");
  ASSERT_TRUE(wait_for([&](const Json& e) { return e["path"] == in_root("f"); })) << dump();
  ASSERT_EQ(unlink(in_root("f").c_str()), 0);
  ASSERT_EQ(rmdir(root_.c_str()), 0);
  auto e = wait_for("rmdir", root_);
  ASSERT_TRUE(e) << "no rmdir of the watched root; events:\n" << dump();
  EXPECT_EQ(e->at("is_dir"), true) << *e;
  // The backends that watch directories by inode say that nothing there is watched now.
  if (row_->name == "fanotify" || row_->name == "inotify") {
    const std::string warning = "fstrail: " + root_ + " was removed: it is no longer watched";
    auto until = std::chrono::steady_clock::now() + kDeadline;
    while (watcher_->stderr_.find(warning) == std::string::npos && std::chrono::steady_clock::now() < until)
      watcher_->pump(50ms);
    EXPECT_NE(watcher_->stderr_.find(warning), std::string::npos) << watcher_->stderr_;
  }
  stop_and_expect_summary();
}

// inotify only (host.fanotify and host.bpf-tracepoint filter InotifyWatchTest out, and
// so does the VM tier): how inotify, which watches by path, meets what it cannot follow.
class InotifyWatchTest : public WatchTest {};

// The watched root renamed, then a directory made under its old name: inotify cannot learn
// the root's new path (IN_MOVE_SELF has no name), so it says once that it stopped (a
// notice and a counted `lost`) and reports nothing more under the old path: not what
// happens in the moved tree, nor in the new directory of the same name. inotify only: the
// other backends follow the root by identity (their own items of issue 14).
TEST_F(InotifyWatchTest, RenamedRootIsNeverReportedUnderItsOldPath) {
  ASSERT_EQ(mkdir(in_root("sub").c_str(), 0755), 0);
  start();
  write_file(in_root("before"), "x");
  ASSERT_TRUE(wait_for("create", in_root("before"))) << dump();
  const std::string moved = base_ + "/moved";
  ASSERT_EQ(rename(root_.c_str(), moved.c_str()), 0);
  write_file(moved + "/after", "x");
  write_file(moved + "/sub/after", "x");
  auto lost = wait_for([](const Json& e) { return e["kind"] == "lost"; });
  ASSERT_TRUE(lost) << dump();
  EXPECT_EQ(lost->at("reason"), "unwatched-directory") << *lost;
  EXPECT_EQ(lost->at("path"), root_) << *lost;
  ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  write_file(in_root("new"), "x");
  ASSERT_EQ(mkdir(in_root("newdir").c_str(), 0755), 0);
  write_file(moved + "/later", "x");
  std::this_thread::sleep_for(500ms);
  stop_and_expect_summary();
  size_t after_loss = 0;
  while (after_loss < events_.size() && events_[after_loss]["kind"] != "lost") ++after_loss;
  for (size_t i = after_loss + 1; i < events_.size(); ++i) {
    const std::string path = events_[i]["path"];
    EXPECT_FALSE(path == root_ || path.starts_with(root_ + "/")) << "under the old path: " << events_[i];
  }
  EXPECT_EQ(events_matching([](const Json& e) { return e["kind"] == "lost"; }).size(), 1u) << dump();
  EXPECT_NE(watcher_->stderr_.find("fstrail: " + root_ + " was moved"), std::string::npos) << watcher_->stderr_;
  EXPECT_NE(watcher_->stderr_.find("unwatched-directory 1"), std::string::npos) << watcher_->stderr_;
}

TEST_F(WatchTest, RenameFileAndDirectory) {
  start();
  write_file(in_root("old"), "x");
  ASSERT_TRUE(wait_for("create", in_root("old")));
  ASSERT_EQ(rename(in_root("old").c_str(), in_root("new").c_str()), 0);
  if (auto e = expect_kind("rename", in_root("new"))) {
    EXPECT_EQ(e->at("old_path"), in_root("old"));
  }
  ASSERT_EQ(mkdir(in_root("dir1").c_str(), 0755), 0);
  ASSERT_TRUE(wait_for("mkdir", in_root("dir1")));
  ASSERT_EQ(rename(in_root("dir1").c_str(), in_root("dir2").c_str()), 0);
  if (auto e = expect_kind("rename", in_root("dir2"))) {
    EXPECT_EQ(e->at("old_path"), in_root("dir1"));
  }
  // Paths below a renamed directory follow it.
  write_file(in_root("dir2/inside"), "x");
  expect_kind("create", in_root("dir2/inside"));
}

// create + write + close + chmod back to back: most land within one timestamp tick,
// and the create is read after the chmod. Every chmod is still reported as a chmod,
// with the old mode when the backend knows it and null otherwise, never as an xattr
// change and never dropped.
// A directory's subtree is moved or forgotten as a whole, and only it: a sibling whose
// name extends it ("d-x", "d.x" sort between "d" and "d/...") keeps its own path.
TEST_F(WatchTest, RenamedOrRemovedDirectoryLeavesSimilarlyNamedSiblingsAlone) {
  for (const char* dir : {"d", "d/sub", "d-x", "d.x", "e"}) ASSERT_EQ(mkdir(in_root(dir).c_str(), 0755), 0);
  start();
  ASSERT_EQ(rename(in_root("d").c_str(), in_root("moved").c_str()), 0);
  ASSERT_TRUE(wait_for("rename", in_root("moved")));
  write_file(in_root("moved/sub/f"), "x");
  expect_kind("create", in_root("moved/sub/f"));
  write_file(in_root("d-x/f"), "x");
  expect_kind("create", in_root("d-x/f"));
  ASSERT_EQ(rmdir(in_root("e").c_str()), 0);
  ASSERT_TRUE(wait_for("rmdir", in_root("e")));
  write_file(in_root("d.x/f"), "x");
  expect_kind("create", in_root("d.x/f"));
}

TEST_F(WatchTest, ChmodRightAfterCreateIsReportedAsChmod) {
  start();
  constexpr int kFiles = 100;
  for (int i = 0; i < kFiles; ++i) {
    std::string path = in_root("quick" + std::to_string(i));
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "x", 1), 1);
    ASSERT_EQ(close(fd), 0);
    ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  }
  sync_marker();
  for (int i = 0; i < kFiles; ++i) {
    std::string path = in_root("quick" + std::to_string(i));
    auto of = [&](const std::string& kind) {
      return events_matching([&](const Json& e) { return e["path"] == path && e["kind"] == kind; });
    };
    EXPECT_TRUE(of("xattr").empty()) << path << " reported as xattr; events:\n" << dump();
    if (!row_->kinds.contains("chmod")) continue;
    auto chmods = of("chmod");
    ASSERT_EQ(chmods.size(), 1u) << path << "; events:\n" << dump();
    EXPECT_EQ(chmods[0].at("new_mode"), S_IFREG | 0600) << chmods[0];
    EXPECT_TRUE(chmods[0].at("old_mode").is_null() || chmods[0].at("old_mode") == (S_IFREG | 0644)) << chmods[0];
  }
}

TEST_F(WatchTest, ChmodChownWithOldAndNewValues) {
  std::string path = in_root("attrs");
  write_file(path, "x");
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  start();
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  if (auto e = expect_kind("chmod", path)) {
    EXPECT_EQ(e->at("new_mode"), S_IFREG | 0600) << *e;
    if (row_->knows_old_attrs) {
      EXPECT_EQ(e->at("old_mode"), S_IFREG | 0644) << *e;
    }
  }
  ASSERT_EQ(chown(path.c_str(), kOtherUid, kOtherUid), 0);
  if (auto e = expect_kind("chown", path)) {
    EXPECT_EQ(e->at("new_uid"), kOtherUid) << *e;
    EXPECT_EQ(e->at("new_gid"), kOtherUid) << *e;
    if (row_->knows_old_attrs) {
      EXPECT_EQ(e->at("old_uid"), 0) << *e;
      EXPECT_EQ(e->at("old_gid"), 0) << *e;
    }
  }
}

// One event per attribute change, on files and directories alike (a directory's change
// reached inotify twice, from its own watch and its parent's, and came out as a second
// chmod with old_mode null); a chown that leaves the mode as it was brings no chmod.
TEST_F(WatchTest, OneEventPerChmodOrChownOnFilesAndDirectories) {
  for (const char* dir : {"d", "d-owned"}) ASSERT_EQ(mkdir(in_root(dir).c_str(), 0755), 0);
  for (const char* file : {"f", "f-owned"}) write_file(in_root(file), "x");
  for (const char* name : {"d", "d-owned"}) ASSERT_EQ(chmod(in_root(name).c_str(), 0755), 0);
  for (const char* name : {"f", "f-owned"}) ASSERT_EQ(chmod(in_root(name).c_str(), 0644), 0);
  for (const char* name : {"d-owned", "f-owned"}) ASSERT_EQ(chown(in_root(name).c_str(), kOtherUid, kOtherUid), 0);
  start();
  ASSERT_EQ(chmod(in_root("d").c_str(), 0777), 0);
  ASSERT_EQ(chmod(in_root("f").c_str(), 0666), 0);
  ASSERT_EQ(chown(in_root("d-owned").c_str(), 0, 0), 0);
  ASSERT_EQ(chown(in_root("f-owned").c_str(), 0, 0), 0);
  for (const char* name : {"d", "f", "d-owned", "f-owned"})
    ASSERT_TRUE(wait_for([&](const Json& e) { return e["path"] == in_root(name); })) << name << "\n" << dump();
  sync_marker();
  auto of = [&](const char* name) {
    return events_matching([&](const Json& e) { return e["path"] == in_root(name); });
  };
  for (auto [name, mode] : {std::pair{"d", S_IFDIR | 0777u}, std::pair{"f", S_IFREG | 0666u}}) {
    auto events = of(name);
    ASSERT_EQ(events.size(), 1u) << name << "\n" << dump();
    if (!row_->kinds.contains("chmod")) continue;
    EXPECT_EQ(events[0]["kind"], "chmod") << events[0];
    EXPECT_EQ(events[0]["new_mode"], mode) << events[0];
    if (row_->knows_old_attrs) {
      EXPECT_EQ(events[0]["old_mode"], mode == (S_IFDIR | 0777u) ? S_IFDIR | 0755u : S_IFREG | 0644u) << events[0];
    }
  }
  for (const char* name : {"d-owned", "f-owned"}) {
    auto events = of(name);
    ASSERT_EQ(events.size(), 1u) << name << "\n" << dump();
    if (!row_->kinds.contains("chown")) continue;
    EXPECT_EQ(events[0]["kind"], "chown") << events[0];
    EXPECT_EQ(events[0]["new_uid"], 0) << events[0];
  }
}

TEST_F(WatchTest, TruncateXattrLinkSymlink) {
  std::string path = in_root("data");
  write_file(path, std::string(4096, 'x'));
  start();
  ASSERT_EQ(truncate(path.c_str(), 0), 0);
  expect_kind("truncate", path);
  // trusted.*, not user.*: tmpfs (the VM tier's /tmp) has user xattrs only since Linux 6.6.
  ASSERT_EQ(setxattr(path.c_str(), "trusted.fstrail", "1", 1, 0), 0) << strerror(errno);
  expect_kind("xattr", path);
  ASSERT_EQ(link(path.c_str(), in_root("hard").c_str()), 0);
  expect_kind("link", in_root("hard"));
  ASSERT_EQ(symlink("data", in_root("soft").c_str()), 0);
  expect_kind("symlink", in_root("soft"));
}

// Hard links made right after the file's creation, and more than one: each new name is a
// `link`, the first name stays a `create`.
TEST_F(WatchTest, HardLinksRightAfterCreateAreLinks) {
  if (row_->name == "fanotify")
    GTEST_SKIP() << "fanotify reports these links as create (2026-12-07): its own item of issue 14";
  start();
  constexpr int kFiles = 20;
  for (int i = 0; i < kFiles; ++i) {
    std::string file = in_root("orig" + std::to_string(i));
    write_file(file, "x");
    ASSERT_EQ(link(file.c_str(), in_root("second" + std::to_string(i)).c_str()), 0);
    ASSERT_EQ(link(file.c_str(), in_root("third" + std::to_string(i)).c_str()), 0);
  }
  sync_marker();
  for (int i = 0; i < kFiles; ++i) {
    auto kinds_of = [&](const std::string& name) {
      std::vector<std::string> kinds;
      for (const auto& e : events_matching([&](const Json& e) { return e["path"] == in_root(name); }))
        if (e["kind"] == "create" || e["kind"] == "link") kinds.push_back(e["kind"]);
      return kinds;
    };
    const std::string n = std::to_string(i);
    EXPECT_EQ(kinds_of("orig" + n), std::vector<std::string>{"create"}) << dump();
    if (!row_->kinds.contains("link")) continue;
    EXPECT_EQ(kinds_of("second" + n), std::vector<std::string>{"link"}) << dump();
    EXPECT_EQ(kinds_of("third" + n), std::vector<std::string>{"link"}) << dump();
  }
}

TEST_F(WatchTest, OpenOnlyWhenAsked) {
  write_file(in_root("readme"), "x");
  start({"--events", "open"});
  int fd = open(in_root("readme").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  close(fd);
  expect_kind("open", in_root("readme"));
}

TEST_F(WatchTest, DeepNewDirectoriesAreWatchedAtOnce) {
  start();
  std::string dir = root_;
  std::vector<std::string> dirs;
  for (const char* part : {"a", "b", "c", "d", "e"}) {
    dir += std::string("/") + part;
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
    dirs.push_back(dir);
  }
  write_file(dir + "/deep.txt", "x");  // immediately, before fstrail can have caught up
  EXPECT_TRUE(wait_for("create", dir + "/deep.txt")) << dump();
  for (const auto& d : dirs) EXPECT_TRUE(wait_for("mkdir", d)) << d << "\n" << dump();
  // And later changes in the deepest directory too.
  ASSERT_EQ(unlink((dir + "/deep.txt").c_str()), 0);
  EXPECT_TRUE(wait_for("delete", dir + "/deep.txt")) << dump();
  sync_marker();
  auto creates = events_matching([&](const Json& e) { return e["path"] == dir + "/deep.txt" && e["kind"] == "create"; });
  EXPECT_EQ(creates.size(), 1u) << "reported twice (by the event and by the scan of the new directory)\n" << dump();
}

// A directory renamed right after its creation, before fstrail has handled the mkdir: what
// is made in it afterwards is reported under its new name (fanotify and inotify used to
// miss it, or report it under the old name, for ~275 of 300 such directories).
TEST_F(WatchTest, DirectoryRenamedRightAfterItsCreationIsWatchedUnderItsNewName) {
  start();
  constexpr int kDirs = 50;
  for (int i = 0; i < kDirs; ++i) {
    std::string made = in_root("made" + std::to_string(i)), moved = in_root("moved" + std::to_string(i));
    ASSERT_EQ(mkdir(made.c_str(), 0755), 0);
    ASSERT_EQ(rename(made.c_str(), moved.c_str()), 0);
    write_file(moved + "/f", "x");
    ASSERT_EQ(mkdir((moved + "/sub").c_str(), 0755), 0);
    write_file(moved + "/sub/g", "x");
  }
  for (int i = 0; i < kDirs; ++i) {
    std::string moved = in_root("moved" + std::to_string(i));
    ASSERT_TRUE(wait_for("create", moved + "/f")) << dump();
    ASSERT_TRUE(wait_for("create", moved + "/sub/g")) << dump();
  }
  sync_marker();
  const std::string old_prefix = in_root("made");
  for (const auto& e : events_matching([&](const Json& e) { return e["path"].get<std::string>().starts_with(old_prefix); })) {
    std::string rest = e["path"].get<std::string>().substr(old_prefix.size());
    EXPECT_EQ(rest.find('/'), std::string::npos) << "reported under the old name: " << e;
  }
}

TEST_F(WatchTest, NothingFromOutsideTheTree) {
  start();
  write_file(outside_ + "/elsewhere", "x");
  ASSERT_EQ(mkdir((outside_ + "/dir").c_str(), 0755), 0);
  ASSERT_EQ(chmod((outside_ + "/elsewhere").c_str(), 0600), 0);
  sync_marker();
  for (const auto& e : events_matching([](const Json&) { return true; })) {
    std::string path = e["path"];
    EXPECT_EQ(path.rfind(root_ + "/", 0), 0u) << "event outside the tree, or not absolute: " << e;
  }
}

TEST_F(WatchTest, NewlineAndInvalidUtf8Names) {
  start();
  std::string newline = in_root("two\nlines");
  std::string invalid = in_root(std::string("bad\xff\xfe") + "name");
  write_file(newline, "x");
  write_file(invalid, "x");
  auto nl = wait_for("create", newline);
  EXPECT_TRUE(nl) << dump();
  if (nl) {
    EXPECT_FALSE(nl->contains("path_b64")) << *nl;
  }
  auto bad = wait_for([&](const Json& e) { return e.value("path_b64", "") == fstrail::base64_encode(invalid); });
  ASSERT_TRUE(bad) << "no event with path_b64 = base64 of " << invalid << "\n" << dump();
  EXPECT_EQ(bad->at("kind"), "create");
  EXPECT_NE(bad->at("path").get<std::string>().find("\xEF\xBF\xBD"), std::string::npos) << *bad;
}

TEST_F(WatchTest, ExcludeGlob) {
  start({"--exclude", "*.swp"});
  write_file(in_root("x.swp"), "x");
  sync_marker();
  EXPECT_TRUE(events_matching([&](const Json& e) { return e["path"] == in_root("x.swp"); }).empty()) << dump();
}

TEST_F(WatchTest, EventsSelectsKinds) {
  start({"--events", "create,delete"});
  write_file(in_root("f"), "some bytes");
  ASSERT_EQ(chmod(in_root("f").c_str(), 0600), 0);
  ASSERT_EQ(unlink(in_root("f").c_str()), 0);
  EXPECT_TRUE(wait_for("delete", in_root("f"))) << dump();
  sync_marker();
  for (const auto& e : events_matching([](const Json&) { return true; }))
    EXPECT_TRUE(e["kind"] == "create" || e["kind"] == "delete") << e;
}

using fstrail::testing::OtherUser;

TEST_F(WatchTest, AttributionToAnotherUser) {
  ASSERT_EQ(chmod(root_.c_str(), 0777), 0);
  start();
  OtherUser nobody("echo hi > " + in_root("by-nobody") + " && mkdir " + in_root("dir-by-nobody"));
  auto created = wait_for("create", in_root("by-nobody"));
  ASSERT_TRUE(created) << dump();
  auto made = wait_for("mkdir", in_root("dir-by-nobody"));
  ASSERT_TRUE(made) << dump();
  nobody.release();
  for (const auto& e : {*created, *made}) EXPECT_EQ(e["actor_source"], row_->actor_source) << e;
  if (!row_->knows_actor) {
    EXPECT_TRUE(created->at("uid").is_null() && made->at("uid").is_null()) << dump();
    return;
  }
  // The shell wrote the file itself and was alive when the event was read.
  EXPECT_EQ(created->at("uid"), kOtherUid) << *created;
  EXPECT_EQ(created->at("gid"), kOtherUid) << *created;
  EXPECT_EQ(created->at("euid"), kOtherUid) << *created;
  EXPECT_EQ(created->at("comm"), "sh") << *created;
  EXPECT_EQ(created->at("pid"), nobody.pid()) << *created;  // setpriv execs sh in place
  // mkdir(1) may be gone before its event is read: a backend that reads /proc after
  // the fact may not know its user, but must never name a wrong one.
  EXPECT_TRUE(made->at("uid").is_null() || made->at("uid") == kOtherUid) << *made;
  if (row_->actor_source == "kernel") {
    EXPECT_EQ(made->at("uid"), kOtherUid) << *made;
  }
}

TEST_F(WatchTest, UidFilter) {
  ASSERT_EQ(chmod(root_.c_str(), 0777), 0);
  if (!row_->filters_uid) {
    Child c({fstrail_bin(), "watch", "--json", "--backend", row_->name, "--uid", "65534", root_});
    EXPECT_EQ(c.wait_exit(), 2);
    EXPECT_NE(c.stderr_.find("--uid needs attribution"), std::string::npos) << c.stderr_;
    return;
  }
  start({"--uid", "65534"});
  write_file(in_root("by-root"), "x");
  OtherUser nobody("echo hi > " + in_root("by-nobody"));
  EXPECT_TRUE(wait_for("create", in_root("by-nobody"))) << dump();
  nobody.release();
  EXPECT_TRUE(events_matching([&](const Json& e) { return e["path"] == in_root("by-root"); }).empty()) << dump();
  for (const auto& e : events_matching([](const Json&) { return true; })) EXPECT_EQ(e["uid"], kOtherUid) << e;
}

// Two processes renaming at once: each rename is one event with both paths, never a
// delete and a create (inotify queues a rename as two events, and another process's
// event can come between them).
// A process that exited before its event was read never lends the identity of another
// process that had the same pid: the second process gets the first one's pid at once
// (clone3 with set_tid), writes and exits while fstrail is stopped.
TEST_F(WatchTest, ReusedPidNeverLendsAnotherProcesssIdentity) {
  start();
  int go[2];
  ASSERT_EQ(pipe2(go, O_CLOEXEC), 0);
  std::string first_file = in_root("by-first"), second_file = in_root("by-second");
  pid_t first = fork();
  ASSERT_GE(first, 0);
  if (first == 0) {
    prctl(PR_SET_NAME, "first-owner");
    int fd = open(first_file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) _exit(1);
    close(fd);
    char c;
    _exit(read(go[0], &c, 1) == 1 ? 0 : 2);  // alive until its event has been read
  }
  close(go[0]);
  auto seen = wait_for("create", first_file);
  ASSERT_TRUE(seen) << dump();
  if (row_->knows_actor) {
    EXPECT_EQ(seen->at("comm"), "first-owner") << *seen;
  }
  ASSERT_EQ(write(go[1], "x", 1), 1);
  close(go[1]);
  int status = 0;
  ASSERT_EQ(waitpid(first, &status, 0), first);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  ASSERT_EQ(kill(watcher_->pid(), SIGSTOP), 0);
  pid_t want = first;
  clone_args args{};
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uintptr_t>(&want);
  args.set_tid_size = 1;
  long second = syscall(SYS_clone3, &args, sizeof args);
  if (second == 0) {
    prctl(PR_SET_NAME, "second-owner");
    int fd = open(second_file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    _exit(fd < 0 ? 1 : 0);
  }
  int clone_errno = errno;
  if (second > 0) {
    EXPECT_EQ(waitpid(static_cast<pid_t>(second), &status, 0), second);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  ASSERT_EQ(kill(watcher_->pid(), SIGCONT), 0);
  ASSERT_EQ(second, first) << "clone3 with the first process's pid: " << strerror(clone_errno);
  auto e = wait_for("create", second_file);
  ASSERT_TRUE(e) << dump();
  // The kernel backends know the second process; fanotify cannot (no pidfd once it has
  // exited) and leaves it unknown; none may name the first process.
  EXPECT_NE(e->at("comm"), "first-owner") << *e;
  if (row_->actor_source == "kernel") {
    EXPECT_EQ(e->at("comm"), "second-owner") << *e;
  }
  if (row_->actor_source == "procfs") {
    EXPECT_EQ(e->at("pid"), first) << *e;
    for (const char* field : {"comm", "exe", "uid", "euid", "loginuid", "ppid", "cgroup"})
      EXPECT_TRUE(e->at(field).is_null()) << field << ": " << *e;
  }
}

// fanotify only (host.inotify and host.bpf-tracepoint filter FanotifyWatchTest out):
// behaviour that the other backends' owners follow in their own issues.
class FanotifyWatchTest : public WatchTest {};

// The root is followed by its identity: renamed, its events carry the new path, the rename
// is reported and said on stderr, and a directory made under the old name is not watched.
TEST_F(FanotifyWatchTest, RenamedRootIsFollowedToItsNewPath) {
  ASSERT_EQ(row_->name, "fanotify");
  ASSERT_EQ(mkdir(in_root("sub").c_str(), 0755), 0);
  start();
  write_file(in_root("before"), "x");
  ASSERT_TRUE(wait_for("create", in_root("before"))) << dump();
  const std::string moved = base_ + "/moved";
  ASSERT_EQ(rename(root_.c_str(), moved.c_str()), 0);
  auto renamed = wait_for([&](const Json& e) { return e["kind"] == "rename" && e["path"] == moved; });
  ASSERT_TRUE(renamed) << dump();
  EXPECT_EQ(renamed->at("old_path"), root_);
  EXPECT_EQ(renamed->at("is_dir"), true);
  expect_our_actor(*renamed);
  EXPECT_NE(watcher_->stderr_.find(root_ + " was moved to " + moved), std::string::npos) << watcher_->stderr_;

  write_file(moved + "/after", "x");
  write_file(moved + "/sub/deeper", "x");
  ASSERT_TRUE(wait_for("create", moved + "/after")) << dump();
  ASSERT_TRUE(wait_for("create", moved + "/sub/deeper")) << dump();
  ASSERT_EQ(mkdir((moved + "/newdir").c_str(), 0755), 0);
  write_file(moved + "/newdir/inner", "x");
  ASSERT_TRUE(wait_for("create", moved + "/newdir/inner")) << dump();

  // The old name, made again: not the watched tree.
  ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  write_file(in_root("ghost"), "x");
  write_file(moved + "/marker", "x");
  ASSERT_TRUE(wait_for("create", moved + "/marker")) << dump();
  EXPECT_TRUE(events_matching([&](const Json& e) {
                return e["path"].get<std::string>().starts_with(root_ + "/") && e["path"] != in_root("before");
              }).empty())
      << dump();
  stop_and_expect_summary();
}

// A tmpfs and a bind mount made inside the tree after start: the tmpfs is watched (or a
// counted lost/unwatched-mount names it), the bind mount's changes come under the real path.
TEST_F(FanotifyWatchTest, MountsMadeInsideTheTreeAreWatched) {
  ASSERT_EQ(row_->name, "fanotify");
  for (const char* d : {"mnt", "app", "bm"}) ASSERT_EQ(mkdir(in_root(d).c_str(), 0755), 0);
  write_file(in_root("mnt/covered"), "");
  start();
  struct Unmount {
    std::vector<std::string> points;
    ~Unmount() {
      for (auto it = points.rbegin(); it != points.rend(); ++it) umount2(it->c_str(), MNT_DETACH);
    }
  } unmount;
  ASSERT_EQ(mount("fstrail-test", in_root("mnt").c_str(), "tmpfs", 0, "size=1m"), 0) << strerror(errno);
  unmount.points.push_back(in_root("mnt"));
  auto noticed = [&](const std::string& text) {
    auto until = std::chrono::steady_clock::now() + kDeadline;
    while (watcher_->stderr_.find(text) == std::string::npos && std::chrono::steady_clock::now() < until)
      watcher_->pump(50ms);
    return watcher_->stderr_.find(text) != std::string::npos;
  };
  ASSERT_TRUE(noticed("mounted at " + in_root("mnt"))) << watcher_->stderr_;
  write_file(in_root("mnt/in-tmpfs"), "x");
  auto seen = wait_for([&](const Json& e) {
    return (e["kind"] == "create" && e["path"] == in_root("mnt/in-tmpfs")) ||
           (e["kind"] == "lost" && e["reason"] == "unwatched-mount" && e["path"] == in_root("mnt"));
  });
  ASSERT_TRUE(seen) << dump();
  // This kernel's tmpfs has file handles: it is watched.
  EXPECT_EQ(seen->at("kind"), "create") << *seen;
  if (seen->at("kind") == "create") {
    expect_our_actor(*seen);
  }

  ASSERT_EQ(mount(in_root("app").c_str(), in_root("bm").c_str(), nullptr, MS_BIND, nullptr), 0) << strerror(errno);
  unmount.points.push_back(in_root("bm"));
  ASSERT_TRUE(noticed(in_root("bm") + " is a bind mount of " + in_root("app"))) << watcher_->stderr_;
  write_file(in_root("bm/y"), "x");
  EXPECT_TRUE(wait_for("create", in_root("app/y"))) << dump();

  // fstrail holds the mount open only while events come (file handles need it): busy
  // for a moment at most.
  int unmounted = -1;
  for (auto until = std::chrono::steady_clock::now() + kDeadline;
       (unmounted = umount2(in_root("mnt").c_str(), 0)) != 0 && errno == EBUSY && std::chrono::steady_clock::now() < until;)
    watcher_->pump(50ms);
  ASSERT_EQ(unmounted, 0) << strerror(errno);
  unmount.points.erase(unmount.points.begin());
  ASSERT_TRUE(noticed(in_root("mnt") + " was unmounted")) << watcher_->stderr_;
  write_file(in_root("mnt/under"), "x");
  EXPECT_TRUE(wait_for("create", in_root("mnt/under"))) << dump();
  EXPECT_TRUE(events_matching([&](const Json& e) { return e["path"] == in_root("bm/y"); }).empty()) << dump();
}

// Two processes renaming one file back and forth: every rename is reported, or where the
// kernel merged identical queued renames (fanotify), a counted `lost` says so.
// Not yet shared: inotify reports about 85 % of these renames and says nothing of the rest
// (issue 14, the inotify branch); bpf-tracepoint reports all of them (2026-12-07).
TEST_F(FanotifyWatchTest, RenameStormReportsEveryRenameOrSaysWhatWasMerged) {
  ASSERT_EQ(row_->name, "fanotify");
  constexpr int kAttempts = 5000;
  const std::string a = in_root("a"), b = in_root("b");
  write_file(a, "");
  start();
  auto* done = static_cast<int*>(mmap(nullptr, 2 * sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(done, MAP_FAILED);
  done[0] = done[1] = 0;
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int ok = 0;
      for (int i = 0; i < kAttempts; ++i) {
        bool forth = (i + p) % 2 == 0;
        if (rename((forth ? a : b).c_str(), (forth ? b : a).c_str()) == 0) ++ok;
      }
      done[p] = ok;
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const size_t succeeded = static_cast<size_t>(done[0] + done[1]);
  munmap(done, 2 * sizeof(int));
  ASSERT_GT(succeeded, 0u);
  sync_marker();
  size_t renames = 0, wrong = 0;
  for (const Json& e : events_matching([&](const Json& e) { return e["path"] == a || e["path"] == b; })) {
    if (e["kind"] != "rename") continue;
    bool right = (e["old_path"] == a && e["path"] == b) || (e["old_path"] == b && e["path"] == a);
    right ? ++renames : ++wrong;
  }
  size_t merged = events_matching([](const Json& e) {
                    return e["kind"] == "lost" && e["reason"] == "merged-by-kernel";
                  }).size();
  std::cerr << row_->name << ": " << succeeded << " renames, " << renames << " rename events, " << merged
            << " merged-by-kernel notices\n";
  EXPECT_EQ(wrong, 0u) << dump();
  EXPECT_LE(renames, succeeded);
  if (renames < succeeded) {
    EXPECT_GE(merged, 1u) << succeeded - renames << " renames missing, and nothing said so";
    stop_and_expect_summary();
    EXPECT_NE(watcher_->stderr_.find("merged-by-kernel"), std::string::npos) << watcher_->stderr_;
  } else {
    EXPECT_EQ(merged, 0u);
  }
}

// A hard link made in a directory before its mark (found by the directory's listing) is
// a `link`, not a `create`: its inode was seen before under another name.
TEST_F(FanotifyWatchTest, HardLinkFoundByListingIsALink) {
  ASSERT_EQ(row_->name, "fanotify");
  start();
  write_file(in_root("object.tmp"), "x");
  ASSERT_TRUE(wait_for("create", in_root("object.tmp"))) << dump();
  ASSERT_TRUE(wait_for("modify", in_root("object.tmp"))) << dump();
  ASSERT_EQ(kill(watcher_->pid(), SIGSTOP), 0);  // the new directory is marked only afterwards
  ASSERT_EQ(mkdir(in_root("ab").c_str(), 0755), 0);
  ASSERT_EQ(link(in_root("object.tmp").c_str(), in_root("ab/cdef").c_str()), 0);
  write_file(in_root("ab/plain"), "y");
  ASSERT_EQ(kill(watcher_->pid(), SIGCONT), 0);
  auto linked = wait_for([&](const Json& e) { return e["path"] == in_root("ab/cdef"); });
  ASSERT_TRUE(linked) << dump();
  EXPECT_EQ(linked->at("kind"), "link") << *linked;
  auto plain = wait_for([&](const Json& e) { return e["path"] == in_root("ab/plain"); });
  ASSERT_TRUE(plain) << dump();
  EXPECT_EQ(plain->at("kind"), "create") << *plain;
}

// A directory made inside a directory that is renamed before fstrail reads the mkdir (both
// in one read): it is watched at its new path. inotify lost everything below it (found by
// the fsmonitor edit storm: a file moved into it was never reported).
TEST_F(WatchTest, DirectoryMadeInADirectoryRenamedInTheSameReadIsWatched) {
  ASSERT_EQ(mkdir(in_root("before").c_str(), 0755), 0);
  start();
  sync_marker();
  ASSERT_EQ(kill(watcher_->pid(), SIGSTOP), 0);  // the mkdir and the rename in one read
  ASSERT_EQ(mkdir(in_root("before/made").c_str(), 0755), 0);
  ASSERT_EQ(rename(in_root("before").c_str(), in_root("after").c_str()), 0);
  ASSERT_EQ(kill(watcher_->pid(), SIGCONT), 0);
  ASSERT_TRUE(wait_for("rename", in_root("after"))) << dump();
  write_file(in_root("after/made/file"), "x");
  EXPECT_TRUE(wait_for("create", in_root("after/made/file"))) << dump();
}

TEST_F(WatchTest, RenamesByTwoProcessesAtOnceStayRenames) {
  constexpr int kFiles = 1000;
  auto name = [&](int p, const char* stem, int i) {
    return in_root("p" + std::to_string(p) + "/" + stem + std::to_string(i));
  };
  std::set<std::pair<std::string, std::string>> expected;  // (old_path, path)
  for (int p = 0; p < 2; ++p) {
    ASSERT_EQ(mkdir(in_root("p" + std::to_string(p)).c_str(), 0755), 0);
    for (int i = 0; i < kFiles; ++i) {
      write_file(name(p, "f", i), "");
      expected.emplace(name(p, "f", i), name(p, "g", i));
    }
  }
  start();
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0; i < kFiles; ++i)
        if (rename(name(p, "f", i).c_str(), name(p, "g", i).c_str()) != 0) _exit(1);
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  for (int p = 0; p < 2; ++p) ASSERT_TRUE(wait_for("rename", name(p, "g", kFiles - 1)));
  sync_marker();
  size_t renames = 0, others = 0;
  for (const Json& e : events_matching([&](const Json& e) { return e["path"].get<std::string>().starts_with(in_root("p")); })) {
    if (e["kind"] == "rename" && expected.contains({e["old_path"], e["path"]}))
      ++renames;
    else
      ++others;
  }
  EXPECT_EQ(renames, expected.size());
  EXPECT_EQ(others, 0u) << "renames reported as something else (a delete and a create?)";
}

// A directory chain whose path grows past PATH_MAX (4 096 bytes) under the tree, made
// while fstrail runs: fstrail keeps running and reports what happens beside it; below
// it, either events with the right path or one `lost` (unwatched-directory) naming the
// first directory it could not watch, exactly once. inotify only: it watches by path
// (inotify_add_watch fails with ENAMETOOLONG); the other backends' long paths are
// their own items of issue 14.
TEST_F(InotifyWatchTest, PathLongerThanPathMaxNeverStopsFstrail) {
  start();
  const std::string component(200, 'L');
  std::string path = root_;
  std::string first_too_long;
  int dfd = open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(dfd, 0);
  while (path.size() < 4096 + 2 * component.size()) {
    ASSERT_EQ(mkdirat(dfd, component.c_str(), 0755), 0) << strerror(errno);
    int next = openat(dfd, component.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(next, 0) << strerror(errno);
    close(dfd);
    dfd = next;
    path += "/" + component;
    if (first_too_long.empty() && path.size() >= 4096) first_too_long = path;
  }
  int fd = openat(dfd, "below", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  close(fd);
  close(dfd);
  write_file(in_root("beside"), "x");
  EXPECT_TRUE(wait_for("create", in_root("beside"))) << watcher_->stderr_;
  sync_marker();
  auto is_loss = [](const Json& e) { return e["kind"] == "lost" && e["reason"] == "unwatched-directory"; };
  auto below = events_matching([&](const Json& e) { return e["path"] == path + "/below"; });
  auto losses = events_matching(is_loss);
  if (below.empty()) {
    ASSERT_EQ(losses.size(), 1u) << "neither the event below nor one loss; stderr:\n" << watcher_->stderr_;
    EXPECT_EQ(losses[0]["path"], first_too_long);
    EXPECT_NE(watcher_->stderr_.find(first_too_long + " cannot be watched"), std::string::npos);
  } else {
    EXPECT_TRUE(losses.empty());
  }
  // After a rescan (an overflow) the same directory is not reported again.
  ASSERT_EQ(kill(watcher_->pid(), SIGSTOP), 0);
  std::ifstream limit("/proc/sys/fs/inotify/max_queued_events");
  long queued = 0;
  limit >> queued;
  for (long i = 0; i <= queued; ++i) write_file(in_root("f" + std::to_string(i)), "");
  ASSERT_EQ(kill(watcher_->pid(), SIGCONT), 0);
  ASSERT_TRUE(wait_for([](const Json& e) { return e["kind"] == "lost" && e["reason"] == "kernel-queue-overflow"; }));
  sync_marker();
  EXPECT_EQ(events_matching(is_loss).size(), losses.size());
  stop_and_expect_summary();
  if (below.empty()) {
    EXPECT_NE(watcher_->stderr_.find("unwatched-directory 1"), std::string::npos) << watcher_->stderr_;
  }
}

// Out of watches (ENOSPC) below the root: the directory is reported once as an
// unwatched-directory loss naming it, and fstrail goes on. The limit is set in a user
// namespace of fstrail's own (/proc/sys/user/max_inotify_watches), so other watchers on the
// machine keep theirs. inotify only, as above.
TEST_F(InotifyWatchTest, OutOfWatchesNeverStopsFstrail) {
  for (const char* dir : {"a", "a/b", "a/b/c", "a/b/c/d"}) ASSERT_EQ(mkdir(in_root(dir).c_str(), 0755), 0);
  // The root, a and a/b: three watches.
  watcher_ = std::make_unique<Child>(std::vector<std::string>{
      "unshare", "--user", "--map-root-user", "sh", "-c",
      "echo 3 > /proc/sys/user/max_inotify_watches && exec \"$0\" watch --json --backend inotify \"$1\"",
      fstrail_bin(), root_});
  auto until = std::chrono::steady_clock::now() + kDeadline;
  while (watcher_->stderr_.find("fstrail: watching 1 path(s)") == std::string::npos &&
         std::chrono::steady_clock::now() < until && watcher_->pump(50ms)) {
  }
  ASSERT_NE(watcher_->stderr_.find("fstrail: watching 1 path(s)"), std::string::npos) << watcher_->stderr_;
  write_file(in_root("a/b/c/below"), "x");
  write_file(in_root("a/b/beside"), "x");
  ASSERT_TRUE(wait_for("create", in_root("a/b/beside"))) << dump();
  ASSERT_EQ(mkdir(in_root("a/new").c_str(), 0755), 0);  // out of watches for it too
  ASSERT_TRUE(wait_for("mkdir", in_root("a/new"))) << dump();
  sync_marker();
  auto losses = events_matching([](const Json& e) { return e["kind"] == "lost"; });
  ASSERT_EQ(losses.size(), 2u) << dump();
  EXPECT_EQ(losses[0]["reason"], "unwatched-directory");
  EXPECT_EQ(losses[0]["path"], in_root("a/b/c"));
  EXPECT_EQ(losses[1]["path"], in_root("a/new"));
  EXPECT_TRUE(losses[0]["lost"].is_null());
  EXPECT_TRUE(events_matching([&](const Json& e) { return e["path"] == in_root("a/b/c/below"); }).empty());
  EXPECT_NE(watcher_->stderr_.find(in_root("a/b/c") + " cannot be watched: out of inotify watches"), std::string::npos)
      << watcher_->stderr_;
  // Removed and made again: another directory, reported again.
  ASSERT_EQ(rmdir(in_root("a/new").c_str()), 0);
  ASSERT_TRUE(wait_for("rmdir", in_root("a/new"))) << dump();
  ASSERT_EQ(mkdir(in_root("a/new").c_str(), 0755), 0);
  sync_marker();
  losses = events_matching([](const Json& e) { return e["kind"] == "lost"; });
  ASSERT_EQ(losses.size(), 3u) << dump();
  EXPECT_EQ(losses[2]["path"], in_root("a/new"));
  stop_and_expect_summary();
  EXPECT_NE(watcher_->stderr_.find("unwatched-directory 3"), std::string::npos) << watcher_->stderr_;
}

// Stops fstrail (SIGSTOP) while more changes happen than the kernel queues, then lets
// it run: the loss must be reported as a `lost` event and in the summary, followed by
// a rescan after which new directories are watched again.
TEST_F(WatchTest, QueueOverflowIsReportedAndRescanned) {
  start();
  if (!row_->bounded_queue) {
    // Unbounded queue: the same burst arrives whole.
    ASSERT_EQ(kill(watcher_->pid(), SIGSTOP), 0);
    for (int i = 0; i < 5000; ++i) write_file(in_root("f" + std::to_string(i)), "");
    ASSERT_EQ(kill(watcher_->pid(), SIGCONT), 0);
    EXPECT_TRUE(wait_for("create", in_root("f4999"))) << watcher_->stderr_;
    sync_marker();
    EXPECT_EQ(events_matching([](const Json& e) { return e["kind"] == "create"; }).size(), 5000u + markers_);
    EXPECT_TRUE(events_matching([](const Json& e) { return e["kind"] == "lost"; }).empty());
    return;
  }
  std::ifstream limit("/proc/sys/fs/inotify/max_queued_events");
  long queued = 0;
  limit >> queued;
  ASSERT_GT(queued, 0);
  ASSERT_EQ(kill(watcher_->pid(), SIGSTOP), 0);
  for (long i = 0; i <= queued; ++i) write_file(in_root("f" + std::to_string(i)), "");
  ASSERT_EQ(kill(watcher_->pid(), SIGCONT), 0);
  auto lost = wait_for([](const Json& e) { return e["kind"] == "lost"; });
  ASSERT_TRUE(lost) << "no lost event after " << queued + 1 << " creates with the reader stopped";
  EXPECT_EQ(lost->at("path"), root_);
  ASSERT_EQ(mkdir(in_root("after").c_str(), 0755), 0);
  ASSERT_TRUE(wait_for("mkdir", in_root("after")));
  write_file(in_root("after/inside"), "x");
  EXPECT_TRUE(wait_for("create", in_root("after/inside")));
  stop_and_expect_summary();
  EXPECT_NE(watcher_->stderr_.find("rescans"), std::string::npos) << watcher_->stderr_;
  EXPECT_EQ(watcher_->stderr_.find(", 0 lost"), std::string::npos) << watcher_->stderr_;
}

}  // namespace
