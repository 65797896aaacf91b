// The WHERE clause of `fstrail query`, shared by SQLite and PostgreSQL so both give the
// same answers. Paths are compared as bytes: a subtree is the byte range [P, P') where
// P' is P with its trailing '/' replaced by '0' (the next byte), so '%' and '_' in real
// names are plain bytes and the path index serves the query.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "store/store.h"

namespace fstrail::store {

struct Blob {
  std::string bytes;
};
// A PostgreSQL timestamptz (microseconds since the Unix epoch), sent as a typed parameter so
// the planner compares `time` with a constant: partition pruning and the (time, ...) indexes apply.
struct PgTimestamp {
  int64_t unix_us;
};
using SqlParam = std::variant<int64_t, std::string, Blob, PgTimestamp>;

enum class SqlDialect { kSqlite, kPostgres };

struct SqlQuery {
  std::string sql;
  std::vector<SqlParam> params;
};

// The columns every store returns, in this order (see decode in each store).
inline constexpr const char* kEventColumns =
    "host, event_id, kind, path, old_path, is_dir, dev, ino, actor_source, pid, tid, ppid, uid, gid, euid, "
    "egid, loginuid, sessionid, comm, exe, cgroup, old_mode, new_mode, old_uid, new_uid, old_gid, new_gid, "
    "error, lost, backend, lost_reason";

// SQLite's path indexes lead with the hour of the event, so inserts land in the current
// hour's part of them (a few pages) instead of anywhere in an index of all history. A path
// condition then lists the hours present, found by one index seek each, and each hour's
// part is searched by path. The expression is the indexed one, written exactly as there.
inline constexpr const char* kSqliteHour = "time_ns / 3600000000000";
inline constexpr int64_t kSqliteHourNs = 3'600'000'000'000;
// Up to this long a --since window is read in time order instead (see build_query_sql).
inline constexpr int64_t kSqliteScanWindowNs = 3 * kSqliteHourNs;

// time_columns: "time_ns" (SQLite) or "time, time_ns_rem" (PostgreSQL) — selected first.
// since_fraction (SQLite): the share of stored time the --since window covers, when known.
// SQLite (built without STAT4) cannot estimate ranges; this tells it how selective --since is.
SqlQuery build_query_sql(const QuerySpec& spec, SqlDialect dialect, double since_fraction = -1);

// PostgreSQL keeps microseconds in `time` and the remaining nanoseconds in `time_ns_rem`.
inline int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace fstrail::store
