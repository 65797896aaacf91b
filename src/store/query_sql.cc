#include "store/query_sql.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "core/clock.h"

namespace fstrail::store {
namespace {

class Builder {
 public:
  explicit Builder(SqlDialect d) : dialect_(d) {}

  std::string param(SqlParam p) {
    params_.push_back(std::move(p));
    if (dialect_ == SqlDialect::kSqlite) return fmt::format("?{}", params_.size());
    const char* cast = std::holds_alternative<int64_t>(params_.back())       ? "::int8"
                       : std::holds_alternative<Blob>(params_.back())        ? "::bytea"
                       : std::holds_alternative<PgTimestamp>(params_.back()) ? "::timestamptz"
                                                                             : "::text";
    return fmt::format("${}{}", params_.size(), cast);
  }
  std::vector<SqlParam> take() { return std::move(params_); }

 private:
  SqlDialect dialect_;
  std::vector<SqlParam> params_;
};

// time >= since at nanosecond precision, with a sargable first term for PostgreSQL.
std::string time_bound(Builder& b, SqlDialect d, int64_t ns, bool lower, double fraction = -1) {
  if (d == SqlDialect::kSqlite) {
    std::string term = fmt::format("time_ns {} {}", lower ? ">=" : "<=", b.param(ns));
    if (fraction > 0 && fraction < 1) term = fmt::format("likelihood({}, {:.6f})", term, std::max(fraction, 1e-6));
    return term;
  }
  int64_t us = floor_div(ns, 1000);
  int64_t rem = ns - us * 1000;
  std::string ts = b.param(PgTimestamp{us});
  if (lower)
    return fmt::format("time >= {0} AND NOT (time = {0} AND time_ns_rem < {1})", ts, b.param(rem));
  return fmt::format("time <= {0} AND NOT (time = {0} AND time_ns_rem > {1})", ts, b.param(rem));
}

}  // namespace

SqlQuery build_query_sql(const QuerySpec& spec, SqlDialect d, double since_fraction) {
  Builder b(d);
  std::vector<std::string> where;
  const bool sqlite = d == SqlDialect::kSqlite;
  // SQLite: a window of a few hours is read in time order (the table is clustered by time),
  // which beats looking each of a busy hour's matches up through the path index; longer or
  // unbounded windows go through the hour-led path indexes.
  auto short_window = [&] {
    const int64_t end = spec.until_ns ? *spec.until_ns : realtime_now_ns();
    return end >= std::numeric_limits<int64_t>::min() + kSqliteScanWindowNs &&
           *spec.since_ns >= end - kSqliteScanWindowNs;
  };
  const bool by_hour = sqlite && spec.path && !(spec.since_ns && short_window());
  if (spec.path) {
    const std::string& p = *spec.path;
    std::string path_term, old_path_term;
    if (!p.empty() && p.back() == '/') {
      std::string upper = p;
      upper.back() = '0';  // '/' + 1
      std::string lo = b.param(Blob{p}), hi = b.param(Blob{upper});
      path_term = fmt::format("path >= {0} AND path < {1}", lo, hi);
      old_path_term = fmt::format("old_path >= {0} AND old_path < {1}", lo, hi);
    } else {
      std::string eq = b.param(Blob{p});
      path_term = fmt::format("path = {}", eq);
      old_path_term = fmt::format("old_path = {}", eq);
    }
    if (by_hour) {
      const std::string in_hours = fmt::format("{} IN (SELECT h FROM hours) AND ", kSqliteHour);
      path_term.insert(0, in_hours);
      old_path_term.insert(0, in_hours);
    }
    where.push_back(fmt::format("(({}) OR ({}))", path_term, old_path_term));
  }
  if (spec.since_ns) where.push_back(time_bound(b, d, *spec.since_ns, true, since_fraction));
  if (spec.until_ns) where.push_back(time_bound(b, d, *spec.until_ns, false));
  if (spec.uid) {
    std::string u = b.param(static_cast<int64_t>(*spec.uid));
    where.push_back(spec.login_user ? fmt::format("(uid = {0} OR loginuid = {0})", u) : fmt::format("uid = {}", u));
  }
  if (spec.comm) where.push_back(fmt::format("comm = {}", b.param(Blob{*spec.comm})));
  if (spec.host) where.push_back(fmt::format("host = {}", b.param(*spec.host)));
  if (spec.kinds) {
    std::string list;
    for (int k = 1; k < kEventKindCount; ++k) {
      if (!spec.kinds->test(static_cast<size_t>(k))) continue;
      if (!list.empty()) list += ", ";
      list += b.param(std::string(kind_name(static_cast<EventKind>(k))));
    }
    where.push_back(list.empty() ? "FALSE" : fmt::format("kind IN ({})", list));
  }
  std::string where_sql;
  for (const auto& w : where) where_sql += (where_sql.empty() ? " WHERE " : " AND ") + w;

  const bool pg = !sqlite;
  const std::string time_cols = pg ? "time, time_ns_rem" : "time_ns";
  const std::string order_desc = pg ? "time DESC, time_ns_rem DESC, host DESC, event_id DESC"
                                    : "time_ns DESC, host DESC, event_id DESC";
  const std::string order_asc = pg ? "time, time_ns_rem, host, event_id" : "time_ns, host, event_id";
  std::string select_cols = fmt::format("{}, {}", time_cols, kEventColumns);
  std::string inner;
  if (spec.last_per_path) {
    if (pg)
      inner = fmt::format("SELECT DISTINCT ON (host, path) {} FROM fstrail_events{} ORDER BY host, path, {}",
                          select_cols, where_sql, order_desc);
    else
      inner = fmt::format(
          "SELECT {0} FROM (SELECT *, row_number() OVER (PARTITION BY host, path ORDER BY {1}) AS rn "
          "FROM fstrail_events{2}) WHERE rn = 1",
          select_cols, order_desc, where_sql);
  } else {
    inner = fmt::format("SELECT {} FROM fstrail_events{}", select_cols, where_sql);
  }
  // The hours stored within the time bounds (integer division truncates: monotonic in time),
  // one seek of the hour-led index each; a last, out-of-bounds or NULL row is harmless.
  std::string with;
  if (by_hour) {
    int64_t first = (spec.since_ns ? *spec.since_ns : std::numeric_limits<int64_t>::min()) / kSqliteHourNs;
    int64_t last = (spec.until_ns ? *spec.until_ns : std::numeric_limits<int64_t>::max()) / kSqliteHourNs;
    std::string from = b.param(first), to = b.param(last);
    with = fmt::format(
        "WITH RECURSIVE hours(h) AS ("
        "SELECT (SELECT {0} FROM fstrail_events WHERE {0} >= {1} ORDER BY {0} LIMIT 1) UNION ALL "
        "SELECT (SELECT {0} FROM fstrail_events WHERE {0} > hours.h ORDER BY {0} LIMIT 1) "
        "FROM hours WHERE hours.h < {2}) ",
        kSqliteHour, from, to);
  }
  std::string sql = with;
  if (spec.limit)
    sql += fmt::format("SELECT * FROM (SELECT * FROM ({}) AS q ORDER BY {} LIMIT {}) AS r ORDER BY {}", inner,
                       order_desc, b.param(static_cast<int64_t>(*spec.limit)), order_asc);
  else
    sql += fmt::format("SELECT * FROM ({}) AS q ORDER BY {}", inner, order_asc);
  return SqlQuery{std::move(sql), b.take()};
}

}  // namespace fstrail::store
