#pragma once

#include <memory>
#include <span>
#include <string>

#include "store/store.h"

namespace fstrail::store {

// SQLite in WAL mode: one transaction per batch, INSERT OR IGNORE on the primary key
// (time_ns, host, event_id): a replayed event has the same time, so it collides with itself.
Result<std::unique_ptr<EventStore>> open_sqlite_store(const std::string& path);

// The schema's migrations in order (version N is element N-1): tests build old versions with them.
std::span<const char* const> sqlite_migrations();

}  // namespace fstrail::store
