// Guard alerts kept in the database next to the events (table fstrail_alerts, created by
// the stores' migrations): `fstrail agent` writes them, `fstrail query --alerts` reads them.
// One row per alert line the agent logs; the row's json column is that line.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "store/query_sql.h"
#include "store/store.h"

namespace fstrail::store {

struct StoredAlert {
  int64_t time_ns = 0;
  std::string host;
  std::string rule;
  std::string type;                 // existing | violation | summary | denied
  std::optional<std::string> kind;  // the event kind that caused it (none for existing)
  std::string path;
  std::optional<uint32_t> uid, loginuid;
  std::optional<std::string> comm;
  std::string json;  // the alert as the agent logs it (guard::alert_to_json)
};

// The statements an alert store runs, on one connection of either database.
class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual SqlDialect dialect() const = 0;
  // Rows of text values (NULL: nullopt). Statements without rows return none.
  virtual Result<std::vector<std::vector<std::optional<std::string>>>> run(const SqlQuery& query) = 0;
  virtual Status reconnect() = 0;
};

class AlertStore {
 public:
  explicit AlertStore(std::unique_ptr<SqlConnection> db) : db_(std::move(db)) {}
  // One transaction; an alert already stored (same host, time, rule, type, path) is skipped.
  Status insert(std::span<const StoredAlert> alerts);
  // The QuerySpec filters of `fstrail query`: path (a tree with '/'), since, until, uid (with
  // login_user: or loginuid), comm, kinds (of the causing event), host, limit, last_per_path.
  Result<std::vector<StoredAlert>> query(const QuerySpec& spec);
  // Deletes alerts older than `keep_ns` before now.
  Status apply_retention(int64_t keep_ns);

  static SqlQuery insert_sql(SqlDialect dialect, const StoredAlert& alert);
  static SqlQuery query_sql(SqlDialect dialect, const QuerySpec& spec);

 private:
  std::unique_ptr<SqlConnection> db_;
};

// Opens the store's database the way open_store does (migrating it to the current schema first).
Result<std::unique_ptr<AlertStore>> open_alert_store(const std::string& url);

// The connections, one per database (sqlite/sqlite_alerts.cc, postgres/postgres_alerts.cc).
Result<std::unique_ptr<SqlConnection>> open_sqlite_connection(const std::string& path);
Result<std::unique_ptr<SqlConnection>> open_postgres_connection(const std::string& conninfo);

}  // namespace fstrail::store
