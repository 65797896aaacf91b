// `fstrail query` end to end on an SQLite file filled through the store (no root, no server).
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/clock.h"
#include "store/store.h"
#include "store/test_events.h"
#include "support/temp_dir.h"

namespace fstrail::store {
namespace {

std::string run(const std::string& args, int* status, const std::string& cwd = ".") {
  std::string cmd = "cd " + cwd + " && " + std::string(FSTRAIL_BINARY) + " " + args + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = WEXITSTATUS(::pclose(p));
  return out;
}

class QueryCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = "sqlite://" + dir_.path() + "/events.db";
    auto store = open_store(db_);
    ASSERT_TRUE(store.ok());
    now_ = realtime_now_ns();
    rows_ = fixtures::every_kind_events("host-a", now_ - 600LL * 1'000'000'000);
    auto old = fixtures::every_kind_events("host-b", now_ - 7200LL * 1'000'000'000);
    rows_.insert(rows_.end(), old.begin(), old.end());
    ASSERT_FALSE((*store)->insert(rows_));
  }

  testing::TempDir dir_{"query"};
  std::string db_;
  int64_t now_ = 0;
  std::vector<StoredEvent> rows_;
};

TEST_F(QueryCommandTest, JsonLinesAreTheWatchObjectPlusHostAndId) {
  int status = 0;
  std::string out = run("query --db " + db_ + " --path /srv/app/ --since 1h --json", &status);
  ASSERT_EQ(status, 0) << out;
  std::istringstream lines(out);
  std::string line;
  size_t n = 0;
  bool saw_b64 = false;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["host"], "host-a");
    EXPECT_TRUE(j["event_id"].is_number_integer());
    EXPECT_TRUE(j.contains("kind") && j.contains("time") && j.contains("path"));
    saw_b64 |= j.contains("path_b64");
    ++n;
  }
  size_t expected = 0;
  for (const auto& r : rows_)
    if (r.host == "host-a" && (r.event.path.rfind("/srv/app/", 0) == 0 ||
                               (r.event.old_path && r.event.old_path->rfind("/srv/app/", 0) == 0)))
      ++expected;
  EXPECT_EQ(n, expected);
  EXPECT_TRUE(saw_b64) << "invalid UTF-8 paths carry path_b64";
}

TEST_F(QueryCommandTest, TableHasAHeaderAndOneAlignedLinePerEvent) {
  int status = 0;
  std::string out = run("query --db " + db_ + " --path /srv/app/100%_done --kind chmod,chown", &status);
  ASSERT_EQ(status, 0) << out;
  std::istringstream lines(out);
  std::string header, line;
  std::getline(lines, header);
  EXPECT_EQ(header.rfind("TIME (UTC)", 0), 0u) << header;
  size_t path_col = header.find("PATH");
  size_t n = 0;
  while (std::getline(lines, line)) {
    EXPECT_EQ(line.find("/srv/app/100%_done"), path_col) << out;
    ++n;
  }
  EXPECT_EQ(n, 4u) << out;  // chmod and chown, on two hosts
}

TEST_F(QueryCommandTest, LastGivesOneEventPerPathAndBadArgumentsAreUsageErrors) {
  int status = 0;
  std::string out = run("query --db " + db_ + " --host host-b --last --json", &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(static_cast<size_t>(std::count(out.begin(), out.end(), '\n')), 14u);  // 14 distinct paths
  run("query --db " + db_ + " --since yesterday", &status);
  EXPECT_EQ(status, 2);
  run("query --db " + db_ + " --kind nosuchkind", &status);
  EXPECT_EQ(status, 2);
  for (const char* limit : {"-3", "0", "ten"}) {
    out = run("query --db " + db_ + " --limit " + limit, &status);
    EXPECT_EQ(status, 2) << limit;
    EXPECT_NE(out.find("is not a number of events"), std::string::npos) << out;
  }
  out = run("query --db " + db_ + " --kind ''", &status);
  EXPECT_EQ(status, 2) << "an empty --kind returned everything";
  EXPECT_NE(out.find("--kind: names no event kind"), std::string::npos) << out;
  out = run("query --db postgress://user:secret@db/fstrail", &status);
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("unknown database scheme"), std::string::npos) << out;
  EXPECT_EQ(out.find("secret"), std::string::npos) << out;
}

// A relative --path once returned 0 rows silently: it is taken from the current directory.
TEST_F(QueryCommandTest, RelativePathIsTakenFromTheCurrentDirectory) {
  int status = 0;
  std::string absolute = run("query --db " + db_ + " --json --path /srv/app/", &status);
  ASSERT_EQ(status, 0) << absolute;
  ASSERT_GT(std::count(absolute.begin(), absolute.end(), '\n'), 10) << absolute;
  for (const char* rel : {"srv/app/", "./srv/../srv/app/"}) {
    std::string relative = run("query --db " + db_ + " --json --path " + rel, &status, "/");
    EXPECT_EQ(status, 0) << relative;
    EXPECT_EQ(relative, absolute) << rel;
  }
  std::string cwd = std::filesystem::current_path().string();
  EXPECT_EQ(cli::absolute_query_path("a/b").value(), cwd + "/a/b");
  EXPECT_EQ(cli::absolute_query_path("a/../b/").value(), cwd + "/b/");
  EXPECT_EQ(cli::absolute_query_path("/srv/app/").value(), "/srv/app/");
  std::string help = run("query --help", &status);
  EXPECT_NE(help.find("relative path is taken from the"), std::string::npos) << help;
}

}  // namespace
}  // namespace fstrail::store
