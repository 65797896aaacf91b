// Host integration for `fstrail guard`: the real binary with the backend named by
// FSTRAIL_BACKEND guards a temporary tree owned by a service user (uid 65534), and
// root breaks the invariant in each way the guard must catch.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <map>
#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "child_process.h"
#include "support/temp_dir.h"

namespace {

using fstrail::testing::Child;
using fstrail::testing::TempDir;
using Json = nlohmann::json;
using namespace std::chrono_literals;
constexpr auto kDeadline = 20s;
constexpr uid_t kService = 65534;
constexpr uid_t kExempt = 4242;  // an administrator listed in exempt_users

// Backends guard is tested on. Every one reports the pid behind a change.
struct BackendRow {
  // uid and comm captured in the kernel; fanotify reads them from /proc afterwards,
  // which a short-lived command (chmod, chown) has often left by then: null, never wrong.
  bool actor_in_kernel;
  // A move into the tree from an unwatched directory: fanotify is told only the side it
  // marks, so it reports a create.
  std::string move_in_kind;
};
const std::map<std::string, BackendRow> kBackends = {{"fanotify", {false, "create"}},
                                                     {"bpf-tracepoint", {true, "rename"}},
                                                     {"bpf-lsm", {true, "rename"}},
                                                     {"bpf-fentry", {true, "rename"}}};

std::string fstrail_bin() {
  const char* bin = std::getenv("FSTRAIL_BIN");
  return bin ? bin : FSTRAIL_DEFAULT_BIN;
}

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* b = std::getenv("FSTRAIL_BACKEND");
    ASSERT_TRUE(b && kBackends.contains(b))
        << "set FSTRAIL_BACKEND to one of fanotify, bpf-tracepoint, bpf-lsm, bpf-fentry";
    backend_ = b;
    actor_in_kernel_ = kBackends.at(backend_).actor_in_kernel;
    ASSERT_EQ(geteuid(), 0u) << "guard integration tests need root; run: sudo ctest -L host";
    ASSERT_EQ(chmod(base_.c_str(), 0755), 0);
    tree_ = base_ + "/srv";
    outside_ = base_ + "/outside";
    ASSERT_EQ(mkdir(tree_.c_str(), 0750), 0);
    ASSERT_EQ(chown(tree_.c_str(), kService, kService), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
  }
  void TearDown() override { guard_.reset(); }

  std::string config(bool remediate) {
    std::string file = base_ + "/fstrail.toml";
    std::ofstream(file) << fmt::format(
        "[[guard]]\nname = \"svc\"\npath = \"{}\"\nowner = {}\ngroup = {}\nmode_max = \"0750\"\n"
        "remediate = {}\nexempt_users = [{}]\n",
        tree_, kService, kService, remediate ? "true" : "false", kService);
    return file;
  }

  // enforce = true; the service user owns the tree, kExempt is exempt.
  std::string enforce_config() {
    std::string file = base_ + "/enforce.toml";
    std::ofstream(file) << fmt::format(
        "[[guard]]\nname = \"svc\"\npath = \"{}\"\nowner = {}\ngroup = {}\nmode_max = \"0750\"\n"
        "enforce = true\nexempt_users = [{}]\n",
        tree_, kService, kService, kExempt);
    return file;
  }

  void start(bool remediate, std::vector<std::string> extra = {}) { start_with(config(remediate), extra); }
  void start_with(const std::string& config_file, std::vector<std::string> extra = {}, int trees = 1) {
    std::vector<std::string> argv = {fstrail_bin(), "guard", "--json", "--backend", backend_,
                                     "--config", config_file};
    argv.insert(argv.end(), extra.begin(), extra.end());
    guard_ = std::make_unique<Child>(argv);
    auto until = std::chrono::steady_clock::now() + kDeadline;
    while (guard_->stderr_.find("fstrail: guarding") == std::string::npos && std::chrono::steady_clock::now() < until)
      if (!guard_->pump(50ms)) break;
    ASSERT_NE(guard_->stderr_.find(fmt::format("fstrail: guarding {} tree(s) with {}", trees, backend_)),
              std::string::npos)
        << guard_->stderr_;
  }

  std::optional<Json> wait_for(const std::function<bool(const Json&)>& pred, std::chrono::seconds limit = kDeadline) {
    auto until = std::chrono::steady_clock::now() + limit;
    size_t checked = 0;
    for (;;) {
      parse();
      for (; checked < alerts_.size(); ++checked)
        if (pred(alerts_[checked])) return alerts_[checked];
      if (std::chrono::steady_clock::now() >= until) return std::nullopt;
      guard_->pump(50ms);
    }
  }
  std::optional<Json> wait_alert(const std::string& type, const std::string& path) {
    auto a = wait_for([&](const Json& j) { return j["alert"] == type && j["path"] == path; });
    EXPECT_TRUE(a) << "no '" << type << "' alert for " << path << "\n" << dump();
    return a;
  }
  void parse() {
    size_t nl;
    while ((nl = guard_->stdout_.find('\n', parsed_)) != std::string::npos) {
      alerts_.push_back(Json::parse(guard_->stdout_.substr(parsed_, nl - parsed_)));
      parsed_ = nl + 1;
    }
  }
  std::string dump() {
    parse();
    std::string out;
    for (const auto& a : alerts_) out += a.dump() + "\n";
    return out + guard_->stderr_;
  }

  std::string make_file(const std::string& path, mode_t mode, uid_t owner) {
    int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, mode);
    EXPECT_GE(fd, 0) << path << ": " << strerror(errno);
    close(fd);
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    EXPECT_EQ(chown(path.c_str(), owner, owner), 0);
    return path;
  }
  static struct stat stat_of(const std::string& path) {
    struct stat st{};
    lstat(path.c_str(), &st);
    return st;
  }
  // Waits until `path` has the wanted owner and mode (remediation is asynchronous).
  bool wait_state(const std::string& path, uid_t uid, mode_t mode) {
    auto until = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < until) {
      struct stat st = stat_of(path);
      if (st.st_uid == uid && (st.st_mode & 07777) == mode) return true;
      guard_->pump(20ms);
    }
    return false;
  }
  // Stops guard with SIGTERM: exit 0 and a count line.
  void stop() {
    EXPECT_EQ(guard_->stop(SIGTERM), 0) << guard_->stderr_;
    EXPECT_NE(guard_->stderr_.find("violation(s)"), std::string::npos) << guard_->stderr_;
    parse();
  }

  // `field` is `want`, or null where the backend reads the actor afterwards.
  void expect_actor_field(const Json& a, const char* field, const Json& want) {
    if (actor_in_kernel_ || !a[field].is_null()) {
      EXPECT_EQ(a[field], want) << field << " in " << a;
    }
  }

  TempDir dir_{"guard"};
  const std::string base_ = dir_.path();
  std::string backend_, tree_, outside_;
  bool actor_in_kernel_ = false;
  std::unique_ptr<Child> guard_;
  std::vector<Json> alerts_;
  size_t parsed_ = 0;
};

TEST_F(GuardTest, ExistingViolationsAreReportedAtStart) {
  make_file(tree_ + "/old", 0640, 0);
  start(false);
  auto a = wait_alert("existing", tree_ + "/old");
  if (a) {
    EXPECT_EQ(a->at("problems"), Json::array({"owner", "group"}));
    EXPECT_TRUE(a->at("pid").is_null());
  }
  stop();
}

// Each violation is made by its own command, as an administrator would: the alert
// must name that command's process, not just "root".
TEST_F(GuardTest, CreateAsRootChownChmodAndRenameInAreAlertedWithTheActor) {
  std::string chown_me = make_file(tree_ + "/chown-me", 0640, kService);
  std::string chmod_me = make_file(tree_ + "/chmod-me", 0640, kService);
  std::string foreign = make_file(outside_ + "/foreign", 0640, 0);
  start(false);
  struct Case {
    std::vector<std::string> argv;
    std::string path, kind, comm;
  };
  const std::vector<Case> cases = {
      {{"touch", tree_ + "/created-by-root"}, tree_ + "/created-by-root", "create", "touch"},
      {{"chown", "0:0", chown_me}, chown_me, "chown", "chown"},
      {{"chmod", "0777", chmod_me}, chmod_me, "chmod", "chmod"},
      {{"mv", foreign, tree_ + "/moved-in"}, tree_ + "/moved-in", kBackends.at(backend_).move_in_kind, "mv"},
  };
  for (const auto& c : cases) {
    Child cmd(c.argv);
    pid_t pid = cmd.pid();
    ASSERT_EQ(cmd.wait_exit(), 0) << c.argv[0] << ": " << cmd.stderr_;
    auto a = wait_alert("violation", c.path);
    if (!a) continue;
    EXPECT_EQ(a->at("rule"), "svc") << *a;
    EXPECT_EQ(a->at("kind"), c.kind) << *a;
    EXPECT_EQ(a->at("pid"), pid) << *a;
    expect_actor_field(*a, "uid", 0);
    expect_actor_field(*a, "comm", c.comm);
    EXPECT_EQ(a->at("backend"), backend_) << *a;
    EXPECT_EQ(a->at("expected")["uid"], kService) << *a;
    if (c.kind == "chmod") {
      EXPECT_EQ(a->at("problems"), Json::array({"mode"})) << *a;
      EXPECT_EQ(a->at("actual")["mode"], "0777") << *a;
    } else {
      EXPECT_EQ(a->at("actual")["uid"], 0) << *a;
    }
  }
  stop();
  for (const auto& a : alerts_) EXPECT_EQ(a["alert"], "violation") << "one alert per violation: " << a;
  EXPECT_EQ(alerts_.size(), cases.size()) << dump();
}

TEST_F(GuardTest, TheServiceUsersOwnWorkIsQuiet) {
  start(false);
  Child svc({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
             fmt::format("umask 027; mkdir {0}/d && echo x > {0}/d/f && chmod 0700 {0}/d/f", tree_)});
  ASSERT_EQ(svc.wait_exit(), 0) << svc.stderr_;
  // A later violation by root marks the point by which the service user's events were seen.
  std::string marker = make_file(tree_ + "/marker", 0640, 0);
  ASSERT_TRUE(wait_alert("violation", marker));
  for (const auto& a : alerts_) EXPECT_EQ(a["path"], marker) << "unexpected alert: " << a;
  stop();
}

TEST_F(GuardTest, RemediationRestoresOwnerAndMode) {
  start(true);
  std::string f = make_file(tree_ + "/f", 0640, kService);
  ASSERT_EQ(chown(f.c_str(), 0, 0), 0);
  if (auto a = wait_alert("violation", f)) {
    EXPECT_EQ(a->at("action")["result"], "fixed") << *a;
  }
  EXPECT_TRUE(wait_state(f, kService, 0640));

  ASSERT_EQ(chmod(f.c_str(), 0777), 0);
  EXPECT_TRUE(wait_state(f, kService, 0750)) << dump();

  std::string created = tree_ + "/created";
  int fd = open(created.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_TRUE(wait_state(created, kService, stat_of(created).st_mode & 0750)) << dump();
  stop();
}

TEST_F(GuardTest, DryRunChangesNothing) {
  start(true, {"--dry-run"});
  std::string f = make_file(tree_ + "/f", 0777, 0);
  if (auto a = wait_alert("violation", f)) {
    EXPECT_EQ(a->at("action")["result"], "would fix") << *a;
  }
  struct stat st = stat_of(f);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0777u);
  stop();
}

TEST_F(GuardTest, SymlinkAttackNeverChangesTheTarget) {
  std::string secret = make_file(outside_ + "/shadow", 0640, 0);
  start(true);
  std::string link = tree_ + "/innocent";
  ASSERT_EQ(symlink(secret.c_str(), link.c_str()), 0);
  wait_alert("violation", link);
  // Also a directory symlink as a step on the way.
  ASSERT_EQ(symlink(outside_.c_str(), (tree_ + "/dirlink").c_str()), 0);
  std::string marker = make_file(tree_ + "/marker", 0640, 0);
  wait_alert("violation", marker);
  EXPECT_TRUE(wait_state(marker, kService, 0640));
  struct stat st = stat_of(secret);
  EXPECT_EQ(st.st_uid, 0u) << "the symlink's target was chowned";
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // The link itself belongs to the service user now; following it changed nothing.
  EXPECT_EQ(stat_of(link).st_uid, kService);
  stop();
}

// A hard link into the tree is the same inode as its name outside: remediation never
// touches it, whether the service user made it (fs.protected_hardlinks lets it link a
// file it may read and write) or root did by mistake; the alert names the link count.
TEST_F(GuardTest, HardLinksIntoTheTreeNeverChangeTheOutsideFile) {
  std::string shared = make_file(outside_ + "/shared666", 0666, 0);
  std::string secret = make_file(outside_ + "/secret0640", 0640, 0);
  // No exempt user here: the service user's own link is a violation to remediate.
  std::string file = base_ + "/no-exempt.toml";
  std::ofstream(file) << fmt::format(
      "[[guard]]\nname = \"svc\"\npath = \"{}\"\nowner = {}\ngroup = {}\nmode_max = \"0750\"\nremediate = true\n",
      tree_, kService, kService);
  start_with(file);
  std::string mine = tree_ + "/mine";
  Child svc({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ln", shared, mine});
  ASSERT_EQ(svc.wait_exit(), 0) << svc.stderr_;
  std::string by_root = tree_ + "/by-root";
  ASSERT_EQ(link(secret.c_str(), by_root.c_str()), 0) << strerror(errno);
  for (const auto& path : {mine, by_root}) {
    if (auto a = wait_alert("violation", path)) {
      EXPECT_EQ(a->at("action")["result"], "skipped") << *a;
      EXPECT_EQ(a->at("action")["detail"], "not remediated: 2 hard links") << *a;
    }
  }
  std::string marker = make_file(tree_ + "/marker", 0640, 0);
  ASSERT_TRUE(wait_state(marker, kService, 0640)) << dump();
  for (auto [path, mode] : {std::pair{shared, 0666u}, std::pair{secret, 0640u}}) {
    struct stat st = stat_of(path);
    EXPECT_EQ(st.st_uid, 0u) << path << " was chowned through its hard link";
    EXPECT_EQ(st.st_gid, 0u) << path;
    EXPECT_EQ(st.st_mode & 07777, mode) << path << " was chmoded through its hard link";
    EXPECT_EQ(st.st_nlink, 2u);
  }
  stop();
  EXPECT_NE(guard_->stderr_.find(" fixed, 2 not fixed, 0 remediation failure(s) (hard links: 2)"), std::string::npos)
      << guard_->stderr_;
  EXPECT_NE(guard_->stderr_.find("fstrail: not fixed: " + mine + ": not remediated: 2 hard links"), std::string::npos)
      << guard_->stderr_;
  // The scan at start finds them too, and leaves them alone as well.
  alerts_.clear();
  parsed_ = 0;
  start_with(file);
  for (const auto& path : {mine, by_root}) {
    if (auto a = wait_alert("existing", path)) {
      EXPECT_EQ(a->at("action")["detail"], "not remediated: 2 hard links") << *a;
    }
  }
  EXPECT_EQ(stat_of(shared).st_uid, 0u);
  EXPECT_EQ(stat_of(secret).st_mode & 07777, 0640u);
  stop();
  EXPECT_NE(guard_->stderr_.find("0 fixed, 2 not fixed, 0 remediation failure(s) (hard links: 2)"), std::string::npos)
      << guard_->stderr_;
}

// Refused at load with file:line: "/" (remediation would reach every file of the host),
// and a path through a symbolic link (a link changed later would redirect the guard).
TEST_F(GuardTest, RootAndSymlinkedGuardPathsAreRefused) {
  std::string root_toml = base_ + "/root.toml";
  std::ofstream(root_toml) << "[[guard]]\nname = \"all\"\nowner = 0\npath = \"/\"\nremediate = true\n";
  Child r({fstrail_bin(), "guard", "--backend", backend_, "--config", root_toml});
  EXPECT_EQ(r.wait_exit(), 2) << r.stderr_;
  EXPECT_NE(r.stderr_.find(root_toml + ":4: path = \"/\" is refused"), std::string::npos) << r.stderr_;

  std::string link = base_ + "/link";
  ASSERT_EQ(symlink(tree_.c_str(), link.c_str()), 0);
  std::string link_toml = base_ + "/link.toml";
  std::ofstream(link_toml) << fmt::format(
      "[[guard]]\nname = \"svc\"\nowner = {}\nremediate = true\npath = \"{}/\"\n", kService, link);
  for (auto args : {std::vector<std::string>{"--check-config"}, std::vector<std::string>{"--backend", backend_}}) {
    std::vector<std::string> argv = {fstrail_bin(), "guard", "--config", link_toml};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c(argv);
    EXPECT_EQ(c.wait_exit(), 2) << c.stderr_;
    EXPECT_NE(c.stderr_.find(fmt::format("{}:5: guard 'svc': path {} goes through a symbolic link", link_toml, link)),
              std::string::npos)
        << c.stderr_;
    EXPECT_NE(c.stderr_.find(fmt::format("write the real path instead: path = \"{}\"", tree_)), std::string::npos)
        << c.stderr_;
  }
}

TEST_F(GuardTest, BurstFromOneProcessBecomesOneSummary) {
  constexpr int kFiles = 50000;
  std::string dir = tree_ + "/burst";
  ASSERT_EQ(mkdir(dir.c_str(), 0750), 0);
  ASSERT_EQ(chown(dir.c_str(), kService, kService), 0);
  start(false);
  for (int i = 0; i < kFiles; ++i) {
    int fd = open(fmt::format("{}/f{}", dir, i).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  auto summary = wait_for([](const Json& j) { return j["alert"] == "summary"; }, 120s);
  ASSERT_TRUE(summary) << dump().substr(0, 4000);
  EXPECT_EQ(summary->at("count"), kFiles) << *summary;
  EXPECT_EQ(summary->at("pid"), getpid());
  EXPECT_EQ(summary->at("first_paths").size(), 10u);
  stop();
  size_t individual = 0;
  for (const auto& a : alerts_) individual += a["alert"] == "violation";
  EXPECT_LE(individual, 3u) << "a burst must not become one line per file";
  EXPECT_LE(alerts_.size(), 5u);
}

// Root's `cp -a` into the tree: a burst far beyond the remediation rate is worked off at
// that rate, every file of it, and the stop summary accounts for each one.
TEST_F(GuardTest, RemediationFixesEveryFileOfABurstAtTheDocumentedRate) {
  constexpr int kFiles = 5000, kRate = 200;  // the default rate
  std::string dir = tree_ + "/burst";
  ASSERT_EQ(mkdir(dir.c_str(), 0750), 0);
  ASSERT_EQ(chown(dir.c_str(), kService, kService), 0);
  start(true);
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < kFiles; ++i) {
    int fd = open(fmt::format("{}/f{}", dir, i).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  auto limit = std::chrono::duration<double>(kFiles * 1.1 / kRate);
  int owned = 0;
  while (std::chrono::steady_clock::now() - begin < limit) {
    owned = 0;
    for (int i = 0; i < kFiles; ++i) owned += stat_of(fmt::format("{}/f{}", dir, i)).st_uid == kService;
    if (owned == kFiles) break;
    guard_->pump(200ms);
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  EXPECT_EQ(owned, kFiles) << "after " << took << " s; allowed " << limit.count() << " s\n"
                           << guard_->stderr_;
  RecordProperty("seconds", std::to_string(took));
  stop();
  EXPECT_NE(guard_->stderr_.find(fmt::format("fstrail: {0} violation(s), ", kFiles)), std::string::npos)
      << guard_->stderr_;
  EXPECT_NE(guard_->stderr_.find(fmt::format(" {} fixed, 0 not fixed, 0 remediation failure(s), 0 gone", kFiles)),
            std::string::npos)
      << guard_->stderr_;
  size_t queued = 0;
  for (const auto& a : alerts_) queued += !a["action"].is_null() && a["action"]["result"] == "queued";
  EXPECT_LE(alerts_.size(), 5u) << "a burst must not become one line per file";
  fmt::print("{} files fixed in {:.1f} s (limit {:.1f} s); {} of the individual alerts were queued\n", kFiles, took,
             limit.count(), queued);
}

// With --db: the burst is one summary alert on stdout, and every file of it is a record in
// the store that `fstrail query` finds.
TEST_F(GuardTest, BurstWithDbKeepsThePerFileRecordsInTheStore) {
  constexpr int kFiles = 1000;
  std::string dir = tree_ + "/burst";
  ASSERT_EQ(mkdir(dir.c_str(), 0750), 0);
  ASSERT_EQ(chown(dir.c_str(), kService, kService), 0);
  std::string db = "sqlite://" + base_ + "/events.db";
  start(false, {"--db", db, "--spool", base_ + "/spool"});
  for (int i = 0; i < kFiles; ++i) {
    int fd = open(fmt::format("{}/f{}", dir, i).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  auto summary = wait_for([](const Json& j) { return j["alert"] == "summary"; });
  ASSERT_TRUE(summary) << dump().substr(0, 4000);
  EXPECT_EQ(summary->at("count"), kFiles) << *summary;
  stop();
  EXPECT_NE(guard_->stderr_.find("recording the trees' events into"), std::string::npos) << guard_->stderr_;
  size_t summaries = 0;
  for (const auto& a : alerts_) summaries += a["alert"] == "summary";
  EXPECT_EQ(summaries, 1u) << dump();

  Child q({fstrail_bin(), "query", "--db", db, "--json", "--path", tree_ + "/", "--kind", "create"});
  ASSERT_EQ(q.wait_exit(), 0) << q.stderr_;
  std::set<std::string> paths;
  size_t rows = 0;
  for (size_t pos = 0, nl; (nl = q.stdout_.find('\n', pos)) != std::string::npos; pos = nl + 1, ++rows) {
    Json e = Json::parse(q.stdout_.substr(pos, nl - pos));
    EXPECT_EQ(e["kind"], "create") << e;
    EXPECT_EQ(e["pid"], getpid()) << e;
    EXPECT_EQ(e["backend"], backend_) << e;
    paths.insert(e["path"].get<std::string>());
  }
  EXPECT_EQ(rows, static_cast<size_t>(kFiles)) << "each file exactly once";
  EXPECT_EQ(paths.size(), static_cast<size_t>(kFiles));
  EXPECT_TRUE(paths.count(dir + "/f0") && paths.count(fmt::format("{}/f{}", dir, kFiles - 1)));
}

TEST_F(GuardTest, BadConfigIsRejectedWithFileAndLine) {
  std::string file = base_ + "/bad.toml";
  std::ofstream(file) << "[[guard]]\nname = \"x\"\npath = \"" << tree_ << "\"\nowner = 0\nmode_max = \"0778\"\n";
  Child c({fstrail_bin(), "guard", "--check-config", "--config", file});
  EXPECT_EQ(c.wait_exit(), 2);
  EXPECT_NE(c.stderr_.find(file + ":5: mode_max"), std::string::npos) << c.stderr_;
  Child ok({fstrail_bin(), "guard", "--check-config", "--config", config(false)});
  EXPECT_EQ(ok.wait_exit(), 0) << ok.stderr_;
}

// enforce = true needs bpf-lsm: any other backend refuses to start, with the reason.
TEST_F(GuardTest, EnforceWithoutBpfLsmRefusesToStart) {
  std::string other = backend_ == "bpf-lsm" ? "fanotify" : backend_;
  Child c({fstrail_bin(), "guard", "--backend", other, "--config", enforce_config()});
  EXPECT_EQ(c.wait_exit(), 2) << c.stderr_;
  EXPECT_NE(c.stderr_.find("enforce = true, which needs the bpf-lsm backend; --backend " + other +
                           " cannot deny operations"),
            std::string::npos)
      << c.stderr_;
  EXPECT_NE(c.stderr_.find("fstrail doctor"), std::string::npos) << c.stderr_;
  if (backend_ != "bpf-lsm") {  // here (the host tier) bpf-lsm cannot load: `auto` refuses too
    Child a({fstrail_bin(), "guard", "--config", enforce_config()});
    EXPECT_EQ(a.wait_exit(), 2) << a.stderr_;
    EXPECT_NE(a.stderr_.find("bpf-lsm cannot run here: "), std::string::npos) << a.stderr_;
  }
}

// In-kernel enforcement (bpf-lsm, VM tier): root (not exempt) is denied exactly the
// operations that would break the rule, each denial is reported; the service user, an
// exempt administrator and everything outside the tree are not affected; once guard
// stops, nothing is denied any more.
class GuardEnforceTest : public GuardTest {
 protected:
  void SetUp() override {
    GuardTest::SetUp();
    ASSERT_EQ(backend_, "bpf-lsm") << "enforcement is a bpf-lsm feature (run in the VM tier)";
  }
  // Runs argv as the exempt administrator: real uid kExempt, effective uid root.
  static int as_exempt(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"setpriv", fmt::format("--ruid={}", kExempt)});
    Child c(argv);
    int status = c.wait_exit();
    EXPECT_EQ(status, 0) << argv[2] << ": " << c.stderr_;
    return status;
  }
  void expect_denied(const std::string& what, int result, const std::string& path, const std::string& kind,
                     const std::string& rule = "svc") {
    int err = errno;
    EXPECT_EQ(result, -1) << what << " was allowed";
    EXPECT_EQ(err, EPERM) << what << ": " << strerror(err);
    auto a = wait_for([&](const Json& j) { return j["alert"] == "denied" && j["path"] == path && j["kind"] == kind; });
    ASSERT_TRUE(a) << "no 'denied' " << kind << " alert for " << path << "\n" << dump();
    EXPECT_EQ(a->at("rule"), rule) << *a;
    EXPECT_EQ(a->at("pid"), getpid()) << *a;
    EXPECT_EQ(a->at("uid"), 0) << *a;
    EXPECT_EQ(a->at("backend"), "bpf-lsm") << *a;
    EXPECT_TRUE(a->at("action").is_null()) << *a;
  }
};

TEST_F(GuardEnforceTest, RootIsDeniedViolatingOperationsOnlyAndEachDenialIsReported) {
  std::string owned = make_file(tree_ + "/owned", 0640, kService);
  std::string foreign = make_file(outside_ + "/foreign", 0640, 0);
  std::string conforming = make_file(outside_ + "/conforming", 0640, kService);
  start_with(enforce_config());
  ASSERT_NE(guard_->stderr_.find("(enforcing"), std::string::npos) << guard_->stderr_;

  expect_denied("chown 0:0", chown(owned.c_str(), 0, 0), owned, "chown");
  expect_denied("chown -1:0", chown(owned.c_str(), -1, 0), owned, "chown");
  expect_denied("chmod 0777", chmod(owned.c_str(), 0777), owned, "chmod");
  if (auto a = wait_alert("denied", owned)) {
    EXPECT_EQ(a->at("problems"), Json::array({"owner", "group"})) << *a;
  }
  std::string created = tree_ + "/created-by-root";
  expect_denied("create", open(created.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640), created, "create");
  if (auto a = wait_alert("denied", created)) {
    EXPECT_EQ(a->at("actual")["uid"], 0) << *a;
  }
  std::string dir = tree_ + "/dir-by-root";
  expect_denied("mkdir", mkdir(dir.c_str(), 0750), dir, "mkdir");
  std::string link = tree_ + "/symlink-by-root";
  expect_denied("symlink", symlink("owned", link.c_str()), link, "symlink");
  std::string moved = tree_ + "/moved-in";
  expect_denied("rename in", rename(foreign.c_str(), moved.c_str()), moved, "rename");
  std::string hard = tree_ + "/hardlink-in";
  expect_denied("link in", ::link(foreign.c_str(), hard.c_str()), hard, "link");

  struct stat st = stat_of(owned);
  EXPECT_EQ(st.st_uid, kService);
  EXPECT_EQ(st.st_gid, kService);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  for (const auto& p : {created, dir, link, moved, hard}) EXPECT_NE(access(p.c_str(), F_OK), 0) << p << " exists";
  EXPECT_EQ(access(foreign.c_str(), F_OK), 0);

  // What keeps the invariant is allowed, root or not.
  EXPECT_EQ(chown(owned.c_str(), kService, kService), 0) << strerror(errno);
  EXPECT_EQ(chmod(owned.c_str(), 0700), 0) << strerror(errno);
  EXPECT_EQ(rename(conforming.c_str(), (tree_ + "/conforming").c_str()), 0) << strerror(errno);
  // Outside the tree nothing is denied.
  EXPECT_EQ(chmod(foreign.c_str(), 0777), 0) << strerror(errno);
  EXPECT_EQ(chown(foreign.c_str(), 123, 123), 0) << strerror(errno);
  std::string out_file = outside_ + "/new";
  int fd = open(out_file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
  EXPECT_GE(fd, 0) << strerror(errno);
  close(fd);
  EXPECT_EQ(mkdir((outside_ + "/newdir").c_str(), 0777), 0) << strerror(errno);

  // The service user's own work in the tree.
  Child svc({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c",
             fmt::format("umask 027; mkdir {0}/d && echo x > {0}/d/f && chmod 0700 {0}/d/f && mv {0}/d/f {0}/d/g "
                         "&& ln -s g {0}/d/l && ln {0}/d/g {0}/d/h && rm {0}/d/h",
                         tree_)});
  EXPECT_EQ(svc.wait_exit(), 0) << svc.stderr_;
  // The service user cannot give its files away or open them up either.
  Child svc_bad({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "chmod", "0777", tree_ + "/d/g"});
  EXPECT_NE(svc_bad.wait_exit(), 0);
  EXPECT_NE(svc_bad.stderr_.find("Operation not permitted"), std::string::npos) << svc_bad.stderr_;
  wait_alert("denied", tree_ + "/d/g");

  // The exempt administrator (real uid listed, effective uid root) may do anything.
  std::string by_admin = tree_ + "/by-admin";
  as_exempt({"touch", by_admin});
  as_exempt({"chown", "0:0", tree_ + "/conforming"});
  as_exempt({"chmod", "0777", tree_ + "/conforming"});
  EXPECT_EQ(stat_of(by_admin).st_uid, 0u);
  EXPECT_EQ(stat_of(tree_ + "/conforming").st_mode & 07777, 0777u);

  // A last denial marks the point by which every earlier event was read.
  std::string marker = tree_ + "/marker";
  expect_denied("marker", open(marker.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640), marker, "create");
  stop();
  size_t denied = 0;
  for (const auto& a : alerts_) {
    EXPECT_NE(a["alert"], "violation") << "exempt and conforming work raised an alert: " << a;
    denied += a["alert"] == "denied";
  }
  EXPECT_EQ(denied, 10u) << dump();

  // Guard stopped: the programs are gone, nothing is denied any more.
  EXPECT_EQ(chown(owned.c_str(), 0, 0), 0) << strerror(errno);
  EXPECT_EQ(chmod(owned.c_str(), 0777), 0) << strerror(errno);
  fd = open(created.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
  EXPECT_GE(fd, 0) << strerror(errno);
  close(fd);
}

// Nested trees: the kernel takes the innermost rule, like the alerts do. The tree is
// the service user's (enforced); inside it, `root-area` belongs to root (enforced) and
// `root-area/logs` to the service user again, alert-only.
TEST_F(GuardEnforceTest, TheInnermostRuleDecides) {
  std::string inner = tree_ + "/root-area", logs = inner + "/logs";
  ASSERT_EQ(mkdir(inner.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(logs.c_str(), 0750), 0);
  ASSERT_EQ(chown(logs.c_str(), kService, kService), 0);
  std::string file = base_ + "/nested.toml";
  std::ofstream(file) << fmt::format(
      "[[guard]]\nname = \"svc\"\npath = \"{0}\"\nowner = {1}\ngroup = {1}\nmode_max = \"0750\"\nenforce = true\n"
      "[[guard]]\nname = \"root-area\"\npath = \"{2}\"\nowner = 0\ngroup = 0\nmode_max = \"0755\"\nenforce = true\n"
      "[[guard]]\nname = \"logs\"\npath = \"{3}\"\nowner = {1}\ngroup = {1}\nmode_max = \"0750\"\n",
      tree_, kService, inner, logs);
  start_with(file, {}, 3);

  // root-area: root's own files are fine, handing one to the service user is not.
  std::string by_root = inner + "/by-root";
  int fd = open(by_root.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  EXPECT_GE(fd, 0) << strerror(errno);
  close(fd);
  expect_denied("chown to the service user", chown(by_root.c_str(), kService, kService), by_root, "chown",
                "root-area");
  // The service user's tree around it: root's create is denied.
  std::string outer = tree_ + "/by-root";
  expect_denied("create in the outer tree", open(outer.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644), outer,
                "create");
  // logs: alert-only, so root's create happens and is alerted after the fact.
  std::string in_logs = logs + "/by-root";
  fd = open(in_logs.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
  EXPECT_GE(fd, 0) << "an alert-only inner tree denied: " << strerror(errno);
  close(fd);
  if (auto a = wait_alert("violation", in_logs)) {
    EXPECT_EQ(a->at("rule"), "logs") << *a;
  }
  stop();
}

}  // namespace
