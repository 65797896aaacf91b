// Host integration for `fstrail record` and `fstrail query`: the real binary with the backend
// named by FSTRAIL_BACKEND records a temporary tree into SQLite and into a private PostgreSQL 15
// (started here), root and uid 65534 change it in every way, and `fstrail query` must return
// each event exactly once, with its actor, under every filter. Also: PostgreSQL down at start.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "child_process.h"
#include "store/pg_server.h"
#include "support/temp_dir.h"

namespace {

using fstrail::store::fixtures::PgServer;
using fstrail::testing::Child;
using fstrail::testing::TempDir;
using Json = nlohmann::json;
using namespace std::chrono_literals;
constexpr auto kDeadline = 30s;
constexpr uint32_t kOtherUid = 65534;
// The name of this test process while it changes the tree: --comm finds exactly its events.
constexpr const char* kOurComm = "fst-e2e-root";

using fstrail::store::fixtures::g_server;
using fstrail::store::fixtures::PgEnvironment;

std::string fstrail_bin() {
  const char* bin = std::getenv("FSTRAIL_BIN");
  return bin ? bin : FSTRAIL_DEFAULT_BIN;
}

// The identity of an event in a path-keyed comparison: path bytes (path_b64 when not UTF-8).
std::string path_key(const Json& e) { return e.contains("path_b64") ? "b64:" + e["path_b64"].get<std::string>() : e["path"].get<std::string>(); }

// The event as `watch --json` prints it: the query object without host and event_id.
Json as_watched(Json e) {
  e.erase("host");
  e.erase("event_id");
  return e;
}
// What two recorders of the same workload agree on: everything but their own read time.
Json without_time(Json e) {
  e = as_watched(std::move(e));
  e.erase("time");
  return e;
}
std::multiset<std::string> dumped(const std::vector<Json>& events, Json (*f)(Json)) {
  std::multiset<std::string> out;
  for (const auto& e : events) out.insert(f(e).dump());
  return out;
}

// One `fstrail record --also-print --json` process.
class Recording {
 public:
  Recording(const std::string& backend, const std::string& db, const std::string& spool, const std::string& root) {
    child_ = std::make_unique<Child>(std::vector<std::string>{fstrail_bin(), "record", "--also-print", "--json",
                                                              "--backend", backend, "--db", db, "--spool", spool, root});
    std::string want = "fstrail: recording 1 path(s) with " + backend;
    auto until = std::chrono::steady_clock::now() + kDeadline;
    while (child_->stderr_.find(want) == std::string::npos && std::chrono::steady_clock::now() < until)
      if (!child_->pump(50ms)) break;
    started_ = child_->stderr_.find(want) != std::string::npos;
  }
  bool started() const { return started_; }
  pid_t pid() const { return child_->pid(); }
  const std::string& stderr_text() const { return child_->stderr_; }

  void parse() {
    size_t nl;
    while ((nl = child_->stdout_.find('\n', parsed_)) != std::string::npos) {
      events_.push_back(Json::parse(child_->stdout_.substr(parsed_, nl - parsed_)));
      parsed_ = nl + 1;
    }
  }
  std::optional<Json> wait_for(const std::function<bool(const Json&)>& pred) {
    auto until = std::chrono::steady_clock::now() + kDeadline;
    for (size_t checked = 0;;) {
      parse();
      for (; checked < events_.size(); ++checked)
        if (pred(events_[checked])) return events_[checked];
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      child_->pump(50ms);
    }
  }
  // SIGTERM: exit 0 and the recorder's stats line.
  int stop() {
    int status = child_->stop(SIGTERM);
    parse();
    return status;
  }
  const std::vector<Json>& events() const { return events_; }

 private:
  std::unique_ptr<Child> child_;
  bool started_ = false;
  std::vector<Json> events_;
  size_t parsed_ = 0;
};

class RecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* b = std::getenv("FSTRAIL_BACKEND");
    ASSERT_TRUE(b && (std::string(b) == "fanotify" || std::string(b) == "bpf-tracepoint" ||
                      std::string(b) == "bpf-lsm" || std::string(b) == "bpf-fentry"))
        << "set FSTRAIL_BACKEND to fanotify, bpf-tracepoint, bpf-lsm or bpf-fentry";
    backend_ = b;
    ASSERT_EQ(geteuid(), 0u) << "record integration tests need root; run: sudo ctest -L host";
    ASSERT_NE(g_server, nullptr) << "PostgreSQL did not start (see the environment failure above)";
    ASSERT_EQ(chmod(base_.c_str(), 0755), 0);
    root_ = base_ + "/tree";
    ASSERT_EQ(mkdir(root_.c_str(), 0777), 0);
    ASSERT_EQ(chmod(root_.c_str(), 0777), 0);  // uid 65534 writes here too
    static int databases = 0;
    pg_ = g_server->create_database(fmt::format("record_{}_{}", getpid(), databases++));
    sqlite_ = "sqlite://" + base_ + "/events.db";
    prctl(PR_GET_NAME, saved_comm_);
    prctl(PR_SET_NAME, kOurComm);
  }
  void TearDown() override { prctl(PR_SET_NAME, saved_comm_); }

  std::string in_root(const std::string& name) const { return root_ + "/" + name; }

  void write_file(const std::string& path, const std::string& text) {
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
  }

  // `fstrail query --db db ARGS --json` → events (exit 0 expected).
  std::vector<Json> query(const std::string& db, std::vector<std::string> args) {
    std::vector<std::string> argv = {fstrail_bin(), "query", "--db", db, "--json"};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c(argv);
    EXPECT_EQ(c.wait_exit(), 0) << c.stderr_;
    std::vector<Json> out;
    size_t pos = 0, nl;
    while ((nl = c.stdout_.find('\n', pos)) != std::string::npos) {
      out.push_back(Json::parse(c.stdout_.substr(pos, nl - pos)));
      pos = nl + 1;
    }
    return out;
  }

  // Everything a recording of the tree stored: the events under it, and its `lost` events,
  // which an eBPF backend does not tie to a path (found by kind).
  std::vector<Json> stored_for_tree(const std::string& db) {
    auto out = query(db, {"--path", root_ + "/"});
    for (auto& e : query(db, {"--kind", "lost"}))
      if (e["path"].get<std::string>().rfind(root_ + "/", 0) != 0) out.push_back(std::move(e));
    return out;
  }
  std::string query_table(const std::string& db, std::vector<std::string> args) {
    std::vector<std::string> argv = {fstrail_bin(), "query", "--db", db};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c(argv);
    EXPECT_EQ(c.wait_exit(), 0) << c.stderr_;
    return c.stdout_;
  }

  TempDir dir_{"rec"};
  const std::string base_ = dir_.path();
  std::string backend_, root_, pg_, sqlite_;
  char saved_comm_[16] = {};
};

using fstrail::testing::OtherUser;

TEST_F(RecordTest, EveryChangeIsStoredOnceAndFoundByEveryFilterInSqliteAndPostgres) {
  Recording lite(backend_, sqlite_, base_ + "/spool-sqlite", root_);
  ASSERT_TRUE(lite.started()) << lite.stderr_text();
  Recording pg(backend_, pg_, base_ + "/spool-pg", root_);
  ASSERT_TRUE(pg.started()) << pg.stderr_text();
  auto seen_by_both = [&](const std::function<bool(const Json&)>& pred) {
    bool a = lite.wait_for(pred).has_value(), b = pg.wait_for(pred).has_value();
    return a && b;
  };

  // Before the --since cut.
  write_file(in_root("early"), "x");
  ASSERT_TRUE(seen_by_both([&](const Json& e) { return e["path"] == in_root("early"); }));
  std::this_thread::sleep_for(20ms);
  struct timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  char cut[64];
  struct tm tm{};
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(cut, sizeof cut, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(cut + n, sizeof cut - n, ".%09ldZ", ts.tv_nsec);
  std::this_thread::sleep_for(20ms);

  // Every kind, as root (this process).
  const std::string file = in_root("file.txt"), dir = in_root("d"), newline = in_root("two\nlines"),
                    invalid = in_root(std::string("bad\xff\xfe") + "name");
  // Each change is waited for before the next, as a user's changes would be: a directory
  // deleted before its events are read leaves fanotify no name to report them with.
  auto step = [&](const std::function<void()>& change, const char* kind, const std::string& path) {
    change();
    EXPECT_TRUE(seen_by_both([&](const Json& e) { return e["kind"] == kind && e["path"] == path; }))
        << kind << " " << path << " not seen";
  };
  step([&] { write_file(file, "some bytes"); }, "modify", file);
  step([&] { ASSERT_EQ(mkdir(dir.c_str(), 0755), 0); }, "mkdir", dir);
  step([&] { write_file(dir + "/f", "x"); }, "modify", dir + "/f");
  step([&] { ASSERT_EQ(unlink((dir + "/f").c_str()), 0); }, "delete", dir + "/f");
  step([&] { ASSERT_EQ(rmdir(dir.c_str()), 0); }, "rmdir", dir);
  step([&] { write_file(in_root("old"), "x"); }, "modify", in_root("old"));
  step([&] { ASSERT_EQ(rename(in_root("old").c_str(), in_root("new").c_str()), 0); }, "rename", in_root("new"));
  step([&] { ASSERT_EQ(chmod(file.c_str(), 0600), 0); }, "chmod", file);
  step([&] { ASSERT_EQ(chown(file.c_str(), kOtherUid, kOtherUid), 0); }, "chown", file);
  step([&] { ASSERT_EQ(truncate(file.c_str(), 0), 0); }, "truncate", file);
  step([&] { ASSERT_EQ(setxattr(file.c_str(), "trusted.fstrail", "1", 1, 0), 0) << strerror(errno); }, "xattr", file);
  step([&] { ASSERT_EQ(link(file.c_str(), in_root("hard").c_str()), 0); }, "link", in_root("hard"));
  step([&] { ASSERT_EQ(symlink("file.txt", in_root("soft").c_str()), 0); }, "symlink", in_root("soft"));
  step([&] { write_file(newline, "x"); }, "modify", newline);
  write_file(invalid, "x");
  std::string invalid_b64;
  ASSERT_TRUE(seen_by_both([&](const Json& e) {
    if (!e.contains("path_b64") || e["kind"] != "create") return false;
    invalid_b64 = e["path_b64"];
    return true;
  }));

  // As uid 65534: the shell writes itself (a builtin), so the actor is alive when the event is read.
  // One write session: two back to back could be merged by fanotify's queue in one
  // recorder and not in the other, and the stores are compared with each other below.
  OtherUser nobody(fmt::format("echo hi > '{0}/by-nobody'", root_));
  ASSERT_TRUE(seen_by_both([&](const Json& e) { return e["path"] == in_root("by-nobody") && e["kind"] == "modify"; }));
  pid_t nobody_pid = nobody.pid();
  nobody.release();
  write_file(in_root("last-marker"), "");
  ASSERT_TRUE(seen_by_both([&](const Json& e) { return e["path"] == in_root("last-marker"); }));

  EXPECT_EQ(lite.stop(), 0) << lite.stderr_text();
  EXPECT_EQ(pg.stop(), 0) << pg.stderr_text();
  for (auto* r : {&lite, &pg}) {
    EXPECT_NE(r->stderr_text().find(fmt::format("fstrail: {} stored", r->events().size())), std::string::npos)
        << r->stderr_text();
  }

  std::map<std::string, std::vector<Json>> all;  // per database: everything under the tree
  for (const auto& [db, recording] : {std::pair{sqlite_, &lite}, std::pair{pg_, &pg}}) {
    SCOPED_TRACE(db);
    const std::vector<Json>& printed = recording->events();
    auto everything = query(db, {"--path", root_ + "/"});
    all[db] = everything;
    // Exactly once: what was printed is what is stored, field for field, and ids are unique.
    EXPECT_EQ(dumped(stored_for_tree(db), as_watched), dumped(printed, [](Json e) { return e; }));
    std::set<int64_t> ids;
    for (const auto& e : everything) ids.insert(e["event_id"].get<int64_t>());
    EXPECT_EQ(ids.size(), everything.size());

    // Attribution: root's changes carry this process, uid 65534's the shell.
    for (const auto& e : everything) {
      EXPECT_EQ(e["backend"], backend_) << e;
      if (e["path"] == in_root("by-nobody")) {
        EXPECT_EQ(e["uid"], kOtherUid) << e;
        EXPECT_EQ(e["gid"], kOtherUid) << e;
        EXPECT_EQ(e["pid"], nobody_pid) << e;
        EXPECT_EQ(e["comm"], "sh") << e;
      } else {
        EXPECT_EQ(e["pid"], getpid()) << e;
        EXPECT_EQ(e["uid"], 0) << e;
        EXPECT_EQ(e["comm"], kOurComm) << e;
      }
    }

    // --path FILE: that file's events only (and a rename matches by its old name too).
    auto of_file = query(db, {"--path", file});
    ASSERT_FALSE(of_file.empty());
    std::set<std::string> kinds;
    for (const auto& e : of_file) {
      EXPECT_EQ(e["path"], file) << e;
      kinds.insert(e["kind"]);
    }
    for (const char* k : {"create", "modify", "chmod", "chown", "truncate", "xattr"}) EXPECT_TRUE(kinds.count(k)) << k;
    auto renamed = query(db, {"--path", in_root("old")});
    EXPECT_TRUE(std::any_of(renamed.begin(), renamed.end(), [&](const Json& e) {
      return e["kind"] == "rename" && e["old_path"] == in_root("old") && e["path"] == in_root("new");
    }));
    auto bad = query(db, {"--path", invalid});
    ASSERT_FALSE(bad.empty());
    for (const auto& e : bad) EXPECT_EQ(e["path_b64"], invalid_b64) << e;
    auto nl = query(db, {"--path", newline});
    ASSERT_FALSE(nl.empty());
    for (const auto& e : nl) EXPECT_EQ(e["path"], newline) << e;

    // --path DIR/ is a subtree, not a prefix of names: tree/ must not match tree-other.
    EXPECT_TRUE(query(db, {"--path", in_root("d") + "/", "--kind", "create"}).size() == 1);

    // --since: everything after the cut and nothing before it.
    auto since = query(db, {"--path", root_ + "/", "--since", cut});
    size_t after_cut = 0;
    for (const auto& e : everything) after_cut += e["path"] != in_root("early");
    EXPECT_EQ(since.size(), after_cut);
    for (const auto& e : since) EXPECT_NE(e["path"], in_root("early")) << e;
    EXPECT_EQ(query(db, {"--path", in_root("early"), "--until", cut}).size(),
              static_cast<size_t>(std::count_if(everything.begin(), everything.end(),
                                                [&](const Json& e) { return e["path"] == in_root("early"); })));

    // --user, by number and by name.
    auto by_nobody = query(db, {"--path", root_ + "/", "--user", "65534"});
    ASSERT_FALSE(by_nobody.empty());
    for (const auto& e : by_nobody) EXPECT_EQ(e["path"], in_root("by-nobody")) << e;
    EXPECT_EQ(by_nobody.size(), static_cast<size_t>(std::count_if(everything.begin(), everything.end(), [&](const Json& e) {
                return e["uid"] == kOtherUid;
              })));
    EXPECT_EQ(query(db, {"--path", root_ + "/", "--user", "root"}).size(), everything.size() - by_nobody.size());

    // --kind
    auto creates = query(db, {"--path", root_ + "/", "--kind", "create"});
    for (const auto& e : creates) EXPECT_EQ(e["kind"], "create") << e;
    EXPECT_EQ(creates.size(), static_cast<size_t>(std::count_if(everything.begin(), everything.end(),
                                                                [](const Json& e) { return e["kind"] == "create"; })));
    auto two = query(db, {"--path", root_ + "/", "--kind", "chmod,chown"});
    ASSERT_EQ(two.size(), 2u);
    EXPECT_EQ(two[0]["kind"], "chmod");
    EXPECT_EQ(two[0]["new_mode"], S_IFREG | 0600);
    EXPECT_EQ(two[1]["kind"], "chown");
    EXPECT_EQ(two[1]["new_uid"], kOtherUid);

    // --comm
    auto by_sh = query(db, {"--comm", "sh", "--path", root_ + "/"});
    EXPECT_EQ(by_sh.size(), by_nobody.size());
    EXPECT_EQ(query(db, {"--comm", kOurComm}).size(), everything.size() - by_nobody.size());

    // --last: one event per path, the latest.
    auto last = query(db, {"--path", root_ + "/", "--last"});
    std::map<std::string, Json> latest;
    for (const auto& e : everything) latest[path_key(e)] = e;  // `everything` is oldest first
    ASSERT_EQ(last.size(), latest.size());
    for (const auto& e : last) EXPECT_EQ(e, latest[path_key(e)]);
    auto file_last = query(db, {"--path", file, "--last"});
    ASSERT_EQ(file_last.size(), 1u);
    EXPECT_EQ(file_last[0]["kind"], "xattr");

    // --limit: the most recent N, oldest first.
    auto limited = query(db, {"--path", root_ + "/", "--limit", "3"});
    ASSERT_EQ(limited.size(), 3u);
    EXPECT_EQ(limited[2], everything.back());

    // The default table: a header and one line per event (a newline in a name is escaped).
    std::string table = query_table(db, {"--path", root_ + "/"});
    EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), static_cast<long>(everything.size() + 1)) << table;
    EXPECT_EQ(table.rfind("TIME (UTC)", 0), 0u) << table;
    EXPECT_NE(table.find(fmt::format("nobody({})", kOtherUid)), std::string::npos) << table;
    EXPECT_NE(table.find(fmt::format("{} {}", getpid(), kOurComm)), std::string::npos) << table;
  }

  // The same workload gives the same answers from SQLite and PostgreSQL.
  EXPECT_EQ(dumped(all[sqlite_], without_time), dumped(all[pg_], without_time));
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--path", file},
                                             {"--path", root_ + "/", "--user", "65534"},
                                             {"--path", root_ + "/", "--kind", "create,delete"},
                                             {"--path", root_ + "/", "--comm", "sh"},
                                             {"--path", root_ + "/", "--last"},
                                             {"--path", invalid},
                                             {"--path", root_ + "/", "--since", cut}}) {
    SCOPED_TRACE(fmt::format("{}", fmt::join(args, " ")));
    auto a = query(sqlite_, args), b = query(pg_, args);
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(dumped(a, without_time), dumped(b, without_time));
  }
}

// A password on the command line is readable by every user: record scrubs it from its own
// argv at start (and warns); --db-password-file is the way to give one. The SQLite history
// and its -wal/-shm are 0600, in a 0700 directory when fstrail makes it.
TEST_F(RecordTest, NoPasswordInTheCommandLineAndAPrivateSqliteHistory) {
  // The test server trusts local connections: the password is carried, never checked.
  std::string secret = "s3cret-pw-4711";
  std::string pg_url = fmt::format("postgresql://postgres:{}@/{}?{}", secret, pg_.substr(pg_.find("dbname=") + 7, pg_.find(" user=") - pg_.find("dbname=") - 7),
                                   "host=" + pg_.substr(5, pg_.find(' ') - 5) + "&port=" +
                                       pg_.substr(pg_.find("port=") + 5, pg_.find(" dbname") - pg_.find("port=") - 5));
  {
    Recording rec(backend_, pg_url, base_ + "/spool-pg", root_);
    ASSERT_TRUE(rec.started()) << rec.stderr_text();
    std::ifstream in(fmt::format("/proc/{}/cmdline", rec.pid()));
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(cmdline.find(secret), std::string::npos) << cmdline;
    EXPECT_NE(cmdline.find("postgresql://postgres:***@/"), std::string::npos) << cmdline;
    EXPECT_NE(rec.stderr_text().find("warning: the password in --db was removed from the command line"),
              std::string::npos)
        << rec.stderr_text();
    EXPECT_EQ(rec.stderr_text().find(secret), std::string::npos) << rec.stderr_text();
    write_file(in_root("pg-marker"), "x");
    ASSERT_TRUE(rec.wait_for([&](const Json& e) { return e["path"] == in_root("pg-marker"); }));
    EXPECT_EQ(rec.stop(), 0) << rec.stderr_text();
  }
  EXPECT_FALSE(query(pg_, {"--path", in_root("pg-marker")}).empty()) << "stored through the scrubbed URL";
  std::string pwfile = base_ + "/pw";
  std::ofstream(pwfile) << secret << "\n";
  Child q({fstrail_bin(), "query", "--db", pg_, "--db-password-file", pwfile, "--json", "--path", in_root("pg-marker")});
  EXPECT_EQ(q.wait_exit(), 0) << q.stderr_;
  EXPECT_NE(q.stdout_.find("pg-marker"), std::string::npos) << q.stdout_;
  Child bad({fstrail_bin(), "query", "--db", pg_, "--db-password-file", base_});
  EXPECT_EQ(bad.wait_exit(), 2) << bad.stderr_;

  std::string dir = base_ + "/history/sub";
  {
    Recording rec(backend_, "sqlite://" + dir + "/events.db", base_ + "/spool-sqlite", root_);
    ASSERT_TRUE(rec.started()) << rec.stderr_text();
    write_file(in_root("sqlite-marker"), "x");
    ASSERT_TRUE(rec.wait_for([&](const Json& e) { return e["path"] == in_root("sqlite-marker"); }));
    for (const char* suffix : {"", "-wal", "-shm"}) {
      struct stat st{};
      ASSERT_EQ(stat((dir + "/events.db" + suffix).c_str(), &st), 0) << suffix;
      EXPECT_EQ(st.st_mode & 07777, 0600u) << "events.db" << suffix;
    }
    EXPECT_EQ(rec.stop(), 0) << rec.stderr_text();
  }
  for (const auto& d : {base_ + "/history", dir}) {
    struct stat st{};
    ASSERT_EQ(stat(d.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u) << d;
  }
}

TEST_F(RecordTest, PostgresDownAtStartSpoolsAndReplaysOnRestart) {
  ASSERT_TRUE(g_server->stop());
  std::string spool = base_ + "/spool";
  std::vector<Json> printed;
  {
    Recording down(backend_, pg_, spool, root_);
    if (!down.started()) {
      ASSERT_EQ(g_server->start_again(), "");
      FAIL() << "record did not start with PostgreSQL down: " << down.stderr_text();
    }
    for (int i = 0; i < 300; ++i) write_file(in_root(fmt::format("f{}", i)), "x");
    ASSERT_EQ(mkdir(in_root("dir").c_str(), 0755), 0);
    ASSERT_EQ(rename(in_root("f0").c_str(), in_root("dir/f0").c_str()), 0);
    ASSERT_EQ(unlink(in_root("f1").c_str()), 0);
    write_file(in_root("marker"), "");
    ASSERT_TRUE(down.wait_for([&](const Json& e) { return e["path"] == in_root("marker"); }));
    EXPECT_EQ(down.stop(), 0) << down.stderr_text();
    EXPECT_NE(down.stderr_text().find("fstrail: 0 stored"), std::string::npos) << down.stderr_text();
    EXPECT_NE(down.stderr_text().find(fmt::format("{} spooled", down.events().size())), std::string::npos)
        << down.stderr_text();
    printed = down.events();
  }
  EXPECT_FALSE(std::filesystem::is_empty(spool));
  ASSERT_EQ(g_server->start_again(), "");
  {
    Recording back(backend_, pg_, spool, root_);
    ASSERT_TRUE(back.started()) << back.stderr_text();
    // The replay happens within the recorder's first flush interval; the stop waits for it.
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(back.stop(), 0) << back.stderr_text();
    EXPECT_NE(back.stderr_text().find(fmt::format("({} replayed from the spool)", printed.size())), std::string::npos)
        << back.stderr_text();
  }
  auto stored = stored_for_tree(pg_);
  EXPECT_EQ(dumped(stored, as_watched), dumped(printed, [](Json e) { return e; }));
  std::set<int64_t> ids;
  for (const auto& e : stored) ids.insert(e["event_id"].get<int64_t>());
  EXPECT_EQ(ids.size(), stored.size());
  // In order: the stored times run in the order the events happened (a `lost` event is
  // timed when the loss was noticed, not where it happened: left out of this check).
  auto files_only = [](std::vector<Json> v) {
    std::erase_if(v, [](const Json& e) { return e["kind"] == "lost"; });
    return v;
  };
  auto stored_files = files_only(query(pg_, {"--path", root_ + "/"})), printed_files = files_only(printed);
  for (size_t i = 0; i < stored_files.size() && i < printed_files.size(); ++i)
    EXPECT_EQ(stored_files[i]["path"], printed_files[i]["path"]) << i;
  // A second recorder on the same spool is refused rather than corrupting it.
  Recording first(backend_, pg_, spool, root_);
  ASSERT_TRUE(first.started()) << first.stderr_text();
  Child second({fstrail_bin(), "record", "--backend", backend_, "--db", pg_, "--spool", spool, root_});
  EXPECT_EQ(second.wait_exit(), 2);
  EXPECT_NE(second.stderr_.find("is in use by another fstrail process"), std::string::npos) << second.stderr_;
  EXPECT_EQ(first.stop(), 0);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new PgEnvironment);
  return RUN_ALL_TESTS();
}
