#pragma once

#include <memory>
#include <string>

#include "store/store.h"

namespace fstrail::store {

// SQLite in WAL mode: one transaction per batch, INSERT OR IGNORE on (host, event_id).
Result<std::unique_ptr<EventStore>> open_sqlite_store(const std::string& path);

}  // namespace fstrail::store
