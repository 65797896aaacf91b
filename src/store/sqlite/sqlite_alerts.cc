// The alert store's SQLite connection (store/alert_store.h).
#include <fmt/format.h>
#include <sqlite3.h>

#include "store/alert_store.h"
#include "store/sqlite/sqlite_store.h"

namespace fstrail::store {
namespace {

class SqliteConnection final : public SqlConnection {
 public:
  explicit SqliteConnection(std::string path) : path_(std::move(path)) {}
  ~SqliteConnection() override { sqlite3_close(db_); }

  SqlDialect dialect() const override { return SqlDialect::kSqlite; }

  Status reconnect() override {
    sqlite3_close(db_);
    db_ = nullptr;
    if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK)
      return Error{fmt::format("SQLite {}: {}", path_, db_ ? sqlite3_errmsg(db_) : "out of memory")};
    // The recorder writes the same file: wait for its transactions rather than fail.
    sqlite3_busy_timeout(db_, 5000);
    return Ok{};
  }

  Result<std::vector<std::vector<std::optional<std::string>>>> run(const SqlQuery& query) override {
    if (!db_) {
      if (Status s = reconnect(); !s) return s.error();
    }
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, query.sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
      return Error{fmt::format("SQLite {}: {}", path_, sqlite3_errmsg(db_))};
    bind_query_params(stmt, query.params);
    std::vector<std::vector<std::optional<std::string>>> rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      auto& row = rows.emplace_back();
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        if (sqlite3_column_type(stmt, i) == SQLITE_NULL) {
          row.emplace_back();
          continue;
        }
        const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt, i));
        row.emplace_back(std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(stmt, i))));
      }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return Error{fmt::format("SQLite {}: {}", path_, sqlite3_errmsg(db_))};
    return rows;
  }

 private:
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<SqlConnection>> open_sqlite_connection(const std::string& path) {
  auto conn = std::make_unique<SqliteConnection>(path);
  if (Status s = conn->reconnect(); !s) return s.error();
  return std::unique_ptr<SqlConnection>(std::move(conn));
}

}  // namespace fstrail::store
