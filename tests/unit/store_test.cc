// The store without a server: SQLite, the spool, the recorder's fault handling, and helpers.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "core/clock.h"
#include "store/postgres/postgres_store.h"
#include "store/query_sql.h"
#include "store/record.h"
#include "store/recorder.h"
#include "store/spool/spool.h"
#include "store/sqlite/sqlite_store.h"
#include "store/store.h"
#include "store/test_events.h"
#include "support/temp_dir.h"

namespace fstrail::store {
namespace {

using fixtures::every_kind_events;
using fixtures::expect_same_rows;
using fixtures::kBaseTimeNs;
using fixtures::synthetic_event;

// Every test's directory is /tmp/fstrail-store-XXXXXX.
class TempDir : public testing::TempDir {
 public:
  TempDir() : testing::TempDir("store") {}
};

std::vector<StoredEvent> sorted(std::vector<StoredEvent> rows) {
  std::sort(rows.begin(), rows.end(), [](const StoredEvent& a, const StoredEvent& b) {
    return std::tie(a.event.time_ns, a.host, a.event_id) < std::tie(b.event.time_ns, b.host, b.event_id);
  });
  return rows;
}

std::unique_ptr<EventStore> open_sqlite(const TempDir& dir) {
  auto store = open_store("sqlite://" + dir.path() + "/events.db");
  EXPECT_TRUE(store.ok()) << store.error().message;
  return std::move(*store);
}

TEST(OpenStore, AnUnknownSchemeIsAnErrorNotAFileNamedAfterIt) {
  TempDir dir;
  std::string cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  auto store = open_store("postgress://user:secret@db/fstrail");
  std::filesystem::current_path(cwd);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("unknown database scheme 'postgress://'"), std::string::npos)
      << store.error().message;
  EXPECT_EQ(store.error().message.find("secret"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  // A path whose directory has "://" in it is still a path.
  std::filesystem::create_directories(dir.path() + "/a:");
  auto odd = open_store(dir.path() + "/a://b.db");
  EXPECT_TRUE(odd.ok()) << odd.error().message;
}

TEST(SqliteStore, RoundTripsEveryKindAndField) {
  TempDir dir;
  auto store = open_sqlite(dir);
  auto rows = every_kind_events("host-a");
  ASSERT_FALSE(store->insert(rows));
  auto back = store->query({});
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_rows(*back, sorted(rows));
}

TEST(SqliteStore, ReplayIsIdempotent) {
  TempDir dir;
  auto store = open_sqlite(dir);
  auto rows = every_kind_events("host-a");
  ASSERT_FALSE(store->insert(rows));
  ASSERT_FALSE(store->insert(rows));
  ASSERT_FALSE(store->insert(std::span(rows).subspan(3, 10)));
  EXPECT_EQ(store->query({})->size(), rows.size());
}

TEST(SqliteStore, ReopensWithoutRemigrating) {
  TempDir dir;
  {
    auto store = open_sqlite(dir);
    ASSERT_FALSE(store->insert(every_kind_events("h")));
  }
  auto store = open_sqlite(dir);
  EXPECT_EQ(store->query({})->size(), every_kind_events("h").size());
}

std::string sqlite_value(const std::string& file, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

// A file made by the first schema version (4 KiB pages), with rows in it, is upgraded in place.
TEST(SqliteStore, UpgradesAVersionOneFileKeepingItsRows) {
  TempDir dir;
  auto rows = every_kind_events("h");
  for (int64_t i = 0; i < 3000; ++i) rows.push_back(synthetic_event(100000 + i, "h2", kBaseTimeNs, 1'000'000));
  {  // The rows, encoded by the store itself, copied into a version-1 file.
    auto source = open_store("sqlite://" + dir.path() + "/source.db");
    ASSERT_TRUE(source.ok());
    ASSERT_FALSE((*source)->insert(rows));
  }
  std::string file = dir.path() + "/v1.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    std::string sql = fmt::format(
        "PRAGMA page_size=4096; PRAGMA journal_mode=WAL;"
        "CREATE TABLE fstrail_schema_version (version INTEGER NOT NULL); BEGIN; {} INSERT INTO "
        "fstrail_schema_version VALUES (1); COMMIT; ATTACH '{}/source.db' AS source;"
        "ALTER TABLE source.fstrail_events DROP COLUMN lost_reason;"  // version 1 had none
        "INSERT INTO fstrail_events SELECT * FROM source.fstrail_events; DETACH source;",
        sqlite_migrations()[0], dir.path());
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_close(db);
  }
  ASSERT_EQ(sqlite_value(file, "PRAGMA page_size"), "4096");
  ASSERT_EQ(sqlite_value(file, "SELECT count(*) FROM fstrail_events"), std::to_string(rows.size()));
  auto store = open_store("sqlite://" + file);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto back = (*store)->query({});
  ASSERT_TRUE(back.ok());
  for (auto& row : rows) row.event.lost_reason = LossReason::kUnknown;
  expect_same_rows(*back, sorted(rows));
  EXPECT_EQ(sqlite_value(file, "SELECT group_concat(version) FROM fstrail_schema_version"), "1,2,3,4,5");
  EXPECT_EQ(sqlite_value(file, "PRAGMA page_size"), "65536");
  EXPECT_EQ(sqlite_value(file, "PRAGMA journal_mode"), "wal");
  std::string table = sqlite_value(file, "SELECT sql FROM sqlite_master WHERE name = 'fstrail_events'");
  EXPECT_NE(table.find("PRIMARY KEY (time_ns, host, event_id)\n) WITHOUT ROWID"), std::string::npos) << table;
  EXPECT_EQ(sqlite_value(file, "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master WHERE "
                               "type = 'index' AND tbl_name = 'fstrail_events' ORDER BY name)"),
            "fstrail_events_hour_old_path fstrail_events_hour_path");
  // Replays still collide with what is stored, and new rows land.
  ASSERT_FALSE((*store)->insert(rows));
  auto more = every_kind_events("h3", kBaseTimeNs + 1'000'000'000);
  ASSERT_FALSE((*store)->insert(more));
  EXPECT_EQ((*store)->query({})->size(), rows.size() + more.size());
}

TEST(SqliteStore, NewFilesUseTheCurrentSchemaAndLargePages) {
  TempDir dir;
  std::string file = dir.path() + "/new.db";
  auto store = open_store("sqlite://" + file);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(sqlite_value(file, "SELECT group_concat(version) FROM fstrail_schema_version"), "1,2,3,4,5");
  EXPECT_EQ(sqlite_value(file, "PRAGMA page_size"), "65536");
}

// The path indexes lead with the hour: a path query lists the stored hours by seeking the
// index, so every hour must be found, before 1970 and in the far future included.
TEST(SqliteStore, PathQueriesFindEveryHourIncludingOddTimes) {
  TempDir dir;
  auto store = open_sqlite(dir);
  const int64_t hour = kSqliteHourNs;
  std::vector<int64_t> times = {std::numeric_limits<int64_t>::min(), -5 * hour - 1, -hour, -1, 0, 1, hour - 1,
                                hour, std::numeric_limits<int64_t>::max()};
  for (int i = 0; i < 200; ++i) times.push_back(kBaseTimeNs + i * 7 * hour + i);
  const char* const paths[] = {"/srv/app/a", "/srv/app/b/c", "/etc/x", "/srv/app0"};
  std::vector<StoredEvent> rows;
  for (size_t i = 0; i < times.size(); ++i) {
    Event& e = rows.emplace_back(synthetic_event(static_cast<int64_t>(i), "h", 0, 0)).event;
    e.time_ns = times[i];
    e.kind = i % 5 == 0 ? EventKind::kRename : EventKind::kModify;
    e.path = paths[i % 4];
    e.old_path = i % 5 == 0 ? std::optional<std::string>(paths[(i + 1) % 4]) : std::nullopt;
  }
  ASSERT_FALSE(store->insert(rows));
  auto expect = [&](const QuerySpec& spec, const std::function<bool(const std::string&)>& match) {
    size_t want = 0;
    for (const auto& r : rows) {
      bool in_time = (!spec.since_ns || r.event.time_ns >= *spec.since_ns) &&
                     (!spec.until_ns || r.event.time_ns <= *spec.until_ns);
      if (in_time && (match(r.event.path) || (r.event.old_path && match(*r.event.old_path)))) ++want;
    }
    auto got = store->query(spec);
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got->size(), want) << *spec.path;
    EXPECT_GT(want, 0u);
  };
  QuerySpec exact;
  exact.path = "/srv/app/a";
  expect(exact, [](const std::string& p) { return p == "/srv/app/a"; });
  QuerySpec subtree;
  subtree.path = "/srv/app/";
  expect(subtree, [](const std::string& p) { return p.starts_with("/srv/app/"); });
  subtree.since_ns = -hour;
  subtree.until_ns = kBaseTimeNs + 100 * 7 * hour;
  expect(subtree, [](const std::string& p) { return p.starts_with("/srv/app/"); });
  exact.since_ns = kBaseTimeNs + 3 * 7 * hour + 3;  // exactly one event's time
  exact.until_ns = exact.since_ns;
  expect(exact, [](const std::string& p) { return p == "/srv/app/a"; });
}

// SQLite's plan for `q` on `file`, one line per step.
std::string query_plan(const std::string& file, const SqlQuery& q) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN QUERY PLAN " + q.sql).c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  bind_query_params(stmt, q.params);
  std::string plan;
  while (sqlite3_step(stmt) == SQLITE_ROW)
    plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3)) + std::string("\n");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return plan;
}

// The query's hour expression is the indexed one: SQLite uses an index on an expression only
// when the query writes it exactly the same way.
TEST(SqliteStore, PathQueriesSearchTheHourLedIndexes) {
  TempDir dir;
  std::string file = dir.path() + "/events.db";
  ASSERT_TRUE(open_store("sqlite://" + file).ok());
  QuerySpec spec;
  spec.path = "/srv/app/config.yml";
  std::string plan = query_plan(file, build_query_sql(spec, SqlDialect::kSqlite));
  EXPECT_NE(plan.find("INDEX fstrail_events_hour_path (<expr>=? AND path=?)"), std::string::npos) << plan;
  EXPECT_NE(plan.find("INDEX fstrail_events_hour_old_path (<expr>=? AND old_path=?)"), std::string::npos)
      << plan;
  EXPECT_EQ(plan.find("SCAN fstrail_events"), std::string::npos) << plan;
  // "The last hour": read in time order.
  spec.path = "/srv/app/";
  spec.since_ns = realtime_now_ns() - kSqliteHourNs;
  plan = query_plan(file, build_query_sql(spec, SqlDialect::kSqlite));
  EXPECT_NE(plan.find("SEARCH fstrail_events USING PRIMARY KEY (time_ns>?)"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("hour"), std::string::npos) << plan;
}

TEST(SqliteStore, SubtreeMatchesWildcardsLiterally) {
  TempDir dir;
  auto store = open_sqlite(dir);
  ASSERT_FALSE(store->insert(every_kind_events("h")));
  QuerySpec spec;
  spec.path = "/srv/app/100%_done";
  auto exact = store->query(spec);
  for (const auto& r : *exact)
    EXPECT_TRUE(r.event.path == *spec.path || r.event.old_path == *spec.path) << r.event.path;
  EXPECT_GE(exact->size(), static_cast<size_t>(kEventKindCount - 1));
  spec.path = "/srv/app/";
  auto tree = store->query(spec);
  for (const auto& r : *tree) {
    bool in = r.event.path.rfind("/srv/app/", 0) == 0 || (r.event.old_path && r.event.old_path->rfind("/srv/app/", 0) == 0);
    EXPECT_TRUE(in) << r.event.path;
  }
  // "/srv/app", "/srv/app0", "/srv/application/other" are not under /srv/app/.
  size_t expected = 0;
  for (const auto& r : every_kind_events("h"))
    if (r.event.path.rfind("/srv/app/", 0) == 0 || (r.event.old_path && r.event.old_path->rfind("/srv/app/", 0) == 0))
      ++expected;
  EXPECT_EQ(tree->size(), expected);
  spec.path = "/srv/app/x_y";  // '_' is not a wildcard: x%y must not match
  EXPECT_EQ(store->query(spec)->size(), 0u);
}

TEST(SqliteStore, FiltersByTimeUserCommKindHostLimitLast) {
  TempDir dir;
  auto store = open_sqlite(dir);
  auto rows = every_kind_events("h1");
  auto more = every_kind_events("h2", kBaseTimeNs + 1);
  rows.insert(rows.end(), more.begin(), more.end());
  ASSERT_FALSE(store->insert(rows));
  auto count = [&](const QuerySpec& spec, auto pred) {
    size_t n = 0;
    for (const auto& r : rows) n += pred(r) ? 1 : 0;
    auto got = store->query(spec);
    EXPECT_TRUE(got.ok());
    EXPECT_EQ(got->size(), n);
    return got->size();
  };
  QuerySpec s;
  s.since_ns = kBaseTimeNs + 5'000'000;
  s.until_ns = kBaseTimeNs + 9'000'050;
  EXPECT_GT(count(s, [&](const StoredEvent& r) { return r.event.time_ns >= *s.since_ns && r.event.time_ns <= *s.until_ns; }), 0u);
  QuerySpec u;
  u.uid = 1001;
  EXPECT_GT(count(u, [](const StoredEvent& r) { return r.event.uid == 1001u; }), 0u);
  u.login_user = true;
  EXPECT_GT(count(u, [](const StoredEvent& r) { return r.event.uid == 1001u || r.event.loginuid == 1001u; }), 0u);
  QuerySpec c;
  c.comm = "we\xffird";
  EXPECT_GT(count(c, [&](const StoredEvent& r) { return r.event.comm == *c.comm; }), 0u);
  QuerySpec k;
  k.kinds = KindSet{};
  k.kinds->set(static_cast<size_t>(EventKind::kChmod));
  k.kinds->set(static_cast<size_t>(EventKind::kLost));
  EXPECT_GT(count(k, [](const StoredEvent& r) { return r.event.kind == EventKind::kChmod || r.event.kind == EventKind::kLost; }), 0u);
  QuerySpec h;
  h.host = "h2";
  EXPECT_EQ(count(h, [](const StoredEvent& r) { return r.host == "h2"; }), more.size());
  QuerySpec l;
  l.limit = 5;
  auto limited = store->query(l);
  auto all = sorted(rows);
  expect_same_rows(*limited, std::vector<StoredEvent>(all.end() - 5, all.end()));
  QuerySpec last;
  last.last_per_path = true;
  last.host = "h1";
  auto lasts = store->query(last);
  std::map<std::string, StoredEvent> expected;
  for (const auto& r : sorted(every_kind_events("h1"))) expected[r.event.path] = r;
  ASSERT_EQ(lasts->size(), expected.size());
  for (const auto& r : *lasts) EXPECT_EQ(r.event_id, expected[r.event.path].event_id);
}

TEST(SqliteStore, RetentionDropsWholeOldDays) {
  TempDir dir;
  auto store = open_sqlite(dir);
  int64_t now = realtime_now_ns(), day = 86400LL * 1'000'000'000;
  std::vector<StoredEvent> rows = {synthetic_event(1, "h", now - 40 * day, 0),
                                   synthetic_event(2, "h", now - 2 * day, 0), synthetic_event(3, "h", now, 0)};
  ASSERT_FALSE(store->insert(rows));
  ASSERT_TRUE(store->apply_retention(30 * day).ok());
  auto left = store->query({});
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].event_id, 2);
}

TEST(SpoolCodec, RoundTripsEveryField) {
  for (const auto& row : every_kind_events("h")) {
    std::string bytes;
    encode_event(bytes, row);
    StoredEvent back;
    ASSERT_TRUE(decode_event(bytes, back));
    expect_same_rows({row}, {back});
    EXPECT_FALSE(decode_event(std::string_view(bytes).substr(0, bytes.size() - 1), back));
  }
}

// The PostgreSQL writer transcodes records straight to binary COPY tuples: the bytes must be
// those of the parsed record's tuple, and a record that does not parse must be refused.
TEST(PostgresCopyCodec, TranscodingARecordWritesTheTupleOfItsParse) {
  auto rows = every_kind_events("h");
  rows.push_back(fixtures::synthetic_event(5, "bench", kBaseTimeNs, 1000));
  rows.push_back(fixtures::synthetic_event(7, "bench", -1'234'567, 1000));  // before 1970, odd ns
  for (const auto& row : rows) {
    std::string bytes;
    encode_event(bytes, row);
    EventRecordView view;
    ASSERT_TRUE(parse_record(bytes, view));
    std::string expected;
    append_copy_row(expected, view);
    std::vector<char> out(bytes.size() + kCopyRowSlack);
    char* end = transcode_copy_row(bytes, out.data());
    ASSERT_NE(end, nullptr) << row.event_id;
    ASSERT_LE(static_cast<size_t>(end - out.data()), out.size());
    EXPECT_EQ(std::string_view(out.data(), static_cast<size_t>(end - out.data())), expected) << row.event_id;

    std::string_view whole(bytes);
    for (size_t cut : {size_t{0}, size_t{7}, size_t{20}, bytes.size() - 1})
      EXPECT_EQ(transcode_copy_row(whole.substr(0, cut), out.data()), nullptr) << cut;
    std::string longer = bytes + "x";
    out.resize(longer.size() + kCopyRowSlack);
    EXPECT_EQ(transcode_copy_row(longer, out.data()), nullptr);
    std::string bad_kind = bytes;
    bad_kind[16] = static_cast<char>(kEventKindCount);
    EXPECT_EQ(transcode_copy_row(bad_kind, out.data()), nullptr);
  }
}

TEST(Spool, ReplaysInOrderAcrossReopen) {
  TempDir dir;
  auto rows = every_kind_events("h");
  {
    auto spool = Spool::open(dir.path(), 1 << 30);
    ASSERT_TRUE(spool.ok());
    EXPECT_TRUE((*spool)->empty());
    ASSERT_TRUE((*spool)->append(std::span(rows).subspan(0, 50)).ok());
    ASSERT_TRUE((*spool)->append(std::span(rows).subspan(50)).ok());
    SpoolPosition next;
    auto first = (*spool)->peek(30, next);
    ASSERT_EQ(first->size(), 30u);
    ASSERT_TRUE((*spool)->commit(next).ok());
  }
  auto spool = Spool::open(dir.path(), 1 << 30);
  SpoolPosition next;
  auto rest = (*spool)->peek(100000, next);
  expect_same_rows(decode_all(*rest), std::vector<StoredEvent>(rows.begin() + 30, rows.end()));
  ASSERT_TRUE((*spool)->commit(next).ok());
  EXPECT_TRUE((*spool)->empty());
  ASSERT_TRUE((*spool)->append(std::span(rows).subspan(0, 1)).ok());
  EXPECT_FALSE((*spool)->empty());
}

TEST(Spool, RecoversFromATornTail) {
  TempDir dir;
  auto rows = every_kind_events("h");
  {
    auto spool = Spool::open(dir.path(), 1 << 30);
    ASSERT_TRUE((*spool)->append(std::span(rows).subspan(0, 20)).ok());
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().extension() != ".seg") continue;
    int fd = ::open(entry.path().c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "\x40\0\0\0garbage", 11), 11);  // half a record, as a SIGKILL mid-write leaves
    ::close(fd);
  }
  auto spool = Spool::open(dir.path(), 1 << 30);
  ASSERT_TRUE((*spool)->append(std::span(rows).subspan(20, 5)).ok());
  SpoolPosition next;
  auto back = (*spool)->peek(1000, next);
  expect_same_rows(decode_all(*back), std::vector<StoredEvent>(rows.begin(), rows.begin() + 25));
  // The torn bytes are quarantined; no record is missing (the header says 20 were written).
  EXPECT_EQ(next.lost, 0u);
  EXPECT_FALSE(next.lost_unknown);
  EXPECT_EQ(next.bad_bytes, 11u);
}

std::string read_file(const std::string& path) {
  std::string data;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
    std::fclose(f);
  }
  return data;
}

void write_file(const std::string& path, std::string_view data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(data.data(), 1, data.size(), f), data.size());
  std::fclose(f);
}

std::vector<std::string> segment_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".seg") out.push_back(entry.path());
  std::sort(out.begin(), out.end());
  return out;
}

struct Drained {
  std::vector<StoredEvent> rows;
  uint64_t lost = 0;
  bool lost_unknown = false;
  uint64_t bad_bytes = 0;
};

Drained drain(const std::string& dir) {
  Drained out;
  auto spool = Spool::open(dir, 1ull << 30);
  EXPECT_TRUE(spool.ok());
  if (!spool.ok()) return out;
  for (int guard = 0; guard < 100000 && !(*spool)->empty(); ++guard) {
    SpoolPosition next;
    auto rows = (*spool)->peek(397, next);
    EXPECT_TRUE(rows.ok());
    if (!rows.ok()) break;
    for (auto& row : decode_all(*rows)) out.rows.push_back(std::move(row));
    EXPECT_TRUE((*spool)->commit(next).ok());
  }
  EXPECT_TRUE((*spool)->empty());
  out.lost = (*spool)->lost();
  out.lost_unknown = (*spool)->lost_unknown();
  out.bad_bytes = (*spool)->quarantined_bytes();
  return out;
}

// Random flips and cuts in the record area and in one header copy of the segments: every record
// that checks comes back intact, and what does not is counted, exactly, for every seed.
TEST(Spool, NeverLosesSilentlyUnderRandomCorruption) {
  TempDir pristine;
  const int64_t n = 2000;
  std::vector<StoredEvent> rows;
  for (int64_t i = 0; i < n; ++i) rows.push_back(synthetic_event(i, "h", kBaseTimeNs, 1000));
  {
    auto spool = Spool::open(pristine.path(), 1ull << 30);
    for (int64_t i = 0; i < 1200; i += 100) ASSERT_TRUE((*spool)->append(std::span(rows).subspan(i, 100)).ok());
  }
  {  // a second run appends to a second segment
    auto spool = Spool::open(pristine.path(), 1ull << 30);
    for (int64_t i = 1200; i < n; i += 200) ASSERT_TRUE((*spool)->append(std::span(rows).subspan(i, 200)).ok());
  }
  auto segments = segment_files(pristine.path());
  ASSERT_EQ(segments.size(), 2u);
  std::vector<std::string> original;
  for (const auto& seg : segments) original.push_back(read_file(seg));

  int corrupted_runs = 0;
  uint64_t total_lost = 0;
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    TempDir dir;
    std::vector<std::string> data = original;
    int flips = std::uniform_int_distribution<int>(1, 40)(rng);
    for (int f = 0; f < flips; ++f) {
      std::string& seg = data[rng() % data.size()];
      // Either header copy may be hit, never both: the one of this seed is spared.
      size_t spared = seed % 2 ? 0 : 32;
      size_t at = std::uniform_int_distribution<size_t>(0, seg.size() - 1)(rng);
      if (at >= spared && at < spared + 32) continue;
      seg[at] = static_cast<char>(seg[at] ^ (1 + rng() % 255));
    }
    if (rng() % 3 != 0) {  // cut a segment at a random offset past its header
      std::string& seg = data[rng() % data.size()];
      seg.resize(std::uniform_int_distribution<size_t>(64, seg.size())(rng));
    }
    for (size_t i = 0; i < data.size(); ++i) write_file(dir.path() + "/" + std::filesystem::path(segments[i]).filename().string(), data[i]);

    Drained back = drain(dir.path());
    std::set<int64_t> ids;
    for (const auto& row : back.rows) {
      ASSERT_GE(row.event_id, 0);
      ASSERT_LT(row.event_id, n);
      ASSERT_TRUE(ids.insert(row.event_id).second) << "replayed twice: " << row.event_id;
      expect_same_rows({rows[static_cast<size_t>(row.event_id)]}, {row});
    }
    EXPECT_FALSE(back.lost_unknown);
    EXPECT_EQ(back.rows.size() + back.lost, static_cast<uint64_t>(n));
    if (back.lost) {
      ++corrupted_runs;
      EXPECT_GT(back.bad_bytes, 0u);
    }
    total_lost += back.lost;
    uint64_t kept = 0;
    if (std::filesystem::exists(dir.path() + "/quarantine"))
      for (const auto& entry : std::filesystem::directory_iterator(dir.path() + "/quarantine")) {
        EXPECT_EQ(entry.status().permissions(), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        kept += entry.file_size();
      }
    EXPECT_EQ(kept, back.bad_bytes);
  }
  std::printf("150 corrupted spools: %d of them lost records, %llu records lost in all, each counted\n", corrupted_runs,
              static_cast<unsigned long long>(total_lost));
  EXPECT_GE(corrupted_runs, 100) << "most seeds must actually lose records";
  EXPECT_LT(total_lost, 150u * n) << "a damaged record must not take the rest with it";
}

TEST(Spool, ABrokenHeaderIsCountedAsAnUnknownLoss) {
  TempDir dir;
  auto rows = every_kind_events("h");
  {
    auto spool = Spool::open(dir.path(), 1 << 30);
    ASSERT_TRUE((*spool)->append(rows).ok());
  }
  auto seg = segment_files(dir.path()).at(0);
  std::string data = read_file(seg);
  data[8] ^= 1;
  data[40] ^= 1;
  write_file(seg, data);
  Drained back = drain(dir.path());
  EXPECT_EQ(back.rows.size(), rows.size()) << "every record still checks";
  EXPECT_TRUE(back.lost_unknown) << "with no count written, a cut tail cannot be ruled out";
}

// A crash between storing a lost event and moving the cursor must not store a second one.
TEST(Spool, ThePendingLostEventOutlivesARestartUntilCommit) {
  TempDir dir;
  {
    auto spool = Spool::open(dir.path(), 1 << 30);
    EXPECT_FALSE((*spool)->pending_lost());
    ASSERT_TRUE((*spool)->set_pending_lost({7, 8}).ok());
  }
  auto spool = Spool::open(dir.path(), 1 << 30);
  auto mark = (*spool)->pending_lost();
  ASSERT_TRUE(mark);
  EXPECT_EQ(mark->event_id, 7);
  EXPECT_EQ(mark->time_ns, 8);
  SpoolPosition next;
  ASSERT_TRUE((*spool)->peek(10, next).ok());
  ASSERT_TRUE((*spool)->commit(next).ok());
  EXPECT_FALSE((*spool)->pending_lost());
  EXPECT_FALSE((*Spool::open(dir.path(), 1 << 30))->pending_lost());
}

TEST(Spool, FilesArePrivate) {
  TempDir dir;
  std::string spool_dir = dir.path() + "/a/spool";
  auto spool = Spool::open(spool_dir, 1 << 30);
  ASSERT_TRUE(spool.ok());
  auto rows = every_kind_events("h");
  ASSERT_TRUE((*spool)->append(rows).ok());
  SpoolPosition next;
  ASSERT_TRUE((*spool)->peek(5, next).ok());
  ASSERT_TRUE((*spool)->commit(next).ok());
  namespace fs = std::filesystem;
  EXPECT_EQ(fs::status(dir.path() + "/a").permissions(), fs::perms::owner_all);
  EXPECT_EQ(fs::status(spool_dir).permissions(), fs::perms::owner_all);
  for (const auto& entry : fs::directory_iterator(spool_dir))
    EXPECT_EQ(entry.status().permissions(), fs::perms::owner_read | fs::perms::owner_write) << entry.path();
}

TEST(Spool, CountsOverflowBeyondItsLimit) {
  TempDir dir;
  auto spool = Spool::open(dir.path(), 4096);
  std::vector<StoredEvent> rows;
  for (int i = 0; i < 200; ++i) rows.push_back(synthetic_event(i, "h", kBaseTimeNs, 1000));
  ASSERT_TRUE((*spool)->append(rows).ok());
  EXPECT_GT((*spool)->overflow(), 0u);
  SpoolPosition next;
  auto kept = (*spool)->peek(1000, next);
  EXPECT_EQ(kept->size() + (*spool)->overflow(), rows.size());
  EXPECT_LE((*spool)->pending_bytes(), 4096u);
}

// A store that can be switched off and refuses chosen rows, over a real SQLite store.
class FlakyStore final : public EventStore {
 public:
  explicit FlakyStore(std::unique_ptr<EventStore> inner) : inner_(std::move(inner)) {}
  std::string_view kind() const override { return "flaky"; }
  std::optional<InsertError> insert_records(std::span<const std::string_view> batch) override {
    if (!*up_ptr) return InsertError{FailureKind::kUnavailable, Error{"down"}};
    EventRecordView view;
    for (const auto& r : batch)
      if (parse_record(r, view) && bad_ids.count(view.event_id)) return InsertError{FailureKind::kBadData, Error{"bad row"}};
    ++inserts;
    return inner_->insert_records(batch);
  }
  Result<std::vector<StoredEvent>> query(const QuerySpec& spec) override { return inner_->query(spec); }
  Status apply_retention(int64_t keep) override { return inner_->apply_retention(keep); }
  Status reconnect() override {
    if (!*up_ptr) return Error{"still down"};
    ++reconnects;
    return Ok{};
  }
  std::atomic<bool> up{true};
  std::atomic<bool>* up_ptr = &up;  // a second connection to the same database shares its state
  std::atomic<int> reconnects{0};
  std::set<int64_t> bad_ids;
  std::atomic<int> inserts{0};

 private:
  std::unique_ptr<EventStore> inner_;
};

struct RecorderRig {
  TempDir dir;
  FlakyStore* store = nullptr;
  std::unique_ptr<Recorder> recorder;
  std::string log_path = dir.path() + "/log";
  FILE* log = std::fopen(log_path.c_str(), "w");

  explicit RecorderRig(std::set<int64_t> bad = {}) {
    auto flaky = std::make_unique<FlakyStore>(open_sqlite(dir));
    flaky->bad_ids = std::move(bad);
    store = flaky.get();
    recorder = make(std::move(flaky));
  }
  ~RecorderRig() {
    recorder.reset();
    std::fclose(log);
  }
  std::unique_ptr<Recorder> make(std::unique_ptr<EventStore> s) {
    RecorderOptions o;
    o.host = "h";
    o.batch_rows = 1000;
    o.flush_interval_ms = 10;
    o.retry_interval_ms = 10;
    o.queue_max = 5000;
    o.log = log;
    return std::make_unique<Recorder>(std::move(s), std::move(*Spool::open(dir.path() + "/spool", 1ull << 30)),
                                      std::move(*Spool::open(dir.path() + "/spool/quarantine", 1ull << 30)),
                                      nullptr, o);
  }
};

void expect_exactly(EventStore& store, int64_t n, const std::set<int64_t>& missing = {}) {
  auto rows = store.query({});
  ASSERT_TRUE(rows.ok());
  std::set<int64_t> ids;
  for (const auto& r : *rows) ids.insert(r.event_id);
  EXPECT_EQ(ids.size(), rows->size()) << "duplicates";
  EXPECT_EQ(static_cast<int64_t>(rows->size()), n - static_cast<int64_t>(missing.size()));
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(ids.count(i), missing.count(i) ? 0u : 1u) << i;
}

TEST(Recorder, SpoolsWhileTheStoreIsDownAndReplaysExactlyOnce) {
  RecorderRig rig;
  const int64_t n = 30000;
  for (int64_t i = 0; i < n; ++i) {
    if (i == 5000) rig.store->up = false;
    if (i == 20000) rig.store->up = true;
    rig.recorder->submit(synthetic_event(i, "h", kBaseTimeNs, 1000));
    if (i % 500 == 0) rig.recorder->flush();
  }
  rig.recorder->flush();
  ASSERT_TRUE(rig.recorder->wait_idle(20000));
  rig.recorder->close();
  auto st = rig.recorder->stats();
  EXPECT_GT(st.spooled, 0u);
  EXPECT_EQ(st.replayed, st.spooled);
  EXPECT_EQ(st.spool_overflow, 0u);
  expect_exactly(*rig.store, n);
}

// Two writers (two connections): batches go to both, an outage seen by either spools, the
// primary alone replays, the other reconnects after the recovery, and everything lands once.
TEST(Recorder, TwoWritersShareTheBatchesAndStillStoreEverythingExactlyOnce) {
  RecorderRig rig;
  rig.recorder.reset();
  auto first = std::make_unique<FlakyStore>(open_sqlite(rig.dir));
  auto second = std::make_unique<FlakyStore>(open_sqlite(rig.dir));
  second->up_ptr = &first->up;
  FlakyStore* a = first.get();
  FlakyStore* b = second.get();
  std::vector<std::unique_ptr<EventStore>> stores;
  stores.push_back(std::move(first));
  stores.push_back(std::move(second));
  RecorderOptions o;
  o.host = "h";
  o.batch_rows = 1000;
  o.flush_interval_ms = 10;
  o.retry_interval_ms = 10;
  o.log = rig.log;
  auto recorder = std::make_unique<Recorder>(std::move(stores), std::move(*Spool::open(rig.dir.path() + "/spool", 1ull << 30)),
                                             std::move(*Spool::open(rig.dir.path() + "/spool/quarantine", 1ull << 30)),
                                             nullptr, o);
  const int64_t n = 60000;
  int b_inserts_before_recovery = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (i == 20000) {
      ASSERT_TRUE(recorder->wait_idle(20000));
      a->up = false;
    }
    if (i == 40000) {
      a->up = true;
      ASSERT_TRUE(recorder->wait_idle(20000));  // the spool is replayed
      b_inserts_before_recovery = b->inserts;
    }
    recorder->submit(synthetic_event(i, "h", kBaseTimeNs, 1000));
    if (i % 500 == 0) recorder->flush();
    // Keep the queue short, so both writers take batches as they fill.
    while (recorder->queue_depth() > 3000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  recorder->flush();
  ASSERT_TRUE(recorder->wait_idle(20000));
  recorder->close();
  auto st = recorder->stats();
  EXPECT_GT(st.spooled, 0u);
  EXPECT_EQ(st.replayed, st.spooled);
  EXPECT_EQ(st.outages, 1u);
  EXPECT_GT(a->inserts, 0);
  EXPECT_GT(b_inserts_before_recovery, 0) << "the second writer took no batch";
  EXPECT_GT(b->inserts, b_inserts_before_recovery) << "the second writer took no batch after the outage";
  EXPECT_GE(b->reconnects, 1) << "the second writer did not reconnect after the outage";
  expect_exactly(*a, n);
}

TEST(Recorder, CloseWhileDownKeepsEverythingInTheSpoolForTheNextRun) {
  RecorderRig rig;
  rig.store->up = false;
  for (int64_t i = 0; i < 3000; ++i) rig.recorder->submit(synthetic_event(i, "h", kBaseTimeNs, 1000));
  rig.recorder->close();
  EXPECT_EQ(rig.recorder->stats().spooled, 3000u);
  rig.store->up = true;
  EXPECT_EQ(rig.store->query({})->size(), 0u);
  // Next run: the same spool directory, the store is back.
  auto next = rig.make(std::make_unique<FlakyStore>(open_sqlite(rig.dir)));
  ASSERT_TRUE(next->wait_idle(20000));
  next->close();
  EXPECT_EQ(next->stats().replayed, 3000u);
  expect_exactly(*open_sqlite(rig.dir), 3000);
}

TEST(Recorder, OneBadRowNeverLosesItsBatch) {
  RecorderRig rig({1234, 4321});
  for (int64_t i = 0; i < 5000; ++i) rig.recorder->submit(synthetic_event(i, "h", kBaseTimeNs, 1000));
  ASSERT_TRUE(rig.recorder->wait_idle(20000));
  rig.recorder->close();
  EXPECT_EQ(rig.recorder->stats().quarantined, 2u);
  expect_exactly(*rig.store, 5000, {1234, 4321});
  auto quarantine = Spool::open(rig.dir.path() + "/spool/quarantine", 1 << 30);
  SpoolPosition next;
  auto kept = (*quarantine)->peek(100, next);
  ASSERT_EQ(kept->size(), 2u);
  EXPECT_EQ(decode_all(*kept)[0].event_id, 1234);
}

TEST(Recorder, ADamagedSpoolIsReplayedAroundTheDamageAndTheLossIsStored) {
  RecorderRig rig;
  rig.store->up = false;
  for (int64_t i = 0; i < 3000; ++i) rig.recorder->submit(synthetic_event(i, "h", kBaseTimeNs, 1000));
  rig.recorder->close();
  ASSERT_EQ(rig.recorder->stats().spooled, 3000u);
  rig.recorder.reset();
  auto seg = segment_files(rig.dir.path() + "/spool").at(0);
  std::string data = read_file(seg);
  for (size_t at : {size_t{5000}, size_t{90000}, size_t{91000}, data.size() / 2}) data[at] ^= 0x5a;
  data.resize(data.size() - 37);
  write_file(seg, data);

  rig.store = nullptr;  // went with the first recorder
  rig.recorder = rig.make(std::make_unique<FlakyStore>(open_sqlite(rig.dir)));
  ASSERT_TRUE(rig.recorder->wait_idle(20000));
  rig.recorder->close();
  auto st = rig.recorder->stats();
  EXPECT_GT(st.spool_lost, 0u);
  EXPECT_FALSE(st.spool_lost_unknown);
  EXPECT_GT(st.spool_bad_bytes, 0u);
  auto stored = open_sqlite(rig.dir)->query({});
  ASSERT_TRUE(stored.ok());
  uint64_t events = 0, lost = 0, lost_events = 0;
  for (const auto& row : *stored) {
    if (row.event.kind == EventKind::kLost) {
      ++lost_events;
      ASSERT_TRUE(row.event.lost.has_value());
      lost += *row.event.lost;
      EXPECT_EQ(row.event.path, rig.dir.path() + "/spool");
    } else {
      ++events;
    }
  }
  EXPECT_GE(lost_events, 1u);
  EXPECT_EQ(lost, st.spool_lost);
  EXPECT_EQ(events + lost, 3000u);
  std::fflush(rig.log);
  std::string log = read_file(rig.log_path);
  EXPECT_NE(log.find("could not be read"), std::string::npos) << log;
  std::string summary;
  {
    char* buf = nullptr;
    size_t len = 0;
    FILE* mem = open_memstream(&buf, &len);
    print_recorder_summary(mem, st);
    std::fclose(mem);
    summary.assign(buf, len);
    std::free(buf);
  }
  EXPECT_NE(summary.find(fmt::format("{} unreadable in the spool", st.spool_lost)), std::string::npos) << summary;
}

TEST(Recorder, AFullQueueSpillsToTheSpoolInsteadOfBlocking) {
  RecorderRig rig;
  rig.store->up = false;  // the writer is stuck retrying: the queue fills
  for (int64_t i = 0; i < 20000; ++i) rig.recorder->submit(synthetic_event(i, "h", kBaseTimeNs, 1000));
  rig.recorder->flush();
  rig.store->up = true;
  ASSERT_TRUE(rig.recorder->wait_idle(20000));
  rig.recorder->close();
  expect_exactly(*rig.store, 20000);
}

TEST(Recorder, OneProcessPerSpool) {
  TempDir dir;
  RecorderOptions o;
  o.log = stderr;
  auto first = start_recorder("sqlite://" + dir.path() + "/events.db", dir.path() + "/spool", 1 << 30, o);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = start_recorder("sqlite://" + dir.path() + "/other.db", dir.path() + "/spool", 1 << 30, o);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("in use by another fstrail process"), std::string::npos)
      << second.error().message;
  first->reset();
  auto third = start_recorder("sqlite://" + dir.path() + "/events.db", dir.path() + "/spool", 1 << 30, o);
  EXPECT_TRUE(third.ok()) << "the lock goes with the recorder";
}

TEST(EventIds, IncreaseAndSurviveARestartWithAClockStepBack) {
  TempDir dir;
  std::string state = dir.path() + "/event-id";
  int64_t last;
  {
    EventIdAllocator ids(state);
    int64_t a = ids.next(), b = ids.next();
    EXPECT_LT(a, b);
    last = b;
  }
  {  // the clock moved back 10 minutes: the persisted mark keeps ids ahead
    FILE* f = std::fopen(state.c_str(), "r");
    long long mark = 0;
    ASSERT_EQ(std::fscanf(f, "%lld", &mark), 1);
    std::fclose(f);
    EXPECT_GT(mark, last);
    EventIdAllocator ids(state);
    EXPECT_GT(ids.next(), mark - 1);
  }
}

TEST(EventIds, EachHolderOfTheSlotFileHasItsOwnSlot) {
  TempDir dir;
  std::string slots = dir.path() + "/slots";
  std::vector<std::unique_ptr<EventIdAllocator>> held;
  std::set<int> seen;
  for (int i = 0; i < EventIdAllocator::kSlots; ++i) {
    auto ids = EventIdAllocator::open("", slots);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_TRUE(seen.insert((*ids)->slot()).second);
    int64_t id = (*ids)->next();
    EXPECT_EQ(id & (EventIdAllocator::kSlots - 1), (*ids)->slot());
    held.push_back(std::move(*ids));
  }
  auto one_too_many = EventIdAllocator::open("", slots);
  ASSERT_FALSE(one_too_many.ok());
  EXPECT_NE(one_too_many.error().message.find("already write this database"), std::string::npos);
  held[7].reset();  // a slot is free again once its holder is gone, and starts above its mark
  auto again = EventIdAllocator::open("", slots);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->slot(), 7);
  EXPECT_EQ(std::filesystem::status(slots).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

// Two recorders on one SQLite file whose id states both say "start above M" (the worst case:
// before slots, both handed out M+1, M+2, ... and the store kept both events of each id).
TEST(EventIds, TwoRecordersOnOneSqliteFileNeverShareAnId) {
  TempDir dir;
  const std::string db = "sqlite://" + dir.path() + "/events.db";
  const int64_t mark = realtime_now_ns() + 3600LL * 1'000'000'000;
  const int n = 20000;
  std::vector<std::unique_ptr<Recorder>> recorders;
  for (int r = 0; r < 2; ++r) {
    std::string spool = dir.path() + "/spool" + std::to_string(r);
    ASSERT_TRUE(make_private_dirs(spool).ok());
    FILE* f = std::fopen((spool + "/event-id").c_str(), "w");
    std::fprintf(f, "%lld\n", static_cast<long long>(mark));
    std::fclose(f);
    RecorderOptions o;
    o.host = "h";
    o.log = stderr;
    // The second one names the file by another path: it must still share the slot file.
    auto rec = start_recorder(r == 0 ? db : dir.path() + "/./events.db", spool, 1ull << 30, o);
    ASSERT_TRUE(rec.ok()) << rec.error().message;
    recorders.push_back(std::move(*rec));
  }
  std::vector<std::thread> writers;
  for (int r = 0; r < 2; ++r)
    writers.emplace_back([&, r] {
      for (int i = 0; i < n; ++i) recorders[static_cast<size_t>(r)]->write(synthetic_event(i, "h", kBaseTimeNs + r, 1000).event);
    });
  for (auto& t : writers) t.join();
  for (auto& rec : recorders) rec->close();
  auto store = open_store(db);
  ASSERT_TRUE(store.ok());
  auto rows = (*store)->query({});
  ASSERT_TRUE(rows.ok());
  std::set<int64_t> ids;
  for (const auto& row : *rows) {
    EXPECT_GT(row.event_id, mark);
    ids.insert(row.event_id);
  }
  EXPECT_EQ(rows->size(), 2u * n);
  EXPECT_EQ(ids.size(), rows->size()) << "two events share an id";
}

TEST(StoreHelpers, RedactsPasswordsEverywhere) {
  EXPECT_EQ(redact_url("postgresql://bob:s3cret@db:5432/fstrail"), "postgresql://bob:***@db:5432/fstrail");
  EXPECT_EQ(redact_url("host=db password=s3cret dbname=x"), "host=db password=*** dbname=x");
  EXPECT_EQ(redact_url("host=db password = 'se cret' dbname=x"), "host=db password = '***' dbname=x");
  EXPECT_EQ(redact_url("postgresql://db/x?password=s3cret&sslmode=require"),
            "postgresql://db/x?password=***&sslmode=require");
  EXPECT_EQ(redact_message("FATAL: password s3cret refused", "postgresql://bob:s3cret@db/x"),
            "FATAL: password *** refused");
  EXPECT_EQ(redact_url("sqlite:///var/lib/fstrail/events.db"), "sqlite:///var/lib/fstrail/events.db");
}

TEST(StoreHelpers, ParsesDurationsAndTimes) {
  EXPECT_EQ(*parse_duration("30m"), 1800LL * 1'000'000'000);
  EXPECT_EQ(*parse_duration("2d"), 172800LL * 1'000'000'000);
  EXPECT_FALSE(parse_duration("2x").ok());
  EXPECT_FALSE(parse_duration("h").ok());
  int64_t now = 1'800'000'000'000'000'000;
  EXPECT_EQ(*parse_time_arg("1h", now), now - 3600LL * 1'000'000'000);
  EXPECT_EQ(*parse_time_arg("2026-11-23T16:13:20.5Z", now), 1795450400LL * 1'000'000'000 + 500'000'000);
  EXPECT_EQ(*parse_time_arg("2026-11-23T17:13:20+01:00", now), 1795450400LL * 1'000'000'000);
  // Found by fuzz/query_filter_fuzz.cc: these overflowed (UB) or read past the offset's end.
  EXPECT_FALSE(parse_duration("9223372036854775807s").ok());
  EXPECT_FALSE(parse_duration("200000w").ok());
  EXPECT_FALSE(parse_time_arg("26-11-23T16:00:00Z", now).ok());
  EXPECT_FALSE(parse_time_arg("9999-11-23T16:00:00Z", now).ok());
  EXPECT_FALSE(parse_time_arg("2026-11-23T16:00:00+1:2", now).ok());
  EXPECT_FALSE(parse_time_arg("2026-11-23T16:13:20Zjunk", now).ok());
}

TEST(QuerySql, SubtreeBoundIsTheNextByteAfterTheSlash) {
  QuerySpec spec;
  spec.path = "/srv/app/";
  auto q = build_query_sql(spec, SqlDialect::kPostgres);
  ASSERT_EQ(q.params.size(), 2u);
  EXPECT_EQ(std::get<Blob>(q.params[0]).bytes, "/srv/app/");
  EXPECT_EQ(std::get<Blob>(q.params[1]).bytes, "/srv/app0");
  // SQLite: the same, then the bounds of the hours to search (all of them).
  auto lite = build_query_sql(spec, SqlDialect::kSqlite);
  ASSERT_EQ(lite.params.size(), 4u);
  EXPECT_EQ(std::get<Blob>(lite.params[1]).bytes, "/srv/app0");
  EXPECT_EQ(std::get<int64_t>(lite.params[2]), std::numeric_limits<int64_t>::min() / kSqliteHourNs);
  EXPECT_EQ(std::get<int64_t>(lite.params[3]), std::numeric_limits<int64_t>::max() / kSqliteHourNs);
}

}  // namespace
}  // namespace fstrail::store
