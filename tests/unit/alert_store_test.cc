// Alerts in SQLite (the PostgreSQL side: host/postgres_store_test.cc).
#include "store/alert_store.h"

#include <gtest/gtest.h>

#include "core/clock.h"
#include "support/temp_dir.h"

namespace fstrail::store {
namespace {

StoredAlert alert(int64_t time_ns, std::string path, std::string rule = "app", uint32_t uid = 1000) {
  StoredAlert a;
  a.time_ns = time_ns;
  a.host = "h1";
  a.rule = std::move(rule);
  a.type = "violation";
  a.kind = "chmod";
  a.path = std::move(path);
  a.uid = uid;
  a.loginuid = 4242;
  a.comm = "chmod";
  a.json = R"({"alert":"violation"})";
  return a;
}

TEST(AlertStore, StoresQueriesAndForgetsAlerts) {
  testing::TempDir dir("alerts");
  std::string url = "sqlite://" + dir.path() + "/events.db";
  auto store = open_alert_store(url);
  ASSERT_TRUE(store.ok()) << store.error().message;
  const int64_t now = realtime_now_ns(), day = 86'400'000'000'000LL;
  std::vector<StoredAlert> rows = {alert(now - 10 * day, "/srv/app/old"), alert(now - 2000, "/srv/app/a"),
                                   alert(now - 1000, "/srv/app/a", "app", 0),
                                   alert(now, "/srv/other/b", "other")};
  ASSERT_TRUE((*store)->insert(rows).ok());
  ASSERT_TRUE((*store)->insert(std::span(rows).subspan(1, 1)).ok());  // again: skipped, not doubled

  auto all = (*store)->query({});
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[0].json, R"({"alert":"violation"})");
  EXPECT_EQ((*all)[3].rule, "other");

  QuerySpec tree;
  tree.path = "/srv/app/";
  tree.since_ns = now - day;
  EXPECT_EQ((*store)->query(tree)->size(), 2u);
  QuerySpec by_user;
  by_user.uid = 0;
  EXPECT_EQ((*store)->query(by_user)->size(), 1u);
  by_user.uid = 4242;
  EXPECT_EQ((*store)->query(by_user)->size(), 0u);
  by_user.login_user = true;
  EXPECT_EQ((*store)->query(by_user)->size(), 4u);
  QuerySpec last;
  last.last_per_path = true;
  EXPECT_EQ((*store)->query(last)->size(), 3u);
  QuerySpec limit;
  limit.limit = 1;
  auto newest = (*store)->query(limit);
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].time_ns, now);
  QuerySpec kinds;
  kinds.kinds = KindSet{}.set(static_cast<size_t>(EventKind::kChown));
  EXPECT_EQ((*store)->query(kinds)->size(), 0u);

  ASSERT_TRUE((*store)->apply_retention(5 * day).ok());
  EXPECT_EQ((*store)->query({})->size(), 3u);
}

TEST(AlertStore, BothDialectsBindEveryFilter) {
  QuerySpec spec;
  spec.path = "/srv/";
  spec.uid = 1;
  spec.comm = "x";
  spec.host = "h";
  spec.limit = 5;
  auto lite = AlertStore::query_sql(SqlDialect::kSqlite, spec);
  auto pg = AlertStore::query_sql(SqlDialect::kPostgres, spec);
  EXPECT_EQ(lite.params.size(), 6u);
  EXPECT_NE(lite.sql.find("?6"), std::string::npos);
  EXPECT_NE(pg.sql.find("$2::bytea"), std::string::npos);
}

}  // namespace
}  // namespace fstrail::store
