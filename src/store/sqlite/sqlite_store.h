#pragma once

#include <memory>
#include <span>
#include <string>

#include "store/query_sql.h"
#include "store/store.h"

struct sqlite3_stmt;

namespace fstrail::store {

// SQLite in WAL mode: one transaction per batch, INSERT OR IGNORE on the primary key
// (time_ns, host, event_id): a replayed event has the same time, so it collides with itself.
Result<std::unique_ptr<EventStore>> open_sqlite_store(const std::string& path);

// Binds build_query_sql's parameters to `stmt` (?1, ?2, ...), without copying: `params`
// must outlive the statement's steps.
void bind_query_params(sqlite3_stmt* stmt, const std::vector<SqlParam>& params);

// The schema's migrations in order (version N is element N-1): tests build old versions with them.
std::span<const char* const> sqlite_migrations();

}  // namespace fstrail::store
