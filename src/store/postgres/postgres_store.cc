#include "store/postgres/postgres_store.h"

#include <arpa/inet.h>
#include <endian.h>
#include <libpq-fe.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <set>

#include <fmt/format.h>

#include "core/clock.h"
#include "store/query_sql.h"
#include "store/record.h"

namespace fstrail::store {
namespace {

constexpr int64_t kNsPerUs = 1000;
constexpr int64_t kNsPerDay = 86400LL * 1'000'000'000;
// PostgreSQL timestamps count microseconds from 2000-01-01 UTC.
constexpr int64_t kPgEpochUnixUs = 946684800LL * 1'000'000;
// Partitions exist for days in [today - kPastDays, today + kFutureDays]; times outside that
// window are absurd (a wrong clock) and land in the default partition instead of failing.
constexpr int64_t kPastDays = 3650;
constexpr int64_t kFutureDays = 3;

// Columns of fstrail_events, in table order, as binary COPY sends them.
constexpr uint16_t kCopyColumns = 33;

// Ordered migrations; fstrail_schema_version holds every applied version.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE fstrail_events (
  time timestamptz NOT NULL,           -- microseconds; the partition key
  time_ns_rem smallint NOT NULL,       -- nanoseconds below the microsecond (0..999)
  host text NOT NULL,
  event_id bigint NOT NULL,            -- unique per host (nanosecond-clock ids, never reused)
  kind text NOT NULL,
  path bytea NOT NULL,                 -- file names are bytes, not UTF-8
  old_path bytea,
  is_dir boolean, dev bigint, ino bigint,
  actor_source text NOT NULL,
  pid integer, tid integer, ppid integer,
  uid bigint, gid bigint, euid bigint, egid bigint, loginuid bigint, sessionid bigint,
  comm bytea, exe bytea, cgroup bytea,
  old_mode bigint, new_mode bigint, old_uid bigint, new_uid bigint, old_gid bigint, new_gid bigint,
  error integer, lost bigint,
  backend text NOT NULL
) PARTITION BY RANGE (time);
-- Partitioned unique indexes must contain the partition key: (host, event_id) is unique on
-- its own, time rides along. host leads, so Citus can distribute by host.
CREATE UNIQUE INDEX fstrail_events_host_id ON fstrail_events (host, event_id, time);
CREATE INDEX fstrail_events_time ON fstrail_events USING brin (time);
CREATE INDEX fstrail_events_path ON fstrail_events (path, time);
CREATE INDEX fstrail_events_old_path ON fstrail_events (old_path, time) WHERE old_path IS NOT NULL;
CREATE TABLE fstrail_events_default PARTITION OF fstrail_events DEFAULT;
-- pg_partman 4.x convention: a template table for properties the parent cannot hold.
CREATE TABLE fstrail_events_template (LIKE fstrail_events);
)sql",
    // v2: "who touched P in the last hour" reads the last hour of one b-tree, (time, path), checking
    // the path inside the index (renames: the partial (time, old_path)); exact paths over all time
    // use (path) and the partial (old_path). Appending in time order keeps the (time, ...) indexes
    // cheap to maintain; only (path) and the rename-only (old_path) take inserts at random places.
    R"sql(
DROP INDEX fstrail_events_path;
DROP INDEX fstrail_events_old_path;
CREATE INDEX fstrail_events_time_path ON fstrail_events (time, path);
CREATE INDEX fstrail_events_path ON fstrail_events (path);
CREATE INDEX fstrail_events_time_old_path ON fstrail_events (time, old_path) WHERE old_path IS NOT NULL;
CREATE INDEX fstrail_events_old_path ON fstrail_events (old_path) WHERE old_path IS NOT NULL;
)sql",
    // v3: why events were lost (lost events only; docs/events.md lists the reasons). Binary
    // COPY sends every column in table order: the new one is last.
    R"sql(
ALTER TABLE fstrail_events ADD COLUMN lost_reason text;
ALTER TABLE fstrail_events_template ADD COLUMN lost_reason text;
)sql",
    // v4: guard alerts kept by `fstrail agent` (store/alert_store.h; docs/agent.md). Few rows:
    // not partitioned; retention deletes by time.
    R"sql(
CREATE TABLE fstrail_alerts (
  time_ns bigint NOT NULL,
  host text NOT NULL,
  rule text NOT NULL,
  type text NOT NULL,
  kind text,
  path bytea NOT NULL,
  uid bigint, loginuid bigint,
  comm bytea,
  json text NOT NULL,
  PRIMARY KEY (time_ns, host, rule, type, path)
);
CREATE INDEX fstrail_alerts_path ON fstrail_alerts (path, time_ns);
)sql",
};

// SQLSTATE classes that mean "this batch's data is refused" rather than "the database is not
// available": data exceptions (22), integrity (23), program limits such as a too-long row (54).
bool is_data_error(const char* sqlstate) {
  return sqlstate && (std::strncmp(sqlstate, "22", 2) == 0 || std::strncmp(sqlstate, "23", 2) == 0 ||
                      std::strncmp(sqlstate, "54", 2) == 0);
}

void put16(std::string& out, uint16_t v) {
  v = htobe16(v);
  out.append(reinterpret_cast<const char*>(&v), 2);
}
void put32(std::string& out, uint32_t v) {
  v = htobe32(v);
  out.append(reinterpret_cast<const char*>(&v), 4);
}
void put64(std::string& out, uint64_t v) {
  v = htobe64(v);
  out.append(reinterpret_cast<const char*>(&v), 8);
}
uint16_t get16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return be16toh(v);
}
uint32_t get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return be32toh(v);
}
uint64_t get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return be64toh(v);
}

// The event time of a record (its first field: see store/record.cc), without parsing the rest.
std::optional<int64_t> record_time_ns(std::string_view record) {
  if (record.size() < sizeof(int64_t)) return std::nullopt;
  int64_t t;
  std::memcpy(&t, record.data(), sizeof t);
  return t;
}

std::string day_name(int64_t day) {  // day number since the Unix epoch → p2026_11_23
  time_t t = static_cast<time_t>(day * 86400);
  struct tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}_{:02}_{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
std::string day_literal(int64_t day) {
  time_t t = static_cast<time_t>(day * 86400);
  struct tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02} 00:00:00+00", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

struct PgResult {
  PGresult* r;
  explicit PgResult(PGresult* res) : r(res) {}
  ~PgResult() { PQclear(r); }
  PgResult(const PgResult&) = delete;
  PgResult& operator=(const PgResult&) = delete;
  ExecStatusType status() const { return PQresultStatus(r); }
  const char* sqlstate() const { return PQresultErrorField(r, PG_DIAG_SQLSTATE); }
};

std::string& postgres_password() {
  static std::string password;
  return password;
}

}  // namespace

PGconn* connect_postgres(const std::string& conninfo) {
  const std::string& password = postgres_password();
  const char* keys[] = {"application_name", "connect_timeout", "keepalives_idle", "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "dbname",
                        password.empty() ? nullptr : "password", nullptr};
  const char* values[] = {"fstrail", "10", "30", "10", "3", "30000", conninfo.c_str(),
                          password.empty() ? nullptr : password.c_str(), nullptr};
  return PQconnectdbParams(keys, values, 1);
}

namespace {

class PostgresStore final : public EventStore {
 public:
  explicit PostgresStore(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  ~PostgresStore() override {
    if (conn_) PQfinish(conn_);
  }

  std::string_view kind() const override { return "postgresql"; }

  Status reconnect() override {
    if (conn_) PQfinish(conn_);
    known_days_.clear();
    staging_ready_ = false;
    // Our defaults first: the user's connection string (expanded from dbname) overrides them.
    // A password from --db-password-file comes after dbname, so it wins over the string's.
    conn_ = connect_postgres(conninfo_);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      std::string msg = conn_ ? PQerrorMessage(conn_) : "out of memory";
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      for (auto& c : msg) if (c == '\n' || c == '\t') c = ' ';
      return Error{fmt::format("cannot connect to PostgreSQL {}: {}", redact_url(conninfo_),
                               redact_message(msg, conninfo_))};
    }
    enlarge_send_buffer();
    exec("SET client_min_messages = warning");
    if (Status s = migrate(); !s) return s;
    return Ok{};
  }

  std::optional<InsertError> insert_records(std::span<const std::string_view> batch) override {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      if (Status s = reconnect(); !s) return InsertError{FailureKind::kUnavailable, s.error()};
    }
    // The days first, so the partitions exist before COPY starts (records are parsed, and
    // checked, as they are encoded for COPY).
    days_.clear();
    for (const auto& record : batch) {
      auto time_ns = record_time_ns(record);
      if (!time_ns) return InsertError{FailureKind::kBadData, Error{"a record of the batch is corrupt"}};
      int64_t day = floor_div(*time_ns, kNsPerDay);
      if (days_.empty() || days_.back() != day) days_.push_back(day);
    }
    if (Status s = ensure_partitions(days_); !s) return InsertError{FailureKind::kUnavailable, s.error()};

    // Fast path: COPY straight into the partitions (its own transaction). A unique violation
    // means part of the batch is a replay: redo it through a staging table with ON CONFLICT.
    auto err = copy_into("COPY fstrail_events FROM STDIN (FORMAT binary)", batch);
    if (!err) return std::nullopt;
    if (err->sqlstate != "23505") return err->to_insert_error();
    if (Status s = ensure_staging(); !s) return InsertError{FailureKind::kUnavailable, s.error()};
    if (auto e = command("BEGIN")) return e->to_insert_error();
    err = copy_into("COPY fstrail_staging FROM STDIN (FORMAT binary)", batch);
    if (!err) err = command("INSERT INTO fstrail_events SELECT * FROM fstrail_staging ON CONFLICT DO NOTHING");
    if (!err) err = command("COMMIT");
    if (err) {
      exec("ROLLBACK");
      return err->to_insert_error();
    }
    return std::nullopt;
  }

  Result<std::vector<StoredEvent>> query(const QuerySpec& spec) override {
    SqlQuery q = build_query_sql(spec, SqlDialect::kPostgres);
    std::vector<Oid> types;
    std::vector<std::string> storage;
    storage.reserve(q.params.size());
    std::vector<const char*> values;
    std::vector<int> lengths, formats;
    for (const auto& p : q.params) {
      if (auto* n = std::get_if<int64_t>(&p)) {
        std::string be;
        put64(be, static_cast<uint64_t>(*n));
        storage.push_back(be);
        types.push_back(20);
      } else if (auto* t = std::get_if<std::string>(&p)) {
        storage.push_back(*t);
        types.push_back(25);
      } else if (auto* ts = std::get_if<PgTimestamp>(&p)) {
        std::string be;
        put64(be, static_cast<uint64_t>(ts->unix_us - kPgEpochUnixUs));
        storage.push_back(be);
        types.push_back(1184);  // timestamptz: binary is microseconds since 2000-01-01
      } else {
        storage.push_back(std::get<Blob>(p).bytes);
        types.push_back(17);
      }
      values.push_back(storage.back().data());
      lengths.push_back(static_cast<int>(storage.back().size()));
      formats.push_back(1);
    }
    PgResult res(PQexecParams(conn_, q.sql.c_str(), static_cast<int>(values.size()), types.data(), values.data(),
                              lengths.data(), formats.data(), 1));
    if (res.status() != PGRES_TUPLES_OK) return error("query failed", res.r);
    std::vector<StoredEvent> out;
    int rows = PQntuples(res.r);
    out.reserve(static_cast<size_t>(rows));
    for (int r = 0; r < rows; ++r) out.push_back(decode(res.r, r));
    return out;
  }

  Status apply_retention(int64_t keep_ns) override {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      if (Status s = reconnect(); !s) return s;
    }
    int64_t cutoff_day = floor_div(realtime_now_ns() - keep_ns, kNsPerDay);
    PgResult res(PQexec(conn_,
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'fstrail_events'::regclass AND c.relname ~ '^fstrail_events_p[0-9_]+$' "
                        "ORDER BY 1"));
    if (res.status() != PGRES_TUPLES_OK) return error("cannot list partitions", res.r);
    for (int r = 0; r < PQntuples(res.r); ++r) {
      std::string name = PQgetvalue(res.r, r, 0);
      struct tm tm{};
      if (!strptime(name.c_str() + std::strlen("fstrail_events_p"), "%Y_%m_%d", &tm)) continue;
      int64_t day = timegm(&tm) / 86400;
      if (day + 1 > cutoff_day) continue;  // the partition still holds days we keep
      if (auto e = command(fmt::format("DROP TABLE IF EXISTS {}", name))) return e->error;
      known_days_.erase(day);
    }
    return Ok{};
  }

 private:
  struct PgFailure {
    std::string sqlstate;
    Error error;
    bool unavailable;
    InsertError to_insert_error() const {
      return InsertError{unavailable ? FailureKind::kUnavailable : FailureKind::kBadData, error};
    }
  };

  Error error(std::string_view what, PGresult* res) {
    std::string msg = res ? PQresultErrorMessage(res) : "";
    if (msg.empty()) msg = PQerrorMessage(conn_);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    for (auto& c : msg) if (c == '\n' || c == '\t') c = ' ';
    return Error{fmt::format("PostgreSQL {}: {}: {}", redact_url(conninfo_), what, redact_message(msg, conninfo_))};
  }

  PgFailure failure(std::string_view what, PGresult* res) {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    bool data = is_data_error(state) && PQstatus(conn_) == CONNECTION_OK;
    return PgFailure{state ? state : "", error(what, res), !data};
  }

  void exec(const char* sql) { PQclear(PQexec(conn_, sql)); }

  // A batch is ~3 MB of COPY data. With the default socket send buffer (~200 KB) the writer
  // blocks in poll() every ~100 KB until the server has read the data, a context switch each
  // time; with room for a whole batch it hands the kernel the batch and waits once, for the
  // result. SO_SNDBUFFORCE (root) passes the system's wmem_max; otherwise SO_SNDBUF gets what
  // wmem_max allows. Best effort: a smaller buffer only costs CPU.
  void enlarge_send_buffer() {
    int fd = PQsocket(conn_);
    if (fd < 0) return;
    int size = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }

  std::optional<PgFailure> command(const std::string& sql) {
    PgResult res(PQexec(conn_, sql.c_str()));
    if (res.status() == PGRES_COMMAND_OK || res.status() == PGRES_TUPLES_OK) return std::nullopt;
    return failure(sql.substr(0, sql.find(' ', 20)), res.r);
  }

  // Streams the batch as binary COPY in chunks of ~kCopyChunk bytes, each transcoded from the
  // records into the same small buffer and handed to libpq at once: the server starts on the
  // first rows while the rest are encoded, and the bytes are copied from cache rather than from
  // a buffer of the whole batch (~3 MB per 10k rows).
  std::optional<PgFailure> copy_into(const char* sql, std::span<const std::string_view> batch) {
    {
      PgResult start(PQexec(conn_, sql));
      if (start.status() != PGRES_COPY_IN) return failure("cannot start COPY", start.r);
    }
    constexpr size_t kCopyChunk = 128 * 1024;
    bool sent = true;
    size_t used = 0;
    auto send = [&] {
      if (sent && used > 0) sent = PQputCopyData(conn_, copy_buffer_.data(), static_cast<int>(used)) == 1;
      used = 0;
    };
    auto room = [&](size_t n) {  // grows only for a record larger than the chunk
      if (copy_buffer_.size() < used + n) copy_buffer_.resize(std::max(used + n, kCopyChunk + kCopyRowSlack));
    };
    std::string header;
    append_copy_header(header);
    room(header.size());
    std::memcpy(copy_buffer_.data(), header.data(), header.size());
    used = header.size();
    bool corrupt = false;
    for (const auto& record : batch) {
      room(record.size() + kCopyRowSlack);
      char* end = transcode_copy_row(record, copy_buffer_.data() + used);
      if (!end) {
        corrupt = true;
        break;
      }
      used = static_cast<size_t>(end - copy_buffer_.data());
      if (used >= kCopyChunk) send();
      if (!sent) break;
    }
    if (corrupt) {  // nothing of the batch is committed; the caller bisects it
      PQputCopyEnd(conn_, "fstrail: corrupt record");
      while (PGresult* r = PQgetResult(conn_)) PQclear(r);
      if (PQstatus(conn_) != CONNECTION_OK) return failure("COPY failed", nullptr);
      return PgFailure{"", Error{"a record of the batch is corrupt"}, false};
    }
    room(2);
    std::string trailer;
    append_copy_trailer(trailer);
    std::memcpy(copy_buffer_.data() + used, trailer.data(), trailer.size());
    used += trailer.size();
    send();
    if (PQputCopyEnd(conn_, sent ? nullptr : "fstrail: send failed") != 1) sent = false;
    std::optional<PgFailure> result;
    while (PGresult* r = PQgetResult(conn_)) {
      PgResult res(r);
      if (res.status() == PGRES_COPY_IN) {  // the end was not sent (connection trouble): abort, once
        if (!result) result = failure("COPY failed", nullptr);
        if (PQputCopyEnd(conn_, "fstrail: aborted") != 1 || PQstatus(conn_) != CONNECTION_OK) break;
        continue;
      }
      if (res.status() != PGRES_COMMAND_OK && !result) result = failure("COPY failed", res.r);
    }
    if (!sent && !result) result = failure("COPY failed", nullptr);
    return result;
  }

  Status ensure_staging() {
    if (staging_ready_) return Ok{};
    if (auto e = command("CREATE TEMP TABLE IF NOT EXISTS fstrail_staging (LIKE fstrail_events) "
                         "ON COMMIT DELETE ROWS"))
      return e->error;
    staging_ready_ = true;
    return Ok{};
  }

  Status migrate() {
    if (auto e = command("BEGIN")) return e->error;
    // Many hosts may start at once against one database: one migrates, the others wait.
    if (auto e = command("SELECT pg_advisory_xact_lock(7235468021)")) return e->error;
    if (auto e = command("CREATE TABLE IF NOT EXISTS fstrail_schema_version ("
                         "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")) {
      exec("ROLLBACK");
      return e->error;
    }
    PgResult res(PQexec(conn_, "SELECT coalesce(max(version), 0) FROM fstrail_schema_version"));
    if (res.status() != PGRES_TUPLES_OK) {
      exec("ROLLBACK");
      return error("cannot read schema version", res.r);
    }
    int version = std::atoi(PQgetvalue(res.r, 0, 0));
    const int latest = static_cast<int>(std::size(kMigrations));
    if (version > latest) {
      exec("ROLLBACK");
      return Error{fmt::format("PostgreSQL {}: schema version {} is newer than this fstrail ({}): upgrade fstrail",
                               redact_url(conninfo_), version, latest)};
    }
    for (int v = version; v < latest; ++v) {
      if (auto e = command(kMigrations[v])) {
        exec("ROLLBACK");
        return e->error;
      }
      if (auto e = command(fmt::format("INSERT INTO fstrail_schema_version (version) VALUES ({})", v + 1))) {
        exec("ROLLBACK");
        return e->error;
      }
    }
    if (auto e = command("COMMIT")) return e->error;
    int64_t today = floor_div(realtime_now_ns(), kNsPerDay);
    for (int64_t d = today; d <= today + kFutureDays; ++d)
      if (Status s = create_partition(d); !s) return s;
    return Ok{};
  }

  Status ensure_partitions(const std::vector<int64_t>& days) {
    int64_t today = floor_div(realtime_now_ns(), kNsPerDay);
    for (int64_t day : days) {
      if (day < today - kPastDays || day > today + kFutureDays) continue;  // → default partition
      if (known_days_.count(day)) continue;
      if (Status s = create_partition(day); !s) return s;
    }
    return Ok{};
  }

  // Creates the partition of `day` unless it exists, moving any rows the default partition
  // holds for that day into it (pg_partman's partition_data does the same).
  Status create_partition(int64_t day) {
    std::string name = "fstrail_events_p" + day_name(day);
    std::string from = day_literal(day), to = day_literal(day + 1);
    std::string sql = fmt::format(
        "BEGIN;"
        "SELECT pg_advisory_xact_lock(7235468022);"
        "DO $fstrail$ BEGIN "
        "IF to_regclass('{0}') IS NULL THEN "
        "  CREATE TEMP TABLE fstrail_moved ON COMMIT DROP AS WITH d AS (DELETE FROM fstrail_events_default "
        "    WHERE time >= '{1}' AND time < '{2}' RETURNING *) SELECT * FROM d;"
        "  CREATE TABLE {0} PARTITION OF fstrail_events FOR VALUES FROM ('{1}') TO ('{2}');"
        "  INSERT INTO fstrail_events SELECT * FROM fstrail_moved;"
        "END IF; END $fstrail$;"
        "COMMIT;",
        name, from, to);
    PgResult res(PQexec(conn_, sql.c_str()));
    if (res.status() != PGRES_COMMAND_OK) {
      Error e = error(fmt::format("cannot create partition {}", name), res.r);
      exec("ROLLBACK");
      return e;
    }
    known_days_.insert(day);
    return Ok{};
  }

  static StoredEvent decode(PGresult* res, int r) {
    StoredEvent row;
    Event& e = row.event;
    int c = 0;
    auto null = [&](int col) { return PQgetisnull(res, r, col) != 0; };
    auto val = [&](int col) { return PQgetvalue(res, r, col); };
    auto bytes = [&](int col) { return std::string(val(col), static_cast<size_t>(PQgetlength(res, r, col))); };
    auto opt_bytes = [&](int col) -> std::optional<std::string> {
      if (null(col)) return std::nullopt;
      return bytes(col);
    };
    auto opt_i8 = [&](int col) -> std::optional<int64_t> {
      if (null(col)) return std::nullopt;
      return static_cast<int64_t>(get64(val(col)));
    };
    auto opt_i4 = [&](int col) -> std::optional<int32_t> {
      if (null(col)) return std::nullopt;
      return static_cast<int32_t>(get32(val(col)));
    };
    int64_t us = static_cast<int64_t>(get64(val(c++))) + kPgEpochUnixUs;
    int64_t rem = static_cast<int16_t>(get16(val(c++)));
    e.time_ns = us * kNsPerUs + rem;
    row.host = bytes(c++);
    row.event_id = static_cast<int64_t>(get64(val(c++)));
    e.kind = kind_from_name(bytes(c++)).value_or(EventKind::kCreate);
    e.path = bytes(c++);
    e.old_path = opt_bytes(c++);
    if (!null(c)) e.is_dir = *val(c) != 0;
    ++c;
    if (auto v = opt_i8(c++)) e.dev = static_cast<uint64_t>(*v);
    if (auto v = opt_i8(c++)) e.ino = static_cast<uint64_t>(*v);
    std::string source = bytes(c++);
    e.actor_source = source == "kernel" ? ActorSource::kKernel : source == "procfs" ? ActorSource::kProcfs
                                                                                    : ActorSource::kNone;
    for (auto* v : {&e.pid, &e.tid, &e.ppid}) *v = opt_i4(c++);
    for (auto* v : {&e.uid, &e.gid, &e.euid, &e.egid, &e.loginuid, &e.sessionid})
      if (auto x = opt_i8(c++)) *v = static_cast<uint32_t>(*x);
    for (auto* v : {&e.comm, &e.exe, &e.cgroup}) *v = opt_bytes(c++);
    for (auto* v : {&e.old_mode, &e.new_mode, &e.old_uid, &e.new_uid, &e.old_gid, &e.new_gid})
      if (auto x = opt_i8(c++)) *v = static_cast<uint32_t>(*x);
    e.error = opt_i4(c++);
    if (auto v = opt_i8(c++)) e.lost = static_cast<uint64_t>(*v);
    e.backend = intern_backend_name(bytes(c++));
    if (auto reason = opt_bytes(c++)) e.lost_reason = loss_reason_from_name(*reason).value_or(LossReason::kUnknown);
    return row;
  }

  std::string conninfo_;
  PGconn* conn_ = nullptr;
  std::set<int64_t> known_days_;
  bool staging_ready_ = false;
  std::vector<char> copy_buffer_;
  std::vector<int64_t> days_;
};

}  // namespace

void append_copy_header(std::string& out) {
  static const char kSignature[] = "PGCOPY\n\377\r\n";
  out.append(kSignature, 11);
  put32(out, 0);  // flags
  put32(out, 0);  // header extension length
}

void append_copy_trailer(std::string& out) { put16(out, 0xffff); }

namespace {

// One tuple of the binary COPY stream, written in two passes over the same code: Sizer counts
// the bytes, Writer stores them through a raw pointer into space reserved once per row. (Appending
// field by field to a std::string checks capacity and calls out of line ~70 times per row.)
struct Sizer {
  size_t n = 0;
  void u16(uint16_t) { n += 2; }
  void u32(uint32_t) { n += 4; }
  void u64(uint64_t) { n += 8; }
  void u8(uint8_t) { n += 1; }
  void bytes(std::string_view b) { n += b.size(); }
};
struct Writer {
  char* p;
  void u16(uint16_t v) {
    v = htobe16(v);
    std::memcpy(p, &v, 2);
    p += 2;
  }
  void u32(uint32_t v) {
    v = htobe32(v);
    std::memcpy(p, &v, 4);
    p += 4;
  }
  void u64(uint64_t v) {
    v = htobe64(v);
    std::memcpy(p, &v, 8);
    p += 8;
  }
  void u8(uint8_t v) { *p++ = static_cast<char>(v); }
  void bytes(std::string_view b) {
    if (b.empty()) return;  // an empty view may have a null data()
    std::memcpy(p, b.data(), b.size());
    p += b.size();
  }
};

template <typename Out>
void copy_tuple(Out& o, const EventRecordView& e) {
  auto null = [&] { o.u32(0xffffffffu); };
  auto text = [&](std::string_view b) {
    o.u32(static_cast<uint32_t>(b.size()));
    o.bytes(b);
  };
  auto opt_text = [&](const std::optional<std::string_view>& b) {
    if (b) text(*b);
    else null();
  };
  auto int8 = [&](uint64_t v) {
    o.u32(8);
    o.u64(v);
  };
  auto opt_int8 = [&](const auto& v) {
    if (v) int8(static_cast<uint64_t>(static_cast<int64_t>(*v)));
    else null();
  };
  auto opt_int4 = [&](const std::optional<int32_t>& v) {
    if (!v) return null();
    o.u32(4);
    o.u32(static_cast<uint32_t>(*v));
  };
  o.u16(kCopyColumns);
  int64_t us = floor_div(e.time_ns, kNsPerUs);
  int8(static_cast<uint64_t>(us - kPgEpochUnixUs));
  o.u32(2);
  o.u16(static_cast<uint16_t>(e.time_ns - us * kNsPerUs));
  text(e.host);
  int8(static_cast<uint64_t>(e.event_id));
  text(kind_name(e.kind));
  text(e.path);
  opt_text(e.old_path);
  if (e.is_dir) {
    o.u32(1);
    o.u8(*e.is_dir ? 1 : 0);
  } else {
    null();
  }
  opt_int8(e.dev);
  opt_int8(e.ino);
  text(actor_source_name(e.actor_source));
  opt_int4(e.pid);
  opt_int4(e.tid);
  opt_int4(e.ppid);
  opt_int8(e.uid);
  opt_int8(e.gid);
  opt_int8(e.euid);
  opt_int8(e.egid);
  opt_int8(e.loginuid);
  opt_int8(e.sessionid);
  opt_text(e.comm);
  opt_text(e.exe);
  opt_text(e.cgroup);
  opt_int8(e.old_mode);
  opt_int8(e.new_mode);
  opt_int8(e.old_uid);
  opt_int8(e.new_uid);
  opt_int8(e.old_gid);
  opt_int8(e.new_gid);
  opt_int4(e.error);
  opt_int8(e.lost);
  text(e.backend);
  if (e.lost_reason) text(loss_reason_name(*e.lost_reason));
  else null();
}

}  // namespace

void append_copy_row(std::string& out, const EventRecordView& e) {
  Sizer size;
  copy_tuple(size, e);
  size_t at = out.size();
  // The buffer is reused batch after batch: once it has grown, this never allocates.
  if (out.capacity() < at + size.n) out.reserve(std::max(out.capacity() * 2, at + size.n));
  out.resize(at + size.n);
  Writer w{out.data() + at};
  copy_tuple(w, e);
}

namespace {

// Reads a record (store/record.cc's format) field by field, with bounds checks.
struct RecordReader {
  const char* p;
  const char* end;
  bool ok = true;
  template <typename T>
  T get() {
    T v{};
    if (static_cast<size_t>(end - p) < sizeof v) {
      ok = false;
      return v;
    }
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
  std::string_view str() {
    uint32_t n = get<uint32_t>();
    if (!ok || static_cast<size_t>(end - p) < n) {
      ok = false;
      return {};
    }
    std::string_view s(p, n);
    p += n;
    return s;
  }
};

}  // namespace

char* transcode_copy_row(std::string_view record, char* out) {
  RecordReader r{record.data(), record.data() + record.size()};
  Writer o{out};
  auto null = [&] { o.u32(0xffffffffu); };
  auto text = [&](std::string_view b) {
    o.u32(static_cast<uint32_t>(b.size()));
    o.bytes(b);
  };
  auto int8 = [&](uint64_t v) {
    o.u32(8);
    o.u64(v);
  };
  uint32_t mask = 0;
  int bit = 0;
  auto has = [&] { return (mask >> bit++) & 1u; };
  // Record fields in record order; the table's columns in table order (the same but for
  // host, path, backend and actor_source, which the record keeps up front).
  int64_t time_ns = r.get<int64_t>();
  int64_t event_id = r.get<int64_t>();
  uint8_t kind = r.get<uint8_t>();
  auto source = static_cast<ActorSource>(r.get<uint8_t>());
  mask = r.get<uint32_t>();
  std::string_view host = r.str(), path = r.str(), backend = r.str();
  if (!r.ok || kind < 1 || kind >= kEventKindCount) return nullptr;
  o.u16(kCopyColumns);
  int64_t us = floor_div(time_ns, kNsPerUs);
  int8(static_cast<uint64_t>(us - kPgEpochUnixUs));
  o.u32(2);
  o.u16(static_cast<uint16_t>(time_ns - us * kNsPerUs));
  text(host);
  int8(static_cast<uint64_t>(event_id));
  text(kind_name(static_cast<EventKind>(kind)));
  text(path);
  if (has()) text(r.str());  // old_path
  else null();
  if (has()) {  // is_dir
    o.u32(1);
    o.u8(r.get<uint8_t>() != 0 ? 1 : 0);
  } else {
    null();
  }
  for (int i = 0; i < 2; ++i) {  // dev, ino
    if (has()) int8(r.get<uint64_t>());
    else null();
  }
  text(actor_source_name(source));
  for (int i = 0; i < 3; ++i) {  // pid, tid, ppid: integer
    if (has()) {
      o.u32(4);
      o.u32(static_cast<uint32_t>(r.get<int32_t>()));
    } else {
      null();
    }
  }
  for (int i = 0; i < 6; ++i) {  // uid ... sessionid: unsigned 32 bits in a bigint
    if (has()) int8(r.get<uint32_t>());
    else null();
  }
  for (int i = 0; i < 3; ++i) {  // comm, exe, cgroup
    if (has()) text(r.str());
    else null();
  }
  for (int i = 0; i < 6; ++i) {  // old_mode ... new_gid: unsigned 32 bits in a bigint
    if (has()) int8(r.get<uint32_t>());
    else null();
  }
  if (has()) {  // error: integer
    o.u32(4);
    o.u32(static_cast<uint32_t>(r.get<int32_t>()));
  } else {
    null();
  }
  if (has()) int8(r.get<uint64_t>());  // lost
  else null();
  text(backend);
  if (has()) {  // lost_reason
    uint8_t reason = r.get<uint8_t>();
    text(loss_reason_name(reason < kLossReasonCount ? static_cast<LossReason>(reason) : LossReason::kUnknown));
  } else {
    null();
  }
  if (!r.ok || r.p != r.end) return nullptr;
  return o.p;
}

std::span<const char* const> postgres_migrations() { return kMigrations; }

void set_postgres_password(std::string password) { postgres_password() = std::move(password); }

Result<std::unique_ptr<EventStore>> open_postgres_store(const std::string& conninfo, bool allow_offline) {
  auto store = std::make_unique<PostgresStore>(conninfo);
  if (Status s = store->reconnect(); !s && !allow_offline) return s.error();
  return std::unique_ptr<EventStore>(std::move(store));
}

}  // namespace fstrail::store
