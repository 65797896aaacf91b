#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/bpf/common/subtree_backend.h"
#include "guard/config.h"
#include "guard/engine.h"
#include "guard/policy.h"
#include "guard/remediate.h"
#include "support/temp_dir.h"

namespace fstrail::guard {
namespace {

namespace fs = std::filesystem;

TEST(GuardConfig, ParsesRules) {
  auto c = parse_config(R"(
[[guard]]
name = "app"
path = "/srv/app/"
owner = "root"
group = 0
mode_max = "0750"
remediate = true
exempt_users = ["root", 1000]

[[guard]]
name = "data"
path = "/srv/app/data"
owner = 1001
group = "1001"
)", "test.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->rules.size(), 2u);
  const GuardRule& app = c->rules[0];
  EXPECT_EQ(app.name, "app");
  EXPECT_EQ(app.path, "/srv/app");
  EXPECT_EQ(app.owner, 0u);
  EXPECT_EQ(app.mode_max, 0750u);
  EXPECT_TRUE(app.remediate);
  EXPECT_FALSE(app.enforce);
  EXPECT_EQ(app.exempt_users, (std::vector<uid_t>{0, 1000}));
  EXPECT_EQ(c->rules[1].group, 1001u);
  EXPECT_EQ(c->rules[1].mode_max, 07777u);
}

void expect_error(const std::string& text, const std::string& needle) {
  auto c = parse_config(text, "bad.toml");
  ASSERT_FALSE(c.ok()) << "accepted: " << text;
  EXPECT_NE(c.error().message.find(needle), std::string::npos) << c.error().message;
}

TEST(GuardConfig, RejectsBadFilesWithFileLineAndWhat) {
  expect_error("[[guard]]\nname = \"a\"\npath = \"/x\"\nowner = 0\nmode_max = \"0999\"\n", "bad.toml:5: mode_max");
  expect_error("[[guard]]\nname = \"a\"\npath = \"relative\"\nowner = 0\n", "bad.toml:3: path must be an absolute");
  expect_error("[[guard]]\nname = \"a\"\npath = \"/x\"\nowner = \"no-such-user-q\"\n", "unknown user 'no-such-user-q'");
  expect_error("[[guard]]\nname = \"a\"\npath = \"/x\"\n", "bad.toml:1: [[guard]] needs 'owner'");
  expect_error("[[guard]]\nname = \"a\"\npath = \"/x\"\nowner = 0\nremedy = true\n", "bad.toml:5: unknown key 'remedy'");
  expect_error("[[guard]]\nname = \"a\"\npath = \"/x\"\nowner = 0\n[[guard]]\nname = \"a\"\npath = \"/y\"\nowner = 0\n",
               "already defined");
  expect_error("[[guard]]\nname = \"a\"\npath = \"/x\nowner = 0\n", "bad.toml:3");
  expect_error("", "no [[guard]] block");
  expect_error("[[guard]]\nname = \"a\"\npath = \"/x\"\nowner = 0\nenforce = \"yes\"\n", "enforce must be true or false");
  expect_error("[[guard]]\nname = \"a\"\nowner = 0\npath = \"/\"\n", "bad.toml:4: path = \"/\" is refused");
  expect_error("[[guard]]\nname = \"a\"\nowner = 0\npath = \"//\"\n", "bad.toml:4: path = \"/\" is refused");
}

// /dev/zero once hung and grew to 470 MB; a directory said "no [[guard]] block".
TEST(GuardConfig, LoadTakesOnlyARegularFileOfAtMostOneMiB) {
  auto start = std::chrono::steady_clock::now();
  auto c = load_config("/dev/zero");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "/dev/zero is not a regular file; --config names the TOML configuration file");
  testing::TempDir dir("guard-config");
  c = load_config(dir.path());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find(dir.path() + " is a directory"), std::string::npos) << c.error().message;
  std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  c = load_config(fifo);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("is not a regular file"), std::string::npos) << c.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));

  std::string big = dir.path() + "/big.toml";
  std::ofstream(big) << "# " << std::string(kMaxConfigBytes, 'x') << "\n";
  c = load_config(big);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("a configuration is at most 1048576 bytes (1 MiB)"), std::string::npos)
      << c.error().message;
  std::string odd = dir.path() + "/two\nlines.toml";
  std::ofstream(odd) << "[[guard]]\nname = 1\n";
  c = load_config(odd);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message.find('\n'), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("two\\nlines.toml:1:"), std::string::npos) << c.error().message;
}

TEST(GuardConfig, MissingFileSaysWhatToDo) {
  auto c = load_config("/nonexistent/fstrail.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("--config"), std::string::npos);
}

GuardRule rule(std::string name, std::string path, uid_t owner, mode_t mode_max = 0750) {
  GuardRule r;
  r.name = std::move(name);
  r.path = std::move(path);
  r.owner = owner;
  r.group = getgid();
  r.mode_max = mode_max;
  return r;
}

TEST(GuardPolicy, InnermostRuleWinsOnComponentBoundaries) {
  Policy p({rule("outer", "/srv/app", 1), rule("inner", "/srv/app/data", 2)});
  EXPECT_EQ(p.rule_for("/srv/app/x")->name, "outer");
  EXPECT_EQ(p.rule_for("/srv/app")->name, "outer");
  EXPECT_EQ(p.rule_for("/srv/app/data/y")->name, "inner");
  EXPECT_EQ(p.rule_for("/srv/app/database")->name, "outer");
  EXPECT_EQ(p.rule_for("/srv/application"), nullptr);
  EXPECT_EQ(p.rule_for("/etc/passwd"), nullptr);
}

TEST(GuardPolicy, DirectoriesGetSearchBitWhereReadable) {
  GuardRule r = rule("a", "/a", 0, 0640);
  EXPECT_EQ(allowed_mode(r, false), 0640u);
  EXPECT_EQ(allowed_mode(r, true), 0750u);
  Policy p({r});
  struct stat st{};
  st.st_uid = 0;
  st.st_gid = r.group;
  st.st_mode = S_IFDIR | 0750;
  EXPECT_FALSE(p.check(p.rules()[0], "/a/d", st).has_value());
  st.st_mode = S_IFREG | 0750;
  auto v = p.check(p.rules()[0], "/a/f", st);
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->bad_mode);
  EXPECT_FALSE(v->bad_owner);
  st.st_mode = S_IFLNK | 0777;  // a link's own mode means nothing
  st.st_uid = 5;
  v = p.check(p.rules()[0], "/a/l", st);
  ASSERT_TRUE(v.has_value());
  EXPECT_TRUE(v->bad_owner);
  EXPECT_FALSE(v->bad_mode);
}

class TempTree : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(base / "tree" / "sub");
    fs::create_directories(base / "outside");
    tree = (base / "tree").string();
    chmod(tree.c_str(), 0750);
    chmod((base / "tree" / "sub").c_str(), 0750);
  }
  std::string make_file(const fs::path& p, mode_t mode) {
    std::ofstream(p) << "x";
    chmod(p.c_str(), mode);
    return p.string();
  }
  static mode_t mode_of(const fs::path& p) {
    struct stat st{};
    lstat(p.c_str(), &st);
    return st.st_mode & 07777;
  }
  Violation violation_for(const Policy& p, const std::string& path) {
    struct stat st{};
    EXPECT_EQ(lstat(path.c_str(), &st), 0);
    auto v = p.check(p.rules()[0], path, st);
    EXPECT_TRUE(v.has_value());
    return v.value_or(Violation{});
  }
  testing::TempDir dir_{"guard-unit"};
  const fs::path base = dir_.path();
  std::string tree;
};

TEST_F(TempTree, RemediationRestoresMode) {
  Policy p({rule("t", tree, getuid())});
  std::string f = make_file(base / "tree" / "sub" / "f", 0777);
  Remediator r(false);
  Remediation fix = r.fix(violation_for(p, f));
  EXPECT_EQ(fix.outcome, Remediation::Outcome::kFixed) << fix.detail;
  EXPECT_EQ(mode_of(f), 0750u);
}

TEST_F(TempTree, DryRunChangesNothing) {
  Policy p({rule("t", tree, getuid())});
  std::string f = make_file(base / "tree" / "f", 0666);
  Remediation fix = Remediator(true).fix(violation_for(p, f));
  EXPECT_EQ(fix.outcome, Remediation::Outcome::kWouldFix);
  EXPECT_NE(fix.detail.find("chmod 0640"), std::string::npos) << fix.detail;
  EXPECT_EQ(mode_of(f), 0666u);
}

TEST_F(TempTree, NeverActsThroughSymlinks) {
  Policy p({rule("t", tree, getuid())});
  std::string target = make_file(base / "outside" / "shadow", 0666);
  // A link as the object itself: its target must never change.
  fs::create_symlink(target, base / "tree" / "link");
  Violation v = violation_for(p, target);  // pretend the checker saw the target's values
  v.path = (base / "tree" / "link").string();
  Remediation fix = Remediator(false).fix(v);
  EXPECT_NE(fix.outcome, Remediation::Outcome::kFixed);
  EXPECT_EQ(mode_of(target), 0666u);
  // A link as a directory on the way: tree/dirlink -> outside.
  fs::create_directory_symlink(base / "outside", base / "tree" / "dirlink");
  v.path = (base / "tree" / "dirlink" / "shadow").string();
  fix = Remediator(false).fix(v);
  EXPECT_EQ(fix.outcome, Remediation::Outcome::kSkipped) << fix.detail;
  EXPECT_EQ(mode_of(target), 0666u);
}

TEST_F(TempTree, NeverActsOnASwappedFile) {
  Policy p({rule("t", tree, getuid())});
  std::string f = make_file(base / "tree" / "f", 0777);
  Violation v = violation_for(p, f);
  fs::rename(f, base / "outside" / "old");  // keeps the old inode alive, so the new one differs
  make_file(f, 0777);
  Remediation fix = Remediator(false).fix(v);
  EXPECT_EQ(fix.outcome, Remediation::Outcome::kSkipped);
  EXPECT_NE(fix.detail.find("replaced"), std::string::npos);
  EXPECT_EQ(mode_of(f), 0777u);
}

TEST_F(TempTree, RateLimited) {
  Remediator r(false, 5);
  int tokens = 0;
  for (int i = 0; i < 20; ++i) tokens += r.take_token();
  EXPECT_GE(tokens, 5);
  EXPECT_LE(tokens, 7);
}

// A file linked into the tree from elsewhere (by the service user, or by root by mistake)
// is the same inode as the outside name: never changed, and the reason says why.
TEST_F(TempTree, NeverActsOnAHardLinkedFile) {
  Policy p({rule("t", tree, getuid())});
  std::string outside = make_file(base / "outside" / "shared666", 0666);
  fs::create_hard_link(outside, base / "tree" / "mine");
  Violation v = violation_for(p, (base / "tree" / "mine").string());
  for (bool dry_run : {true, false}) {
    Remediation fix = Remediator(dry_run).fix(v);
    EXPECT_EQ(fix.outcome, Remediation::Outcome::kSkipped) << fix.detail;
    EXPECT_EQ(fix.detail, "not remediated: 2 hard links");
    EXPECT_EQ(fix.reason, "hard links");
    EXPECT_EQ(mode_of(outside), 0666u);
  }
  // Once the outside name is gone, the file is the tree's alone.
  fs::remove(outside);
  EXPECT_EQ(Remediator(false).fix(v).outcome, Remediation::Outcome::kFixed);
  EXPECT_EQ(mode_of(base / "tree" / "mine"), 0640u);
  // Directories cannot be hard-linked; their link count is their subdirectories.
  fs::create_directories(base / "tree" / "d" / "e");
  chmod((base / "tree" / "d").c_str(), 0777);
  EXPECT_EQ(Remediator(false).fix(violation_for(p, (base / "tree" / "d").string())).outcome,
            Remediation::Outcome::kFixed);
}

// The guarded root itself is reached without a symbolic link, even one swapped in
// after the configuration was checked.
TEST_F(TempTree, NeverReachesTheRootThroughASymlink) {
  std::string f = make_file(base / "outside" / "f", 0777);
  fs::create_directory_symlink(base / "outside", base / "link");
  Policy p({rule("t", (base / "link").string(), getuid())});
  Violation v = violation_for(p, (base / "link" / "f").string());
  Remediation fix = Remediator(false).fix(v);
  EXPECT_EQ(fix.outcome, Remediation::Outcome::kFailed) << fix.detail;
  EXPECT_EQ(fix.reason, "guarded root unreachable");
  EXPECT_EQ(mode_of(f), 0777u);
}

TEST_F(TempTree, GuardedPathsAreCheckedAtLoad) {
  fs::create_directory_symlink(base / "tree", base / "link");
  auto c = parse_config(fmt::format("[[guard]]\nname = \"a\"\nowner = 0\npath = \"{}/sub\"\n", (base / "link").string()),
                        "g.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  Status s = check_paths(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("g.toml:4: guard 'a': path " + (base / "link").string() +
                                   "/sub goes through a symbolic link"),
            std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("write the real path instead: path = \"" + tree + "/sub\""), std::string::npos)
      << s.error().message;

  c->rules[0].path = tree + "/sub";
  EXPECT_TRUE(check_paths(*c).ok());
  c->rules[0].path = make_file(base / "tree" / "file", 0640);
  s = check_paths(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("is not a directory"), std::string::npos) << s.error().message;
  c->rules[0].path = tree + "/missing\nline";
  s = check_paths(*c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("missing\\nline: No such file"), std::string::npos) << s.error().message;
  EXPECT_EQ(s.error().message.find('\n'), std::string::npos) << "one line";
}

class Captured final : public AlertOutput {
 public:
  void alert(const Alert& a) override { alerts.push_back(a); }
  void flush() override {}
  std::vector<Alert> alerts;
};

TEST_F(TempTree, EngineScansThenAlertsWithActorAndSummarizesBursts) {
  Policy p({rule("t", tree, getuid())});
  make_file(base / "tree" / "existing", 0777);
  Captured out;
  BurstAggregator::Clock::time_point now{};
  GuardEngine engine(p, out, nullptr, {}, [&] { return now; });
  EXPECT_EQ(engine.scan_existing(), 1u);
  ASSERT_EQ(out.alerts.size(), 1u);
  EXPECT_EQ(out.alerts[0].type, Alert::Type::kExisting);

  for (int i = 0; i < 50; ++i) {
    Event e;
    e.kind = EventKind::kCreate;
    e.path = make_file(base / "tree" / ("burst" + std::to_string(i)), 0777);
    e.pid = 4242;
    e.uid = 0;
    e.loginuid = 1000;
    e.comm = "cp";
    engine.write(e);
  }
  Event outside;
  outside.kind = EventKind::kChmod;
  outside.path = make_file(base / "outside" / "x", 0777);
  engine.write(outside);
  engine.flush();
  ASSERT_EQ(out.alerts.size(), 4u);  // existing + 3 individual, burst still open
  now += std::chrono::seconds(2);
  engine.flush();
  ASSERT_EQ(out.alerts.size(), 5u);
  const Alert& summary = out.alerts.back();
  EXPECT_EQ(summary.type, Alert::Type::kSummary);
  EXPECT_EQ(summary.count, 50u);
  EXPECT_EQ(summary.first_paths.size(), 10u);
  auto j = nlohmann::json::parse(alert_to_json(summary));
  EXPECT_EQ(j["alert"], "summary");
  EXPECT_EQ(j["count"], 50);
  EXPECT_EQ(j["pid"], 4242);
  EXPECT_EQ(j["loginuid"], 1000);
  EXPECT_EQ(j["actual"]["mode"], "0777");
  EXPECT_EQ(j["expected"]["mode_max"], "0750");
  EXPECT_EQ(j["problems"], nlohmann::json::array({"mode"}));
  EXPECT_EQ(engine.counts().violations, 51u);
}

TEST_F(TempTree, ExemptUsersAreNotAlerted) {
  GuardRule r = rule("t", tree, getuid());
  r.exempt_users = {1234};
  Policy p({r});
  Captured out;
  GuardEngine engine(p, out, nullptr);
  Event e;
  e.kind = EventKind::kChmod;
  e.path = make_file(base / "tree" / "f", 0777);
  e.uid = 0;
  e.loginuid = 1234;  // root via sudo, by an exempt human
  engine.write(e);
  EXPECT_TRUE(out.alerts.empty());
  EXPECT_EQ(engine.counts().exempt, 1u);
}

// A burst longer than the rate: what cannot be fixed at once waits in a queue that flush()
// works off at the rate, each object checked again when its turn comes; every violation
// ends counted as exactly one of fixed, not fixed (with its reason), moot or queued.
TEST_F(TempTree, RemediationWorksOffABurstAtTheRateAndCountsEveryOutcome) {
  constexpr int kFiles = 60, kRate = 20;
  GuardRule r = rule("t", tree, getuid());
  r.remediate = true;
  Policy p({r});
  Captured out;
  Remediator remediator(false, kRate);
  GuardEngine engine(p, out, &remediator);
  std::string outside = make_file(base / "outside" / "shared", 0666);
  fs::create_hard_link(outside, base / "tree" / "linked");
  std::vector<std::string> files;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kFiles; ++i) {
    Event e;
    e.kind = EventKind::kCreate;
    e.path = make_file(base / "tree" / ("f" + std::to_string(i)), 0777);
    e.pid = 1000 + i;  // one actor each: every alert is shown, with its action
    files.push_back(e.path);
    engine.write(e);
  }
  Event e;
  e.kind = EventKind::kLink;
  e.path = (base / "tree" / "linked").string();
  e.pid = 4242;
  engine.write(e);
  ASSERT_EQ(out.alerts.size(), static_cast<size_t>(kFiles + 1));
  uint64_t fixed_at_once = 0;
  for (const Alert& a : out.alerts) fixed_at_once += a.action->outcome == Remediation::Outcome::kFixed;
  EXPECT_GE(fixed_at_once, static_cast<uint64_t>(kRate));  // the bucket starts full
  EXPECT_EQ(engine.counts().fixed, fixed_at_once);
  EXPECT_EQ(engine.counts().queued, kFiles + 1 - fixed_at_once);
  ASSERT_EQ(out.alerts[kFiles - 2].action->outcome, Remediation::Outcome::kQueued);
  ASSERT_EQ(out.alerts[kFiles - 1].action->outcome, Remediation::Outcome::kQueued);
  EXPECT_NE(out.alerts[kFiles - 1].action->detail.find("at most 20 fixes a second"), std::string::npos);
  fs::remove(files[kFiles - 1]);  // gone before its turn
  chmod(files[kFiles - 2].c_str(), 0640);  // right again before its turn
  while (engine.counts().queued > 0 && std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    engine.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(took, static_cast<double>(kFiles + 1 - fixed_at_once) / kRate * 1.1 + 1.0);
  for (int i = 0; i < kFiles - 2; ++i) EXPECT_EQ(mode_of(files[i]), 0750u) << files[i];
  EXPECT_EQ(mode_of(outside), 0666u);
  engine.finish();
  const EngineCounts& c = engine.counts();
  EXPECT_EQ(c.violations, static_cast<uint64_t>(kFiles + 1));
  EXPECT_EQ(c.fixed, static_cast<uint64_t>(kFiles - 2));
  EXPECT_EQ(c.not_fixed, 1u);
  EXPECT_EQ(c.moot, 2u);
  EXPECT_EQ(c.queued, 0u);
  EXPECT_EQ(c.remediation_failures, 0u);
  EXPECT_EQ(c.not_fixed_reasons, (std::map<std::string, uint64_t>{{"hard links", 1}}));
  ASSERT_EQ(c.not_fixed_first.size(), 1u);
  EXPECT_EQ(c.not_fixed_first[0], e.path + ": not remediated: 2 hard links");
}

TEST_F(TempTree, WhatIsStillQueuedAtStopIsCountedNotFixed) {
  GuardRule r = rule("t", tree, getuid());
  r.remediate = true;
  Policy p({r});
  Captured out;
  Remediator remediator(false, 2);
  GuardEngine engine(p, out, &remediator);
  for (int i = 0; i < 5; ++i) {
    Event e;
    e.kind = EventKind::kCreate;
    e.path = make_file(base / "tree" / ("f" + std::to_string(i)), 0777);
    engine.write(e);
  }
  engine.finish();
  const EngineCounts& c = engine.counts();
  EXPECT_EQ(c.fixed + c.not_fixed, 5u);
  EXPECT_GE(c.not_fixed, 2u);
  EXPECT_EQ(c.not_fixed_reasons.at("guard stopped before its turn"), c.not_fixed);
  EXPECT_EQ(c.queued, 0u);
}

// A file whose state breaks the rule now, and an event that says its own change kept the
// rule: the state is then a later operation's, with its own event. Unless the event does
// not know what it changed (old values unknown: read after the fact, possibly several
// merged changes, the last of which broke the rule).
TEST_F(TempTree, OnlyAnEventThatKnowsWhatItChangedExcusesTheStateFound) {
  Policy p({rule("t", tree, getuid() + 1)});  // every file here has the wrong owner
  Captured out;
  GuardEngine engine(p, out, nullptr);
  Event chmod;
  chmod.kind = EventKind::kChmod;
  chmod.path = make_file(base / "tree" / "f", 0777);
  chmod.old_mode = S_IFREG | 0600;
  chmod.new_mode = S_IFREG | 0640;
  engine.write(chmod);
  Event chown;
  chown.kind = EventKind::kChown;
  chown.path = chmod.path;
  chown.old_uid = getuid();
  chown.new_uid = getuid() + 1;
  engine.write(chown);
  EXPECT_TRUE(out.alerts.empty());

  chmod.old_mode.reset();
  engine.write(chmod);
  ASSERT_EQ(out.alerts.size(), 1u);
  EXPECT_TRUE(out.alerts[0].violation.bad_mode);
  EXPECT_TRUE(out.alerts[0].violation.bad_owner);
  EXPECT_EQ(out.alerts[0].event->kind, EventKind::kChmod);

  chown.path = make_file(base / "tree" / "g", 0640);
  chown.old_uid.reset();
  engine.write(chown);
  ASSERT_EQ(out.alerts.size(), 2u);
  EXPECT_TRUE(out.alerts[1].violation.bad_owner);
  EXPECT_FALSE(out.alerts[1].violation.bad_mode);
  EXPECT_EQ(out.alerts[1].event->kind, EventKind::kChown);
}

// enforce = true: the rule as the bpf-lsm programs get it.
TEST(GuardEnforce, RuleBecomesTheKernelMapValue) {
  GuardRule r;
  r.name = "svc";
  r.path = "/srv/app";
  r.owner = 65534;
  r.group = 65533;
  r.mode_max = 0640;
  r.enforce = true;
  r.exempt_users = {0, 1000};
  GuardedTree tree = guarded_tree_of(r);
  EXPECT_EQ(tree.path, "/srv/app");
  EXPECT_EQ(tree.file_mode, 0640u);
  EXPECT_EQ(tree.dir_mode, 0750u);  // x where r
  auto k = bpf::kernel_guard_rule(tree);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->owner, 65534u);
  EXPECT_EQ(k->group, 65533u);
  EXPECT_EQ(k->file_mode, 0640u);
  EXPECT_EQ(k->dir_mode, 0750u);
  EXPECT_EQ(k->enforce, 1u);
  ASSERT_EQ(k->exempt_count, 2u);
  EXPECT_EQ(k->exempt[0], 0u);
  EXPECT_EQ(k->exempt[1], 1000u);
  EXPECT_EQ(k->exempt[2], 0u);

  r.enforce = false;  // an alert-only inner tree still goes to the map: it stops the walk
  EXPECT_EQ(bpf::kernel_guard_rule(guarded_tree_of(r))->enforce, 0u);

  tree.exempt_users.assign(9, 1);
  auto too_many = bpf::kernel_guard_rule(tree);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(too_many.error().message.find("at most 8"), std::string::npos) << too_many.error().message;
}

TEST(GuardEnforce, ConfigRejectsMoreExemptUsersThanTheKernelRuleHolds) {
  auto c = parse_config(R"([[guard]]
name = "x"
path = "/srv"
owner = 0
group = 0
enforce = true
exempt_users = [1, 2, 3, 4, 5, 6, 7, 8, 9]
)", "t.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("t.toml:7: with enforce = true, exempt_users holds at most 8"), std::string::npos)
      << c.error().message;
}

TEST(GuardEnforce, DeniedEventBecomesADeniedAlertWithTheAttemptedState) {
  GuardRule r;
  r.name = "svc";
  r.path = "/srv/app";
  r.owner = 65534;
  r.group = 65534;
  r.mode_max = 0750;
  Policy p({r});
  Captured out;
  GuardEngine engine(p, out, nullptr);

  Event chown;  // chown 0:-1 on a file owned by the service user
  chown.kind = EventKind::kChown;
  chown.path = "/srv/app/f";
  chown.denied = true;
  chown.error = EPERM;
  chown.pid = 77;
  chown.uid = 0;
  chown.old_uid = 65534;
  chown.old_gid = 65534;
  chown.old_mode = S_IFREG | 0640;
  chown.new_uid = 0;
  engine.write(chown);

  Event chmod;
  chmod.kind = EventKind::kChmod;
  chmod.path = "/srv/app/d";
  chmod.denied = true;
  chmod.error = EPERM;
  chmod.old_uid = 65534;
  chmod.old_gid = 65534;
  chmod.old_mode = S_IFDIR | 0750;
  chmod.new_mode = S_IFDIR | 0777;
  engine.write(chmod);

  Event outside = chmod;  // no rule: the kernel and the config disagree; nothing to say
  outside.path = "/srv/other";
  engine.write(outside);

  ASSERT_EQ(out.alerts.size(), 2u);
  auto j = nlohmann::json::parse(alert_to_json(out.alerts[0]));
  EXPECT_EQ(j["alert"], "denied");
  EXPECT_EQ(j["kind"], "chown");
  EXPECT_EQ(j["problems"], nlohmann::json::array({"owner"}));
  EXPECT_EQ(j["actual"]["uid"], 0);
  EXPECT_EQ(j["actual"]["gid"], 65534);
  EXPECT_EQ(j["pid"], 77);
  EXPECT_TRUE(j["action"].is_null());
  j = nlohmann::json::parse(alert_to_json(out.alerts[1]));
  EXPECT_EQ(j["alert"], "denied");
  EXPECT_EQ(j["problems"], nlohmann::json::array({"mode"}));
  EXPECT_EQ(j["actual"]["mode"], "0777");
  EXPECT_EQ(engine.counts().denied, 2u);
  EXPECT_EQ(engine.counts().violations, 0u) << "a denied operation changed nothing";
  EXPECT_NE(alert_to_text(out.alerts[1]).find("GUARD denied [svc] /srv/app/d"), std::string::npos)
      << alert_to_text(out.alerts[1]);
}

}  // namespace
}  // namespace fstrail::guard
