#include <gtest/gtest.h>

#include "agent/config.h"
#include "support/temp_dir.h"

namespace fstrail::agent {
namespace {

TEST(AgentConfig, ParsesTheWholeFile) {
  auto c = parse_agent_config(R"(
[agent]
backend = "fanotify"
db = "sqlite:///var/lib/fstrail/events.db"
password_file = "/etc/fstrail/db-password"
spool = "/var/lib/fstrail/spool"
retention = "90d"
log = "/var/log/fstrail.log"

[[watch]]
path = "/etc/"
exclude = ["*.swp"]
events = ["create", "modify", "delete", "rename", "chmod", "chown"]

[[watch]]
path = "/srv"

[[guard]]
name = "app"
path = "/srv/app"
owner = 0

[metrics]
listen = "[::1]:9100"
)",
                              "a.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->backend, "fanotify");
  EXPECT_EQ(c->db, "sqlite:///var/lib/fstrail/events.db");
  EXPECT_EQ(c->password_file, "/etc/fstrail/db-password");
  EXPECT_EQ(c->retention_ns, 90 * 86'400'000'000'000LL);
  EXPECT_EQ(c->log, "/var/log/fstrail.log");
  ASSERT_EQ(c->watches.size(), 2u);
  EXPECT_EQ(c->watches[0].path, "/etc");
  EXPECT_EQ(c->watches[0].exclude, std::vector<std::string>{"*.swp"});
  EXPECT_TRUE(c->watches[0].kinds.test(static_cast<size_t>(EventKind::kChown)));
  EXPECT_FALSE(c->watches[0].kinds.test(static_cast<size_t>(EventKind::kMkdir)));
  EXPECT_EQ(c->watches[0].line, 10);
  ASSERT_EQ(c->guard.rules.size(), 1u);
  EXPECT_EQ(c->metrics_listen, "[::1]:9100");
  EXPECT_EQ(watched_roots(*c), (std::vector<std::string>{"/etc", "/srv", "/srv/app"}));
}

TEST(AgentConfig, Defaults) {
  auto c = parse_agent_config("[[watch]]\npath = \"/tmp\"\n", "d.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->backend, "auto");
  EXPECT_EQ(c->log, "journal");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9764");
  EXPECT_FALSE(c->retention_ns);
  EXPECT_FALSE(c->db.empty());
  EXPECT_FALSE(c->spool.empty());
  EXPECT_TRUE(c->guard.rules.empty());
}

void expect_error(const std::string& text, const std::string& needle) {
  auto c = parse_agent_config(text, "bad.toml");
  ASSERT_FALSE(c.ok()) << "accepted: " << text;
  EXPECT_NE(c.error().message.find(needle), std::string::npos) << c.error().message;
}

TEST(AgentConfig, BadValuesNameTheLine) {
  const std::string watch = "[[watch]]\npath = \"/tmp\"\n";
  expect_error("[agent]\nbackend = \"auto\"\ncolour = 1\n" + watch,
               "bad.toml:3: unknown key 'colour' in [agent]");
  expect_error("[agent]\nbackend = \"kqueue\"\n" + watch, "bad.toml:2: unknown backend 'kqueue'");
  expect_error("[agent]\nretention = \"90 days\"\n" + watch, "bad.toml:2: retention: bad duration");
  expect_error("[agent]\nretention = \"2h\"\n" + watch, "bad.toml:2: retention is at least 1d");
  expect_error("[agent]\nlog = \"syslog\"\n" + watch, "bad.toml:2: log is \"journal\"");
  expect_error("[agent]\ndb = \"mysql://x\"\n" + watch, "bad.toml:2: ");
  expect_error("[agent]\ndb = \"postgresql://u:secret@h/db\"\n" + watch, "bad.toml:2: db holds a password");
  expect_error("[agent]\nspool = \"spool\"\n" + watch, "bad.toml:2: spool must be an absolute path");
  expect_error("[[watch]]\npath = \"tmp\"\n", "bad.toml:2: path must be an absolute path");
  expect_error("[[watch]]\nexclude = [\"x\"]\n", "bad.toml:1: [[watch]] needs 'path'");
  expect_error("[[watch]]\npath = \"/tmp\"\nevents = [\"create\", \"explode\"]\n", "bad.toml:3: events: ");
  expect_error("[[watch]]\npath = \"/tmp\"\nevents = []\n", "bad.toml:3: events is not empty");
  expect_error("[[watch]]\npath = \"/tmp\"\nrecursive = true\n",
               "bad.toml:3: unknown key 'recursive' in [[watch]]");
  expect_error(watch + "[[watch]]\npath = \"/tmp/\"\n",
               "bad.toml:3: path /tmp is already watched by the [[watch]] at line 1");
  expect_error(watch + "[metrics]\nlisten = \"9764\"\n", "bad.toml:4: listen \"9764\" is not HOST:PORT");
  expect_error(watch + "[metrics]\nlisten = \"localhost:99999\"\n", "bad.toml:4: listen");
  expect_error(watch + "[metrics]\nport = 1\n", "bad.toml:4: unknown key 'port' in [metrics]");
  expect_error(watch + "[watchers]\n", "bad.toml:3: unknown top-level key 'watchers'");
  expect_error(watch + "[[guard]]\nname = \"x\"\n", "bad.toml:3: [[guard]] needs 'path'");
  expect_error("[agent]\nbackend = \"auto\"\n", "bad.toml: nothing to do");
  expect_error("[agent\n", "bad.toml:1: ");
}

TEST(AgentConfig, GuardReadsOnlyItsBlocksOfTheSameFile) {
  const std::string text =
      "[agent]\nretention = \"30d\"\n[[watch]]\npath = \"/etc\"\n[metrics]\nlisten = "
      "\"127.0.0.1:1\"\n[[guard]]\nname = \"g\"\npath = \"/srv/g\"\nowner = 0\n";
  auto g = guard::parse_config(text, "f.toml");
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->rules.size(), 1u);
  auto none = guard::parse_config("[[watch]]\npath = \"/etc\"\n", "f.toml");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "f.toml: no [[guard]] block");
}

TEST(AgentConfig, PathsAreCheckedAgainstTheFileSystem) {
  testing::TempDir dir("agentcfg");
  auto ok = parse_agent_config("[[watch]]\npath = \"" + dir.path() + "\"\n", "p.toml");
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(check_agent_paths(*ok).ok());
  auto missing = parse_agent_config("[[watch]]\npath = \"" + dir.path() + "/nope\"\n", "p.toml");
  ASSERT_TRUE(missing.ok());
  Status s = check_agent_paths(*missing);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("p.toml:1: watch path"), std::string::npos) << s.error().message;
}

TEST(AgentConfig, RestartOnlyChangesAreNamed) {
  auto a = parse_agent_config("[agent]\ndb = \"/a.db\"\n[[watch]]\npath = \"/tmp\"\n", "r.toml");
  auto b = parse_agent_config("[agent]\ndb = \"/b.db\"\n[[watch]]\npath = \"/var\"\n", "r.toml");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(restart_only_changes(*a, *b), "db");
  EXPECT_EQ(restart_only_changes(*a, *a), "");
}

}  // namespace
}  // namespace fstrail::agent
