#pragma once

#include <memory>
#include <span>
#include <string>

#include "store/record.h"
#include "store/store.h"

namespace fstrail::store {

// PostgreSQL: a day-partitioned table fed by binary COPY (see postgres_schema.md in this folder).
Result<std::unique_ptr<EventStore>> open_postgres_store(const std::string& conninfo, bool allow_offline = false);

// The schema's migrations in order (version N is element N-1): tests build old versions with them.
std::span<const char* const> postgres_migrations();

// Encodes rows in PostgreSQL's binary COPY format (header, tuples, trailer): exposed for tests and benches.
void append_copy_header(std::string& out);
void append_copy_row(std::string& out, const EventRecordView& row);
void append_copy_trailer(std::string& out);

}  // namespace fstrail::store
