#include "store/sqlite/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/text.h"
#include "core/unique_fd.h"
#include "store/query_sql.h"
#include "store/record.h"

namespace fstrail::store {
namespace {

// Ordered migrations; schema_version holds the last applied index + 1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE fstrail_events (
  time_ns INTEGER NOT NULL,
  host TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  path BLOB NOT NULL,
  old_path BLOB,
  is_dir INTEGER, dev INTEGER, ino INTEGER,
  actor_source TEXT NOT NULL,
  pid INTEGER, tid INTEGER, ppid INTEGER,
  uid INTEGER, gid INTEGER, euid INTEGER, egid INTEGER, loginuid INTEGER, sessionid INTEGER,
  comm BLOB, exe BLOB, cgroup BLOB,
  old_mode INTEGER, new_mode INTEGER, old_uid INTEGER, new_uid INTEGER, old_gid INTEGER, new_gid INTEGER,
  error INTEGER, lost INTEGER,
  backend TEXT NOT NULL,
  PRIMARY KEY (host, event_id)
) WITHOUT ROWID;
CREATE INDEX fstrail_events_time ON fstrail_events (time_ns);
CREATE INDEX fstrail_events_path ON fstrail_events (path, time_ns);
CREATE INDEX fstrail_events_old_path ON fstrail_events (old_path, time_ns) WHERE old_path IS NOT NULL;
)sql",
    // v2: the table is clustered by time. Events arrive in time order, so inserts append to the
    // table's b-tree instead of landing at random places, and "the last hour" is one range of it
    // (no separate time index). Secondary index entries carry the key, so (path) sorts by
    // (path, time_ns) too. Rows are copied in key order; the old table goes.
    R"sql(
CREATE TABLE fstrail_events_v2 (
  time_ns INTEGER NOT NULL,
  host TEXT NOT NULL,
  event_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  path BLOB NOT NULL,
  old_path BLOB,
  is_dir INTEGER, dev INTEGER, ino INTEGER,
  actor_source TEXT NOT NULL,
  pid INTEGER, tid INTEGER, ppid INTEGER,
  uid INTEGER, gid INTEGER, euid INTEGER, egid INTEGER, loginuid INTEGER, sessionid INTEGER,
  comm BLOB, exe BLOB, cgroup BLOB,
  old_mode INTEGER, new_mode INTEGER, old_uid INTEGER, new_uid INTEGER, old_gid INTEGER, new_gid INTEGER,
  error INTEGER, lost INTEGER,
  backend TEXT NOT NULL,
  PRIMARY KEY (time_ns, host, event_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO fstrail_events_v2 SELECT * FROM fstrail_events ORDER BY time_ns, host, event_id;
DROP TABLE fstrail_events;
ALTER TABLE fstrail_events_v2 RENAME TO fstrail_events;
CREATE INDEX fstrail_events_path ON fstrail_events (path);
CREATE INDEX fstrail_events_old_path ON fstrail_events (old_path) WHERE old_path IS NOT NULL;
)sql",
    // v3: the path indexes lead with the hour (kSqliteHour in query_sql.h, written exactly as
    // there). With (path) alone every insert went to a random leaf of an index over all history,
    // and each commit rewrote every leaf it touched into the WAL, whole: at 10 M stored events
    // that was most of the index per batch. Now a batch touches the current hour's part only.
    R"sql(
DROP INDEX fstrail_events_path;
DROP INDEX fstrail_events_old_path;
CREATE INDEX fstrail_events_hour_path ON fstrail_events (time_ns / 3600000000000, path);
CREATE INDEX fstrail_events_hour_old_path ON fstrail_events (time_ns / 3600000000000, old_path)
  WHERE old_path IS NOT NULL;
)sql",
    // v4: why events were lost (lost events only; docs/events.md lists the reasons).
    R"sql(
ALTER TABLE fstrail_events ADD COLUMN lost_reason TEXT;
)sql",
    // v5: guard alerts kept by `fstrail agent` (store/alert_store.h; docs/agent.md).
    R"sql(
CREATE TABLE fstrail_alerts (
  time_ns INTEGER NOT NULL,
  host TEXT NOT NULL,
  rule TEXT NOT NULL,
  type TEXT NOT NULL,
  kind TEXT,
  path BLOB NOT NULL,
  uid INTEGER, loginuid INTEGER,
  comm BLOB,
  json TEXT NOT NULL,
  PRIMARY KEY (time_ns, host, rule, type, path)
) WITHOUT ROWID;
CREATE INDEX fstrail_alerts_path ON fstrail_alerts (path, time_ns);
)sql",
};
static_assert(std::string_view(kSqliteHour) == "time_ns / 3600000000000", "the v3 indexes' expression");
constexpr int64_t kPageSize = 65536;
constexpr int64_t kWalCheckpointBytes = 512LL << 20;

constexpr const char* kInsertSql =
    "INSERT OR IGNORE INTO fstrail_events (time_ns, host, event_id, kind, path, old_path, is_dir, dev, ino, "
    "actor_source, pid, tid, ppid, uid, gid, euid, egid, loginuid, sessionid, comm, exe, cgroup, old_mode, "
    "new_mode, old_uid, new_uid, old_gid, new_gid, error, lost, backend, lost_reason) VALUES "
    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

bool is_unavailable(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_FULL || primary == SQLITE_IOERR ||
         primary == SQLITE_CANTOPEN || primary == SQLITE_READONLY || primary == SQLITE_NOMEM ||
         primary == SQLITE_PROTOCOL;
}

template <typename T>
void bind_opt(sqlite3_stmt* s, int i, const std::optional<T>& v) {
  if (v) sqlite3_bind_int64(s, i, static_cast<int64_t>(*v));
  else sqlite3_bind_null(s, i);
}

void bind_blob(sqlite3_stmt* s, int i, const std::optional<std::string_view>& v) {
  if (v) sqlite3_bind_blob64(s, i, v->data(), v->size(), SQLITE_STATIC);
  else sqlite3_bind_null(s, i);
}

std::optional<std::string> column_blob(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
  const void* p = sqlite3_column_blob(s, i);
  int n = sqlite3_column_bytes(s, i);
  return std::string(static_cast<const char*>(p), static_cast<size_t>(n));
}

template <typename T>
std::optional<T> column_opt(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
  return static_cast<T>(sqlite3_column_int64(s, i));
}

std::string column_text(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(s, i))) : "";
}

// mkdir -p with mode 0700 for each directory it creates (existing ones are left as they are).
Status make_private_directories(const std::filesystem::path& dir) {
  if (dir.empty()) return Ok{};
  struct stat st{};
  if (::stat(dir.c_str(), &st) == 0) return Ok{};
  if (Status parent = make_private_directories(dir.parent_path()); !parent) return parent;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Error{fmt::format("cannot create {}: {} (choose another place with --db sqlite:///path)",
                             escape_for_terminal(dir.string()), std::strerror(errno)),
                 errno};
  return Ok{};
}

class SqliteStore final : public EventStore {
 public:
  explicit SqliteStore(std::string path) : path_(std::move(path)) {}
  ~SqliteStore() override { close(); }

  Status open() {
    // The history says who touched what and when: only its owner reads it. Directories
    // fstrail creates are 0700; the file is created 0600 before SQLite opens it, and SQLite
    // gives its -wal and -shm files the database file's mode.
    auto parent = std::filesystem::path(path_).parent_path();
    if (Status made = make_private_directories(parent); !made) return made;
    {
      UniqueFd created(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
      if (!created.valid() && errno != EEXIST)
        return Error{fmt::format("cannot create {}: {} (choose another place with --db sqlite:///path)",
                                 escape_for_terminal(path_), std::strerror(errno)),
                     errno};
    }
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      return fail("cannot open");
    sqlite3_busy_timeout(db_, 5000);
    // The path indexes take inserts at random places of the current hour's part: with SQLite's
    // 2 MB default cache every insert re-reads B-tree pages through syscalls. A large cache and
    // mmap reads keep them in memory. 64 KiB pages: every commit writes each page it touched to
    // the WAL, and every checkpoint copies each page again, whole; a busy hour's random inserts
    // touch most of its leaves per commit, and SQLite's cost per page (WAL frame, checksum,
    // cache entry) is paid a sixteenth as often as with 4 KiB pages. (Takes effect when the
    // file is created; migrate() converts files older than schema version 2.)
    std::string page_size = fmt::format("PRAGMA page_size={}", kPageSize);
    for (const char* pragma : {page_size.c_str(), "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                               "PRAGMA cache_size=-262144", "PRAGMA mmap_size=1073741824", "PRAGMA temp_store=MEMORY"})
      if (sqlite3_exec(db_, pragma, nullptr, nullptr, nullptr) != SQLITE_OK) return fail(pragma);
    if (Status s = migrate(); !s) return s;
    // Checkpoint when the WAL reaches kWalCheckpointBytes, whatever this file's page size: a
    // checkpoint copies each page once however often the WAL holds it, so a larger WAL copies
    // less per event; the limit keeps the file from staying that large after a burst.
    std::string wal = fmt::format("PRAGMA wal_autocheckpoint={}; PRAGMA journal_size_limit={}",
                                  kWalCheckpointBytes / current_page_size(), kWalCheckpointBytes);
    if (sqlite3_exec(db_, wal.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return fail(wal);
    if (sqlite3_prepare_v3(db_, kInsertSql, -1, SQLITE_PREPARE_PERSISTENT, &insert_, nullptr) != SQLITE_OK)
      return fail("cannot prepare insert");
    return Ok{};
  }

  std::string_view kind() const override { return "sqlite"; }

  std::optional<InsertError> insert_records(std::span<const std::string_view> batch) override {
    if (!db_) {
      if (Status s = reconnect(); !s) return InsertError{FailureKind::kUnavailable, s.error()};
    }
    if (int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); rc != SQLITE_OK)
      return classify(rc, "cannot begin");
    for (const auto& row : batch) {
      if (int rc = insert_row(row); rc != SQLITE_DONE) {
        auto err = classify(rc, "cannot insert");
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return err;
      }
    }
    if (int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr); rc != SQLITE_OK) {
      auto err = classify(rc, "cannot commit");
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return err;
    }
    return std::nullopt;
  }

  Result<std::vector<StoredEvent>> query(const QuerySpec& spec) override {
    SqlQuery q = build_query_sql(spec, SqlDialect::kSqlite, since_fraction(spec));
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, q.sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
      return fail("cannot prepare query").error();
    bind_query_params(stmt, q.params);
    std::vector<StoredEvent> out;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) out.push_back(decode(stmt));
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return fail("query failed").error();
    return out;
  }

  Status apply_retention(int64_t keep_ns) override {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, "DELETE FROM fstrail_events WHERE time_ns < ?", -1, &stmt, nullptr) != SQLITE_OK)
      return fail("cannot prepare retention");
    // Whole days, like the PostgreSQL partitions.
    int64_t day = 86400LL * 1'000'000'000;
    sqlite3_bind_int64(stmt, 1, floor_div(realtime_now_ns() - keep_ns, day) * day);
    int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return fail("retention failed");
    return Ok{};
  }

  Status reconnect() override {
    close();
    return open();
  }

 private:
  // The share of the stored time span that --since covers.
  double since_fraction(const QuerySpec& spec) {
    if (!spec.since_ns) return -1;
    sqlite3_stmt* stmt = nullptr;
    // Two subqueries: SQLite's min/max optimization (one index probe) works for a lone min() or max().
    if (sqlite3_prepare_v2(db_, "SELECT (SELECT min(time_ns) FROM fstrail_events), (SELECT max(time_ns) FROM fstrail_events)",
                           -1, &stmt, nullptr) != SQLITE_OK)
      return -1;
    double fraction = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
      double lo = static_cast<double>(sqlite3_column_int64(stmt, 0)), hi = static_cast<double>(sqlite3_column_int64(stmt, 1));
      if (hi > lo) fraction = std::clamp((hi - static_cast<double>(*spec.since_ns)) / (hi - lo), 0.0, 1.0);
    }
    sqlite3_finalize(stmt);
    return fraction;
  }

  Status fail(std::string_view what) {
    return Error{fmt::format("SQLite {}: {}: {}", path_, what, db_ ? sqlite3_errmsg(db_) : "out of memory")};
  }

  InsertError classify(int rc, std::string_view what) {
    return InsertError{is_unavailable(rc) ? FailureKind::kUnavailable : FailureKind::kBadData, fail(what).error()};
  }

  void close() {
    if (insert_) sqlite3_finalize(insert_);
    insert_ = nullptr;
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
  }

  Status migrate() {
    if (sqlite3_exec(db_, "CREATE TABLE IF NOT EXISTS fstrail_schema_version (version INTEGER NOT NULL)", nullptr,
                     nullptr, nullptr) != SQLITE_OK)
      return fail("cannot create schema_version");
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db_, "SELECT coalesce(max(version), 0) FROM fstrail_schema_version", -1, &stmt, nullptr);
    int64_t version = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
    sqlite3_finalize(stmt);
    const int64_t latest = static_cast<int64_t>(std::size(kMigrations));
    if (version > latest)
      return Error{fmt::format("SQLite {}: schema version {} is newer than this fstrail ({}): upgrade fstrail",
                               path_, version, latest)};
    for (int64_t v = version; v < latest; ++v) {
      std::string sql = fmt::format("BEGIN IMMEDIATE; {} INSERT INTO fstrail_schema_version VALUES ({}); COMMIT;",
                                    kMigrations[v], v + 1);
      if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
        Status s = fail(fmt::format("migration {}", v + 1));
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return s;
      }
    }
    if (version >= 1 && version < 2) convert_page_size();
    return Ok{};
  }

  int64_t current_page_size() {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db_, "PRAGMA page_size", -1, &stmt, nullptr);
    int64_t size = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 4096;
    sqlite3_finalize(stmt);
    return size;
  }

  // A file made before version 2 has 4 KiB pages; the page size of a WAL database changes only
  // through VACUUM outside WAL mode. Best effort: it needs the file to itself (another process
  // reading it keeps the old size, which works just as well, only slower).
  void convert_page_size() {
    if (current_page_size() >= kPageSize) return;
    // VACUUM's copy goes to a file, not memory (temp_store=MEMORY is for sorting).
    std::string sql =
        fmt::format("PRAGMA temp_store=FILE; PRAGMA journal_mode=DELETE; PRAGMA page_size={}; VACUUM;", kPageSize);
    sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_exec(db_, "PRAGMA journal_mode=WAL; PRAGMA temp_store=MEMORY", nullptr, nullptr, nullptr);
  }

  int insert_row(std::string_view record) {
    EventRecordView e;
    if (!parse_record(record, e)) return SQLITE_MISMATCH;
    sqlite3_stmt* s = insert_;
    sqlite3_reset(s);
    int i = 1;
    sqlite3_bind_int64(s, i++, e.time_ns);
    sqlite3_bind_text(s, i++, e.host.data(), static_cast<int>(e.host.size()), SQLITE_STATIC);
    sqlite3_bind_int64(s, i++, e.event_id);
    auto kind = kind_name(e.kind);
    sqlite3_bind_text(s, i++, kind.data(), static_cast<int>(kind.size()), SQLITE_STATIC);
    sqlite3_bind_blob64(s, i++, e.path.data(), e.path.size(), SQLITE_STATIC);
    bind_blob(s, i++, e.old_path);
    bind_opt(s, i++, e.is_dir);
    bind_opt(s, i++, e.dev);
    bind_opt(s, i++, e.ino);
    auto source = actor_source_name(e.actor_source);
    sqlite3_bind_text(s, i++, source.data(), static_cast<int>(source.size()), SQLITE_STATIC);
    for (const auto* v : {&e.pid, &e.tid, &e.ppid}) bind_opt(s, i++, *v);
    for (const auto* v : {&e.uid, &e.gid, &e.euid, &e.egid, &e.loginuid, &e.sessionid}) bind_opt(s, i++, *v);
    for (const auto* v : {&e.comm, &e.exe, &e.cgroup}) bind_blob(s, i++, *v);
    for (const auto* v : {&e.old_mode, &e.new_mode, &e.old_uid, &e.new_uid, &e.old_gid, &e.new_gid})
      bind_opt(s, i++, *v);
    bind_opt(s, i++, e.error);
    bind_opt(s, i++, e.lost);
    sqlite3_bind_text(s, i++, e.backend.data(), static_cast<int>(e.backend.size()), SQLITE_STATIC);
    if (e.lost_reason) {
      auto reason = loss_reason_name(*e.lost_reason);
      sqlite3_bind_text(s, i++, reason.data(), static_cast<int>(reason.size()), SQLITE_STATIC);
    } else {
      sqlite3_bind_null(s, i++);
    }
    return sqlite3_step(s);
  }

  static StoredEvent decode(sqlite3_stmt* s) {
    StoredEvent row;
    Event& e = row.event;
    int i = 0;
    e.time_ns = sqlite3_column_int64(s, i++);
    row.host = column_text(s, i++);
    row.event_id = sqlite3_column_int64(s, i++);
    e.kind = kind_from_name(column_text(s, i++)).value_or(EventKind::kCreate);
    e.path = column_blob(s, i++).value_or("");
    e.old_path = column_blob(s, i++);
    e.is_dir = column_opt<bool>(s, i++);
    e.dev = column_opt<uint64_t>(s, i++);
    e.ino = column_opt<uint64_t>(s, i++);
    std::string source = column_text(s, i++);
    e.actor_source = source == "kernel" ? ActorSource::kKernel : source == "procfs" ? ActorSource::kProcfs
                                                                                    : ActorSource::kNone;
    for (auto* v : {&e.pid, &e.tid, &e.ppid}) *v = column_opt<int32_t>(s, i++);
    for (auto* v : {&e.uid, &e.gid, &e.euid, &e.egid, &e.loginuid, &e.sessionid}) *v = column_opt<uint32_t>(s, i++);
    for (auto* v : {&e.comm, &e.exe, &e.cgroup}) *v = column_blob(s, i++);
    for (auto* v : {&e.old_mode, &e.new_mode, &e.old_uid, &e.new_uid, &e.old_gid, &e.new_gid})
      *v = column_opt<uint32_t>(s, i++);
    e.error = column_opt<int32_t>(s, i++);
    e.lost = column_opt<uint64_t>(s, i++);
    e.backend = intern_backend_name(column_text(s, i++));
    e.lost_reason = loss_reason_from_name(column_text(s, i++)).value_or(LossReason::kUnknown);
    return row;
  }

  std::string path_;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
};

}  // namespace

void bind_query_params(sqlite3_stmt* stmt, const std::vector<SqlParam>& params) {
  for (size_t i = 0; i < params.size(); ++i) {
    int idx = static_cast<int>(i + 1);
    if (auto* n = std::get_if<int64_t>(&params[i])) sqlite3_bind_int64(stmt, idx, *n);
    else if (auto* t = std::get_if<std::string>(&params[i]))
      sqlite3_bind_text(stmt, idx, t->data(), static_cast<int>(t->size()), SQLITE_STATIC);
    else {
      const auto& b = std::get<Blob>(params[i]).bytes;
      sqlite3_bind_blob(stmt, idx, b.data(), static_cast<int>(b.size()), SQLITE_STATIC);
    }
  }
}

std::span<const char* const> sqlite_migrations() { return kMigrations; }

Result<std::unique_ptr<EventStore>> open_sqlite_store(const std::string& path) {
  auto store = std::make_unique<SqliteStore>(path);
  if (Status s = store->open(); !s) return s.error();
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace fstrail::store
