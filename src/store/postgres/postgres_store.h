#pragma once

#include <memory>
#include <span>
#include <string>

#include "store/record.h"
#include "store/store.h"

typedef struct pg_conn PGconn;

namespace fstrail::store {

// A connection with fstrail's settings (timeouts, keepalives, application name) and the
// password from set_postgres_password, if any. Check PQstatus.
PGconn* connect_postgres(const std::string& conninfo);

// PostgreSQL: a day-partitioned table fed by binary COPY (see postgres_schema.md in this folder).
Result<std::unique_ptr<EventStore>> open_postgres_store(const std::string& conninfo, bool allow_offline = false);

// The schema's migrations in order (version N is element N-1): tests build old versions with them.
std::span<const char* const> postgres_migrations();

// Encodes rows in PostgreSQL's binary COPY format (header, tuples, trailer): exposed for tests and benches.
void append_copy_header(std::string& out);
void append_copy_row(std::string& out, const EventRecordView& row);
void append_copy_trailer(std::string& out);
// Writes the tuple of one record (store/record.h) at `out`, which has room for
// record.size() + kCopyRowSlack bytes: the same bytes as append_copy_row of the parsed record,
// without the parse. Returns the end of the tuple, or nullptr if the record is corrupt.
inline constexpr size_t kCopyRowSlack = 512;
char* transcode_copy_row(std::string_view record, char* out);

}  // namespace fstrail::store
