#include "store/alert_store.h"

#include <fmt/format.h>

#include <charconv>

#include "core/clock.h"

namespace fstrail::store {
namespace {

class Params {
 public:
  explicit Params(SqlDialect d) : dialect_(d) {}
  std::string add(SqlParam p) {
    params_.push_back(std::move(p));
    if (dialect_ == SqlDialect::kSqlite) return fmt::format("?{}", params_.size());
    const char* cast = std::holds_alternative<int64_t>(params_.back()) ? "::int8"
                       : std::holds_alternative<Blob>(params_.back())  ? "::bytea"
                                                                       : "::text";
    return fmt::format("${}{}", params_.size(), cast);
  }
  template <typename T>
  std::string add_opt(const std::optional<T>& v) {
    if (!v) return "NULL";
    if constexpr (std::is_same_v<T, std::string>)
      return add(Blob{*v});
    else
      return add(static_cast<int64_t>(*v));
  }
  std::vector<SqlParam> take() { return std::move(params_); }

 private:
  SqlDialect dialect_;
  std::vector<SqlParam> params_;
};

int64_t to_int(const std::optional<std::string>& text) {
  int64_t v = 0;
  if (text) std::from_chars(text->data(), text->data() + text->size(), v);
  return v;
}

}  // namespace

SqlQuery AlertStore::insert_sql(SqlDialect d, const StoredAlert& a) {
  Params p(d);
  std::string sql = fmt::format(
      "INSERT INTO fstrail_alerts (time_ns, host, rule, type, kind, path, uid, loginuid, comm, json) "
      "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT DO NOTHING",
      p.add(a.time_ns), p.add(a.host), p.add(a.rule), p.add(a.type), a.kind ? p.add(*a.kind) : "NULL",
      p.add(Blob{a.path}), p.add_opt(a.uid), p.add_opt(a.loginuid), p.add_opt(a.comm), p.add(a.json));
  return SqlQuery{std::move(sql), p.take()};
}

SqlQuery AlertStore::query_sql(SqlDialect d, const QuerySpec& spec) {
  Params p(d);
  std::vector<std::string> where;
  if (spec.path) {
    const std::string& path = *spec.path;
    if (!path.empty() && path.back() == '/') {
      std::string upper = path;
      upper.back() = '0';  // '/' + 1: the tree is the byte range [P, P')
      where.push_back(fmt::format("path >= {} AND path < {}", p.add(Blob{path}), p.add(Blob{upper})));
    } else {
      where.push_back(fmt::format("path = {}", p.add(Blob{path})));
    }
  }
  if (spec.since_ns) where.push_back(fmt::format("time_ns >= {}", p.add(*spec.since_ns)));
  if (spec.until_ns) where.push_back(fmt::format("time_ns <= {}", p.add(*spec.until_ns)));
  if (spec.uid) {
    std::string u = p.add(static_cast<int64_t>(*spec.uid));
    where.push_back(spec.login_user ? fmt::format("(uid = {0} OR loginuid = {0})", u)
                                    : fmt::format("uid = {}", u));
  }
  if (spec.comm) where.push_back(fmt::format("comm = {}", p.add(Blob{*spec.comm})));
  if (spec.host) where.push_back(fmt::format("host = {}", p.add(*spec.host)));
  if (spec.kinds) {
    std::string list;
    for (int k = 1; k < kEventKindCount; ++k)
      if (spec.kinds->test(static_cast<size_t>(k)))
        list += (list.empty() ? "" : ", ") + p.add(std::string(kind_name(static_cast<EventKind>(k))));
    where.push_back(list.empty() ? "FALSE" : fmt::format("kind IN ({})", list));
  }
  std::string where_sql;
  for (const auto& w : where) where_sql += (where_sql.empty() ? " WHERE " : " AND ") + w;
  const char* cols = "time_ns, host, rule, type, kind, json";
  const char* desc = "time_ns DESC, host DESC, rule DESC, type DESC";
  std::string inner = spec.last_per_path
                          ? fmt::format(
                                "SELECT {0} FROM (SELECT {0}, row_number() OVER (PARTITION BY host, path "
                                "ORDER BY {1}) AS rn FROM fstrail_alerts{2}) AS l WHERE rn = 1",
                                cols, desc, where_sql)
                          : fmt::format("SELECT {} FROM fstrail_alerts{}", cols, where_sql);
  std::string sql = spec.limit ? fmt::format(
                                     "SELECT * FROM (SELECT * FROM ({}) AS q ORDER BY {} LIMIT {}) AS r "
                                     "ORDER BY time_ns, host",
                                     inner, desc, p.add(static_cast<int64_t>(*spec.limit)))
                               : fmt::format("SELECT * FROM ({}) AS q ORDER BY time_ns, host", inner);
  return SqlQuery{std::move(sql), p.take()};
}

Status AlertStore::insert(std::span<const StoredAlert> alerts) {
  if (alerts.empty()) return Ok{};
  if (auto begun = db_->run(SqlQuery{"BEGIN", {}}); !begun) {
    if (Status s = db_->reconnect(); !s) return s;
    if (auto again = db_->run(SqlQuery{"BEGIN", {}}); !again) return again.error();
  }
  for (const auto& a : alerts) {
    if (auto done = db_->run(insert_sql(db_->dialect(), a)); !done) {
      (void)db_->run(SqlQuery{"ROLLBACK", {}});
      return done.error();
    }
  }
  if (auto done = db_->run(SqlQuery{"COMMIT", {}}); !done) {
    (void)db_->run(SqlQuery{"ROLLBACK", {}});
    return done.error();
  }
  return Ok{};
}

Result<std::vector<StoredAlert>> AlertStore::query(const QuerySpec& spec) {
  auto rows = db_->run(query_sql(db_->dialect(), spec));
  if (!rows) return rows.error();
  std::vector<StoredAlert> out;
  out.reserve(rows->size());
  for (auto& r : *rows) {
    StoredAlert a;
    a.time_ns = to_int(r[0]);
    a.host = r[1].value_or("");
    a.rule = r[2].value_or("");
    a.type = r[3].value_or("");
    a.kind = r[4];
    a.json = r[5].value_or("{}");
    out.push_back(std::move(a));
  }
  return out;
}

Status AlertStore::apply_retention(int64_t keep_ns) {
  Params p(db_->dialect());
  std::string sql =
      fmt::format("DELETE FROM fstrail_alerts WHERE time_ns < {}", p.add(realtime_now_ns() - keep_ns));
  auto done = db_->run(SqlQuery{std::move(sql), p.take()});
  if (!done) return done.error();
  return Ok{};
}

Result<std::unique_ptr<AlertStore>> open_alert_store(const std::string& url) {
  // The event store's open creates or migrates the schema, fstrail_alerts included.
  auto events = open_store(url);
  if (!events) return events.error();
  auto file = sqlite_file(url);
  if (!file) return file.error();
  auto conn = *file ? open_sqlite_connection(**file) : open_postgres_connection(url);
  if (!conn) return conn.error();
  return std::make_unique<AlertStore>(std::move(*conn));
}

}  // namespace fstrail::store
