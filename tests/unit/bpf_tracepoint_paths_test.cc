#include <fcntl.h>
#include <linux/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "backend/bpf/tracepoint/kread.bpf.h"
#include "backend/bpf/tracepoint/path_tracker.h"
#include "fstrail/wire.h"

namespace fstrail::bpf {
namespace {

const std::vector<std::string> kRoots{"/srv/app", "/home/alice/proj"};

TEST(InsideRootsTest, RootAndBelowButNotSiblingsWithTheSamePrefix) {
  EXPECT_TRUE(inside_roots("/srv/app", kRoots));
  EXPECT_TRUE(inside_roots("/srv/app/x/y", kRoots));
  EXPECT_TRUE(inside_roots("/home/alice/proj/a", kRoots));
  EXPECT_FALSE(inside_roots("/srv/apple", kRoots));
  EXPECT_FALSE(inside_roots("/srv", kRoots));
  EXPECT_TRUE(inside_roots("/etc/passwd", {"/"}));
}

TEST(AboveARootTest, AncestorsOnly) {
  EXPECT_TRUE(above_a_root("/srv", kRoots));
  EXPECT_TRUE(above_a_root("/", kRoots));
  EXPECT_TRUE(above_a_root("/home/alice", kRoots));
  EXPECT_FALSE(above_a_root("/home/al", kRoots));
  EXPECT_FALSE(above_a_root("/srv/app", kRoots));  // the root itself is inside, not above
  EXPECT_FALSE(above_a_root("/tmp", kRoots));
}

TEST(LexicallyNormalPathTest, DotsAndSlashes) {
  EXPECT_EQ(lexically_normal_path("/srv/app/./x//y/../z"), "/srv/app/x/z");
  EXPECT_EQ(lexically_normal_path("/srv/app/"), "/srv/app");
  EXPECT_EQ(lexically_normal_path("/srv/app/../../etc"), "/etc");
  EXPECT_EQ(lexically_normal_path("/"), "/");
}

// The shortcut for paths already normal agrees with std::filesystem on every path made
// of these pieces.
TEST(LexicallyNormalPathTest, ShortcutAgreesWithStdFilesystem) {
  const char* pieces[] = {"/", "a", ".", "..", "//", "b.c", "...", ".x"};
  std::vector<std::string> paths = {""};
  for (int depth = 0; depth < 5; ++depth) {
    std::vector<std::string> longer;
    for (const auto& p : paths)
      for (const char* piece : pieces) longer.push_back(p + piece);
    paths.insert(paths.end(), longer.begin(), longer.end());
  }
  int normal = 0;
  for (const auto& p : paths) {
    std::string slow = std::filesystem::path(p).lexically_normal().string();
    if (slow.size() > 1 && slow.back() == '/') slow.pop_back();
    EXPECT_EQ(lexically_normal_path(p), slow) << p;
    if (is_lexically_normal(p)) {
      EXPECT_EQ(slow, p);
      ++normal;
    }
  }
  EXPECT_GT(normal, 100);
}

Event event_of(EventKind kind, std::string path, std::optional<std::string> old_path = std::nullopt) {
  Event e;
  e.kind = kind;
  e.path = std::move(path);
  e.old_path = std::move(old_path);
  return e;
}

TEST(PathsRemovedLaterTest, CreateThenDeleteInOneBatchSkipsTheCreatesLookup) {
  std::vector<Event> batch = {event_of(EventKind::kCreate, "/srv/app/f"), event_of(EventKind::kModify, "/srv/app/f"),
                              event_of(EventKind::kCreate, "/srv/app/g"), event_of(EventKind::kDelete, "/srv/app/f")};
  EXPECT_EQ(paths_removed_later(batch), (std::vector<bool>{true, true, false, false}));
}

// The benchmark's iteration: every lookup but none is of a path gone by the end of the batch.
TEST(PathsRemovedLaterTest, RenameRemovesItsSourceAndReplacesItsTarget) {
  std::vector<Event> batch = {
      event_of(EventKind::kCreate, "/t/file"),       event_of(EventKind::kModify, "/t/file"),
      event_of(EventKind::kChmod, "/t/file"),        event_of(EventKind::kCreate, "/t/moved"),
      event_of(EventKind::kRename, "/t/moved", "/t/file"), event_of(EventKind::kChmod, "/t/moved"),
      event_of(EventKind::kMkdir, "/t/sub"),         event_of(EventKind::kRmdir, "/t/sub"),
  };
  EXPECT_EQ(paths_removed_later(batch), (std::vector<bool>{true, true, true, true, false, false, true, false}));
}

TEST(PathsRemovedLaterTest, ARecreatedPathIsLookedUpAfterItsLastRemoval) {
  std::vector<Event> batch = {event_of(EventKind::kCreate, "/t/f"), event_of(EventKind::kDelete, "/t/f"),
                              event_of(EventKind::kCreate, "/t/f"), event_of(EventKind::kChmod, "/t/f")};
  EXPECT_EQ(paths_removed_later(batch), (std::vector<bool>{true, false, false, false}));
}

TEST(PathsRemovedLaterTest, FailedRemovalsAndOtherPathsDoNotCount) {
  Event failed = event_of(EventKind::kDelete, "/t/f");
  failed.error = 13;  // EACCES: the file is still there
  std::vector<Event> batch = {event_of(EventKind::kCreate, "/t/f"), failed,
                              event_of(EventKind::kDelete, "/t/f2"), event_of(EventKind::kRmdir, "/t")};
  // Exact paths only: removing the parent (/t) is not looked for.
  EXPECT_EQ(paths_removed_later(batch), (std::vector<bool>{false, false, false, false}));
  EXPECT_TRUE(paths_removed_later({}).empty());
}

// Large batches (the set's table grows and probes past collisions) agree with the
// definition checked pair by pair: a later successful delete/rmdir of the path, or a
// later rename from or onto it. Short names from a small alphabet, so paths repeat.
TEST(PathsRemovedLaterTest, LargeRandomBatchesMatchThePairwiseDefinition) {
  uint32_t state = 20261130;
  auto next = [&] { return state = state * 1664525u + 1013904223u, state >> 8; };
  const EventKind kinds[] = {EventKind::kCreate, EventKind::kModify, EventKind::kChmod, EventKind::kDelete,
                             EventKind::kRmdir, EventKind::kRename, EventKind::kMkdir};
  for (size_t size : {1u, 7u, 100u, 2048u}) {
    std::vector<Event> batch;
    for (size_t i = 0; i < size; ++i) {
      auto name = [&] { return next() % 4 == 0 ? std::string() : "/t/" + std::to_string(next() % (size / 2 + 2)); };
      EventKind kind = kinds[next() % 7];
      Event e = event_of(kind, name(), kind == EventKind::kRename ? std::optional(name()) : std::nullopt);
      if (next() % 10 == 0) e.error = 2;
      batch.push_back(std::move(e));
    }
    std::vector<bool> expected(size, false);
    for (size_t i = 0; i < size; ++i)
      for (size_t j = i + 1; j < size && !expected[i]; ++j) {
        const Event& later = batch[j];
        if (later.error) continue;
        bool removes = later.kind == EventKind::kDelete || later.kind == EventKind::kRmdir ||
                       later.kind == EventKind::kRename;
        expected[i] = removes && (later.path == batch[i].path ||
                                  (later.kind == EventKind::kRename && later.old_path == batch[i].path));
      }
    EXPECT_EQ(paths_removed_later(batch), expected) << size;
  }
}

// A /proc with nothing in it: everything must come from the records.
class PathTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proc = std::filesystem::temp_directory_path() / ("fstrail-emptyproc-" + std::to_string(::getpid()));
    std::filesystem::create_directories(proc);
  }
  void TearDown() override { std::filesystem::remove_all(proc); }
  std::filesystem::path proc;
};

TEST_F(PathTrackerTest, FollowsForkChdirAndDirFdsInOrderAfterTheProcessIsGone) {
  PathTracker tracker(proc.string());
  tracker.remember_cwd(100, "/srv/app");                            // the shell, seen at start
  tracker.apply(DirFdRecord{200, FST_DIRFD_FORKED, 100, ""});        // mkdir -p forked by it
  EXPECT_EQ(tracker.resolve(200, AT_FDCWD, "d"), "/srv/app/d");
  tracker.apply(DirFdRecord{200, 3, AT_FDCWD, "d"});                 // openat(AT_FDCWD, "d", O_DIRECTORY)
  tracker.apply(DirFdRecord{200, AT_FDCWD, 3, ""});                  // fchdir(3)
  EXPECT_EQ(tracker.resolve(200, AT_FDCWD, "e"), "/srv/app/d/e");
  tracker.apply(DirFdRecord{200, 5, 3, "e/../e"});                   // openat(3, "e/../e")
  EXPECT_EQ(tracker.resolve(200, 5, "f"), "/srv/app/d/e/f");
  EXPECT_EQ(tracker.resolve(200, 5, ""), "/srv/app/d/e");            // fd-based call on the fd itself
  tracker.apply(DirFdRecord{200, AT_FDCWD, AT_FDCWD, "/home/alice/proj"});  // chdir("/home/...")
  EXPECT_EQ(tracker.resolve(200, AT_FDCWD, "x"), "/home/alice/proj/x");
  EXPECT_EQ(tracker.resolve(200, AT_FDCWD, "/abs"), "/abs");
}

TEST_F(PathTrackerTest, ExitForgetsSoAReusedPidIsNotMisresolved) {
  PathTracker tracker(proc.string());
  tracker.remember_cwd(300, "/srv/app");
  tracker.apply(DirFdRecord{300, 4, AT_FDCWD, "sub"});
  tracker.apply(DirFdRecord{300, FST_DIRFD_EXITED, FST_DIRFD_EXITED, ""});
  EXPECT_FALSE(tracker.resolve(300, AT_FDCWD, "x").has_value());
  EXPECT_FALSE(tracker.resolve(300, 4, "x").has_value());
}

TEST_F(PathTrackerTest, UnknownChildFallsBackToItsParentsCwd) {
  PathTracker tracker(proc.string());
  tracker.remember_cwd(100, "/srv/app");
  tracker.set_parent_lookup([](void*, pid_t pid) -> std::optional<pid_t> {
    return pid == 400 ? std::optional<pid_t>(100) : std::nullopt;
  }, nullptr);
  EXPECT_EQ(tracker.resolve(400, AT_FDCWD, "t"), "/srv/app/t");
  EXPECT_FALSE(tracker.resolve(401, AT_FDCWD, "t").has_value());
  EXPECT_FALSE(tracker.resolve(400, 7, "t").has_value());  // an fd is not inherited this way
}

TEST_F(PathTrackerTest, ProcCwdSeenLaterDoesNotOverrideTheOrderedOne) {
  PathTracker tracker(proc.string());
  tracker.apply(DirFdRecord{500, AT_FDCWD, AT_FDCWD, "/srv/app/a"});
  tracker.remember_cwd(500, "/srv/app/b");  // /proc read after a later chdir
  EXPECT_EQ(tracker.resolve(500, AT_FDCWD, "x"), "/srv/app/a/x");
}

}  // namespace
}  // namespace fstrail::bpf

namespace fstrail::bpf {
namespace {

// The batch's path set against std::set through inserts, erases and re-inserts of the
// same names, filled to its stated capacity (every probe sequence then crosses erased
// slots and collisions).
TEST(PathViewSetTest, AgreesWithStdSetThroughInsertsAndErases) {
  constexpr size_t kInserts = 3000;
  std::vector<std::string> names;
  for (size_t i = 0; i < 400; ++i) names.push_back("/t/" + std::to_string(i));
  names.push_back("");
  PathViewSet set(kInserts);
  std::set<std::string> reference;
  uint32_t state = 7;
  auto next = [&] { return state = state * 1664525u + 1013904223u, state >> 8; };
  for (size_t inserts = 0; inserts < kInserts;) {
    const std::string& name = names[next() % names.size()];
    if (next() % 3 == 0) {
      EXPECT_EQ(set.erase(name), reference.erase(name) == 1) << name;
    } else {
      set.insert(name);
      reference.insert(name);
      ++inserts;
    }
    EXPECT_EQ(set.empty(), reference.empty());
    const std::string& probe = names[next() % names.size()];
    EXPECT_EQ(set.contains(probe), reference.contains(probe)) << probe;
  }
  for (const auto& name : names) EXPECT_EQ(set.contains(name), reference.contains(name)) << name;
}


// The kernel's walk over an argument (kread.bpf.c fst_kr_scan_byte), byte by byte:
// whether a normalised prefix of `arg` relative to (dev, ino) hits one of `hashes`.
// -1: a ".." makes it undecided.
int kernel_scan(uint64_t dev, uint64_t ino, std::string_view arg, const std::set<uint64_t>& hashes) {
  uint64_t committed = fst_kr_dir_seed(dev, ino), work = committed;
  size_t comp_len = 0, components = 0;
  bool all_dots = true;
  for (size_t i = 0; i <= arg.size(); ++i) {
    char c = i < arg.size() ? arg[i] : '/';
    if (c == '/') {
      if (comp_len == 0) continue;
      if (all_dots && comp_len == 2) return -1;
      if (all_dots && comp_len == 1) {
        work = committed;
      } else {
        committed = work;
        ++components;
        if (hashes.contains(committed)) return 1;
      }
      comp_len = 0;
      all_dots = true;
      continue;
    }
    if (comp_len == 0) {
      work = committed;
      if (components) work = fst_kr_hash_byte(work, '/');
    }
    work = fst_kr_hash_byte(work, static_cast<uint8_t>(c));
    ++comp_len;
    if (c != '.') all_dots = false;
  }
  return 0;
}

TEST(AncestorPrefixTest, EveryAncestorOfARootHashesItsWayDown) {
  auto base = std::filesystem::temp_directory_path() / ("fstrail-prefix-" + std::to_string(::getpid()));
  std::filesystem::create_directories(base / "a" / "b");
  std::string root = (base / "a" / "b").string();
  auto entries = ancestor_prefixes(root);
  // "/", then every directory down to the root's parent
  size_t depth = 0;
  for (char c : root) depth += c == '/';
  ASSERT_EQ(entries.size(), depth);
  std::set<uint64_t> hashes;
  for (const auto& e : entries) hashes.insert(e.hash);
  struct stat st{};
  ASSERT_EQ(::stat(base.c_str(), &st), 0);
  uint64_t dev = st.st_dev, ino = st.st_ino;
  EXPECT_EQ(kernel_scan(dev, ino, "a/b", hashes), 1);
  EXPECT_EQ(kernel_scan(dev, ino, "./a//b/new-file", hashes), 1);
  EXPECT_EQ(kernel_scan(dev, ino, "a/b/", hashes), 1);
  EXPECT_EQ(kernel_scan(dev, ino, "a", hashes), 0);      // above the root: outside
  EXPECT_EQ(kernel_scan(dev, ino, "a/bc/x", hashes), 0);  // a sibling with the root's prefix
  EXPECT_EQ(kernel_scan(dev, ino, "a/c/../b/x", hashes), -1);
  // From "/": the whole absolute path.
  ASSERT_EQ(::stat("/", &st), 0);
  EXPECT_EQ(kernel_scan(st.st_dev, st.st_ino, root + "/x", hashes), 1);
  EXPECT_EQ(kernel_scan(st.st_dev, st.st_ino, "/etc/passwd", hashes), 0);
  EXPECT_EQ(kread_prefix_hash(dev, ino, "a/b"), entries[1].hash);  // deepest ancestor first
  EXPECT_EQ(entries[1].dir.ino, ino);
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace fstrail::bpf
