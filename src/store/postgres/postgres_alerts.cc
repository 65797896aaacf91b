// The alert store's PostgreSQL connection (store/alert_store.h).
#include <fmt/format.h>
#include <libpq-fe.h>

#include "store/alert_store.h"
#include "store/postgres/postgres_store.h"

namespace fstrail::store {
namespace {

std::string one_line(std::string msg) {
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  for (auto& c : msg)
    if (c == '\n' || c == '\t') c = ' ';
  return msg;
}

class PostgresConnection final : public SqlConnection {
 public:
  explicit PostgresConnection(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  ~PostgresConnection() override { PQfinish(conn_); }

  SqlDialect dialect() const override { return SqlDialect::kPostgres; }

  Status reconnect() override {
    PQfinish(conn_);
    conn_ = connect_postgres(conninfo_);
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK)
      return Error{
          fmt::format("cannot connect to PostgreSQL {}: {}", redact_url(conninfo_),
                      redact_message(one_line(conn_ ? PQerrorMessage(conn_) : "out of memory"), conninfo_))};
    return Ok{};
  }

  Result<std::vector<std::vector<std::optional<std::string>>>> run(const SqlQuery& query) override {
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      if (Status s = reconnect(); !s) return s.error();
    }
    // Parameters as text; bytea ones in hex, so any byte goes through.
    std::vector<std::string> storage;
    storage.reserve(query.params.size());
    for (const auto& p : query.params) {
      if (auto* n = std::get_if<int64_t>(&p))
        storage.push_back(std::to_string(*n));
      else if (auto* t = std::get_if<std::string>(&p))
        storage.push_back(*t);
      else if (auto* b = std::get_if<Blob>(&p))
        storage.push_back(hex(b->bytes));
      else
        storage.push_back(std::to_string(std::get<PgTimestamp>(p).unix_us));
    }
    std::vector<const char*> values;
    for (const auto& s : storage) values.push_back(s.c_str());
    PGresult* res = PQexecParams(conn_, query.sql.c_str(), static_cast<int>(values.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      std::string msg = one_line(PQresultErrorMessage(res));
      PQclear(res);
      return Error{fmt::format("PostgreSQL {}: {}", redact_url(conninfo_), redact_message(msg, conninfo_))};
    }
    std::vector<std::vector<std::optional<std::string>>> rows;
    for (int r = 0; r < PQntuples(res); ++r) {
      auto& row = rows.emplace_back();
      for (int c = 0; c < PQnfields(res); ++c) {
        if (PQgetisnull(res, r, c))
          row.emplace_back();
        else
          row.emplace_back(std::string(PQgetvalue(res, r, c), static_cast<size_t>(PQgetlength(res, r, c))));
      }
    }
    PQclear(res);
    return rows;
  }

 private:
  static std::string hex(const std::string& bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out = "\\x";
    for (unsigned char c : bytes) {
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    }
    return out;
  }

  std::string conninfo_;
  PGconn* conn_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<SqlConnection>> open_postgres_connection(const std::string& conninfo) {
  auto conn = std::make_unique<PostgresConnection>(conninfo);
  if (Status s = conn->reconnect(); !s) return s.error();
  return std::unique_ptr<SqlConnection>(std::move(conn));
}

}  // namespace fstrail::store
