// The PostgreSQL store against a real PostgreSQL 15 started here (label `host`).
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "core/clock.h"
#include "store/alert_store.h"
#include "store/postgres/postgres_store.h"
#include "store/record.h"
#include "store/recorder.h"
#include "store/spool/spool.h"
#include "store/store.h"
#include "store/pg_server.h"
#include "store/test_events.h"
#include "support/temp_dir.h"

namespace fstrail::store {
namespace {

using fixtures::every_kind_events;
using fixtures::expect_same_rows;
using fixtures::kBaseTimeNs;
using fixtures::PgServer;
using fixtures::synthetic_event;

using fixtures::g_server;
using fixtures::PgEnvironment;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(g_server, nullptr) << "PostgreSQL did not start (see the environment failure above)";
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    conninfo_ = g_server->create_database(name);
    auto store = open_store(conninfo_);
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(*store);
  }
  std::string sql(const std::string& q) { return g_server->psql(conninfo_, q); }

  std::string conninfo_;
  std::unique_ptr<EventStore> store_;
};

std::vector<StoredEvent> sorted(std::vector<StoredEvent> rows) {
  std::sort(rows.begin(), rows.end(), [](const StoredEvent& a, const StoredEvent& b) {
    return std::tie(a.event.time_ns, a.host, a.event_id) < std::tie(b.event.time_ns, b.host, b.event_id);
  });
  return rows;
}

// Alerts (store/alert_store.h): the same rows and filters as SQLite's (unit/alert_store_test.cc).
TEST_F(PostgresStoreTest, KeepsAlerts) {
  auto alerts = open_alert_store(conninfo_);
  ASSERT_TRUE(alerts.ok()) << alerts.error().message;
  const int64_t now = realtime_now_ns(), day = 86'400'000'000'000LL;
  auto alert = [&](int64_t t, std::string path, uint32_t uid) {
    StoredAlert a;
    a.time_ns = t;
    a.host = "h1";
    a.rule = "app";
    a.type = "violation";
    a.kind = "chmod";
    a.path = std::move(path);
    a.uid = uid;
    a.comm = std::string("ch\xffmod", 6);  // bytes, not text
    a.json = R"({"alert":"violation"})";
    return a;
  };
  std::vector<StoredAlert> rows = {alert(now - 10 * day, "/srv/app/old", 1), alert(now - 5, "/srv/app/a\xff", 0),
                                   alert(now, "/srv/other", 1)};
  ASSERT_TRUE((*alerts)->insert(rows).ok());
  ASSERT_TRUE((*alerts)->insert(std::span(rows).subspan(1, 1)).ok());  // again: skipped
  EXPECT_EQ((*alerts)->query({})->size(), 3u);
  QuerySpec tree;
  tree.path = "/srv/app/";
  tree.since_ns = now - day;
  tree.comm = std::string("ch\xffmod", 6);
  auto found = (*alerts)->query(tree);
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].json, R"({"alert":"violation"})");
  EXPECT_EQ((*found)[0].time_ns, now - 5);
  QuerySpec last;
  last.last_per_path = true;
  last.limit = 2;
  EXPECT_EQ((*alerts)->query(last)->size(), 2u);
  ASSERT_TRUE((*alerts)->apply_retention(5 * day).ok());
  EXPECT_EQ((*alerts)->query({})->size(), 2u);
}

TEST_F(PostgresStoreTest, RoundTripsEveryKindAndField) {
  auto rows = every_kind_events("host-a");
  auto now_rows = every_kind_events("host-b", realtime_now_ns());  // today's partition, not only the default
  rows.insert(rows.end(), now_rows.begin(), now_rows.end());
  auto err = store_->insert(rows);
  ASSERT_FALSE(err) << err->error.message;
  auto back = store_->query({});
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_rows(*back, sorted(rows));
}

TEST_F(PostgresStoreTest, ReplayIsIdempotent) {
  auto rows = every_kind_events("h", realtime_now_ns());
  ASSERT_FALSE(store_->insert(rows));
  auto again = store_->insert(rows);
  ASSERT_FALSE(again) << again->error.message;
  std::vector<StoredEvent> mixed(rows.begin() + 10, rows.begin() + 20);
  mixed.push_back(synthetic_event(99999, "h", realtime_now_ns(), 0));
  ASSERT_FALSE(store_->insert(mixed));
  EXPECT_EQ(sql("SELECT count(*) FROM fstrail_events"), std::to_string(rows.size() + 1));
  EXPECT_EQ(sql("SELECT count(DISTINCT (host, event_id)) FROM fstrail_events"), std::to_string(rows.size() + 1));
}

TEST_F(PostgresStoreTest, SchemaIsVersionedPartitionedAndIndexed) {
  EXPECT_EQ(sql("SELECT string_agg(version::text, ',' ORDER BY version) FROM fstrail_schema_version"), "1,2,3,4");
  EXPECT_EQ(sql("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'fstrail_events'::regclass"), "r");
  std::string today = sql("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM_DD')");
  std::string parts = sql("SELECT string_agg(c.relname, ' ' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c "
                          "ON c.oid = i.inhrelid WHERE i.inhparent = 'fstrail_events'::regclass");
  EXPECT_NE(parts.find("fstrail_events_p" + today), std::string::npos) << parts;
  EXPECT_NE(parts.find("fstrail_events_default"), std::string::npos) << parts;
  EXPECT_EQ(sql("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'fstrail_events'::regclass AND c.relname ~ '_p[0-9_]+$'"),
            "4");  // today and three days ahead
  EXPECT_EQ(sql("SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'fstrail_events_time'"),
            "brin");
  EXPECT_EQ(sql("SELECT indisunique FROM pg_index WHERE indexrelid = 'fstrail_events_host_id'::regclass"), "t");
  EXPECT_EQ(sql("SELECT string_agg(indexdef, E'\\n' ORDER BY indexname) FROM pg_indexes WHERE tablename = "
                "'fstrail_events' AND indexname IN ('fstrail_events_time_path', 'fstrail_events_path', "
                "'fstrail_events_time_old_path', 'fstrail_events_old_path')"),
            "CREATE INDEX fstrail_events_old_path ON ONLY public.fstrail_events USING btree (old_path) "
            "WHERE (old_path IS NOT NULL)\n"
            "CREATE INDEX fstrail_events_path ON ONLY public.fstrail_events USING btree (path)\n"
            "CREATE INDEX fstrail_events_time_old_path ON ONLY public.fstrail_events USING btree (\"time\", old_path) "
            "WHERE (old_path IS NOT NULL)\n"
            "CREATE INDEX fstrail_events_time_path ON ONLY public.fstrail_events USING btree (\"time\", path)");
  EXPECT_EQ(sql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'fstrail_events'::regclass AND attname = "
                "'id'"),
            "0");  // no serial key on the hot path
  // A second store (another host starting) finds the schema in place.
  auto again = open_store(conninfo_);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(sql("SELECT count(*) FROM fstrail_schema_version"), "4");
}

// A database made by the first schema version, with rows in it, is upgraded in place.
TEST_F(PostgresStoreTest, UpgradesAVersionOneDatabaseKeepingItsRows) {
  std::string db = "upgrade_v1";
  std::string conninfo = g_server->create_database(db);
  auto rows = every_kind_events("old-host");
  auto today = every_kind_events("old-host-today", realtime_now_ns());
  rows.insert(rows.end(), today.begin(), today.end());
  for (auto& row : rows) row.event.lost_reason = LossReason::kUnknown;  // version 1 had no reason
  {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
    auto exec = [&](const std::string& q) {
      PGresult* r = PQexec(conn, q.c_str());
      EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
          << q.substr(0, 60) << ": " << PQresultErrorMessage(r);
      PQclear(r);
    };
    exec("CREATE TABLE fstrail_schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL "
         "DEFAULT now())");
    exec(postgres_migrations()[0]);
    exec("INSERT INTO fstrail_schema_version (version) VALUES (1)");
    // The rows go in the way version 1 stored them: binary COPY (into the default partition).
    std::string copy;
    append_copy_header(copy);
    std::vector<std::string> records;
    for (const auto& row : rows) {
      std::string rec;
      encode_event(rec, row);
      EventRecordView view;
      ASSERT_TRUE(parse_record(rec, view));
      view.lost_reason.reset();
      // Version 1's tuple: the same fields less the last one (lost_reason, null here).
      std::string tuple;
      append_copy_row(tuple, view);
      ASSERT_EQ(tuple.substr(tuple.size() - 4), std::string(4, '\xff'));
      tuple.resize(tuple.size() - 4);
      tuple[0] = 0;  // the field count, big-endian: 32
      tuple[1] = 32;
      copy += tuple;
    }
    append_copy_trailer(copy);
    PGresult* r = PQexec(conn, "COPY fstrail_events FROM STDIN (FORMAT binary)");
    ASSERT_EQ(PQresultStatus(r), PGRES_COPY_IN) << PQresultErrorMessage(r);
    PQclear(r);
    ASSERT_EQ(PQputCopyData(conn, copy.data(), static_cast<int>(copy.size())), 1);
    ASSERT_EQ(PQputCopyEnd(conn, nullptr), 1);
    r = PQgetResult(conn);
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
    while ((r = PQgetResult(conn))) PQclear(r);
    PQfinish(conn);
  }
  ASSERT_EQ(g_server->psql(conninfo, "SELECT count(*) FROM fstrail_events"), std::to_string(rows.size()));
  auto store = open_store(conninfo);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(g_server->psql(conninfo, "SELECT string_agg(version::text, ',' ORDER BY version) FROM fstrail_schema_version"),
            "1,2,3,4");
  EXPECT_EQ(g_server->psql(conninfo, "SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes WHERE "
                                     "tablename = 'fstrail_events'"),
            "fstrail_events_host_id fstrail_events_old_path fstrail_events_path fstrail_events_time "
            "fstrail_events_time_old_path fstrail_events_time_path");
  // Today's rows moved from the default partition into today's partition, all still there.
  EXPECT_EQ(g_server->psql(conninfo, "SELECT count(*) FROM fstrail_events_default"),
            std::to_string(rows.size() - today.size()));
  auto back = (*store)->query({});
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_rows(*back, sorted(rows));
  // And the upgraded store takes new rows and answers path queries through the new indexes.
  ASSERT_FALSE((*store)->insert(every_kind_events("new-host", realtime_now_ns())));
  QuerySpec spec;
  spec.path = "/srv/app/";
  spec.since_ns = realtime_now_ns() - 3600LL * 1'000'000'000;
  auto recent = (*store)->query(spec);
  ASSERT_TRUE(recent.ok()) << recent.error().message;
  std::set<std::string> hosts;
  for (const auto& r : *recent) hosts.insert(r.host);
  EXPECT_EQ(hosts, (std::set<std::string>{"new-host", "old-host-today"}));
}

TEST_F(PostgresStoreTest, AbsurdTimesLandInTheDefaultPartition) {
  std::vector<StoredEvent> rows = {synthetic_event(1, "h", 86400LL * 1'000'000'000, 0),            // 1970-01-02
                                   synthetic_event(2, "h", 7'000'000'000'000'000'000LL, 0),         // 2191
                                   synthetic_event(3, "h", -5'000'000'000'000'000'000LL, 0),        // 1811
                                   synthetic_event(4, "h", realtime_now_ns(), 0)};
  auto err = store_->insert(rows);
  ASSERT_FALSE(err) << err->error.message;
  EXPECT_EQ(sql("SELECT count(*) FROM fstrail_events_default"), "3");
  expect_same_rows(*store_->query({}), sorted(rows));
}

TEST_F(PostgresStoreTest, RetentionDropsWholeOldPartitions) {
  int64_t now = realtime_now_ns(), day = 86400LL * 1'000'000'000;
  std::vector<StoredEvent> rows = {synthetic_event(1, "h", now - 40 * day, 0), synthetic_event(2, "h", now - 2 * day, 0),
                                   synthetic_event(3, "h", now, 0)};
  ASSERT_FALSE(store_->insert(rows));
  std::string old_day = sql(fmt::format("SELECT to_char(to_timestamp({}) AT TIME ZONE 'UTC', 'YYYY_MM_DD')",
                                        (now - 40 * day) / 1'000'000'000));
  EXPECT_EQ(sql("SELECT to_regclass('fstrail_events_p" + old_day + "') IS NOT NULL"), "t");
  ASSERT_TRUE(store_->apply_retention(30 * day).ok());
  EXPECT_EQ(sql("SELECT to_regclass('fstrail_events_p" + old_day + "') IS NULL"), "t");
  auto left = store_->query({});
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].event_id, 2);
}

TEST_F(PostgresStoreTest, ABadRowIsQuarantinedAndItsBatchLands) {
  testing::TempDir tmp("spool");
  const std::string& dir = tmp.path();
  RecorderOptions o;
  o.host = "h";
  o.flush_interval_ms = 10;
  {
    auto recorder = start_recorder(conninfo_, dir, 1ull << 30, o);
    ASSERT_TRUE(recorder.ok()) << recorder.error().message;
    int64_t now = realtime_now_ns();
    for (int64_t i = 0; i < 5000; ++i) {
      auto row = synthetic_event(i, "h", now, 1000);
      if (i == 777) row.host = "bad\xff-host";  // text must be UTF-8: PostgreSQL refuses this row
      (*recorder)->submit(row);
    }
    ASSERT_TRUE((*recorder)->wait_idle(30000));
    (*recorder)->close();
    EXPECT_EQ((*recorder)->stats().quarantined, 1u);
  }
  EXPECT_EQ(sql("SELECT count(*) FROM fstrail_events"), "4999");
  EXPECT_EQ(sql("SELECT count(*) FROM fstrail_events WHERE event_id = 777"), "0");
  auto quarantine = Spool::open(dir + "/quarantine", 1 << 30);
  SpoolPosition next;
  auto kept = (*quarantine)->peek(10, next);
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ(decode_all(*kept)[0].event_id, 777);
}

TEST_F(PostgresStoreTest, SameAnswersAsSqlite) {
  testing::TempDir tmp("sqlite");
  const std::string& dir = tmp.path();
  auto lite = open_store("sqlite://" + dir + "/events.db");
  ASSERT_TRUE(lite.ok());
  int64_t now = realtime_now_ns();
  auto rows = every_kind_events("h1", now - 3'600'000'000'000);
  auto more = every_kind_events("h2", now - 60'000'000'000);
  rows.insert(rows.end(), more.begin(), more.end());
  for (int64_t i = 0; i < 20000; ++i) rows.push_back(synthetic_event(100000 + i, "h3", now - 7200LL * 1'000'000'000, 300'000'000));
  ASSERT_FALSE(store_->insert(rows));
  ASSERT_FALSE((*lite)->insert(rows));

  std::vector<QuerySpec> specs(14);
  specs[1].path = "/srv/app/";
  specs[1].since_ns = now - 3'600'000'000'000;
  specs[2].path = "/srv/app/100%_done";
  specs[3].path = "/srv/app/x%y";
  specs[4].since_ns = now - 1800LL * 1'000'000'000;
  specs[4].until_ns = now - 60'000'000'000 + 5'000'003;  // nanosecond bound
  specs[5].uid = 1001;
  specs[6].uid = 1000;
  specs[6].login_user = true;
  specs[7].comm = "python3";
  specs[8].kinds = KindSet{};
  specs[8].kinds->set(static_cast<size_t>(EventKind::kRename));
  specs[8].kinds->set(static_cast<size_t>(EventKind::kLost));
  specs[9].host = "h2";
  specs[10].limit = 100;
  specs[10].path = "/etc/";
  specs[11].last_per_path = true;
  specs[12].last_per_path = true;
  specs[12].limit = 7;
  specs[12].path = "/srv/";
  specs[13].path = "/srv/app/bad\xff\xfe-utf8";
  for (size_t i = 0; i < specs.size(); ++i) {
    SCOPED_TRACE(fmt::format("query {}", i));
    auto a = store_->query(specs[i]);
    auto b = (*lite)->query(specs[i]);
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_TRUE(b.ok()) << b.error().message;
    if (i != 0) {
      EXPECT_GT(a->size(), 0u);
    }
    expect_same_rows(*a, *b);
  }
}

TEST_F(PostgresStoreTest, PasswordsNeverAppearInMessages) {
  std::string url = "postgresql://postgres:Sup3rSecret@/nosuchdb?host=" + g_server->dir() + "&port=1";
  auto store = open_store(url);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().message.find("Sup3rSecret"), std::string::npos) << store.error().message;
  EXPECT_NE(store.error().message.find("***"), std::string::npos) << store.error().message;
  std::string kw = "host=" + g_server->dir() + " port=1 password=Sup3rSecret dbname=x";
  auto store2 = open_store(kw);
  ASSERT_FALSE(store2.ok());
  EXPECT_EQ(store2.error().message.find("Sup3rSecret"), std::string::npos) << store2.error().message;
}

TEST_F(PostgresStoreTest, UrlAndKeywordFormsBothWork) {
  std::string db = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::transform(db.begin(), db.end(), db.begin(), ::tolower);
  std::string url = fmt::format("postgresql://postgres@/{}?host={}&port={}", db, g_server->dir(),
                                conninfo_.substr(conninfo_.find("port=") + 5, 5));
  auto store = open_store(url);
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_FALSE((*store)->insert(every_kind_events("h", realtime_now_ns())));
  EXPECT_EQ(store_->query({})->size(), every_kind_events("h").size());
}

}  // namespace
}  // namespace fstrail::store

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new fstrail::store::PgEnvironment);
  return RUN_ALL_TESTS();
}
