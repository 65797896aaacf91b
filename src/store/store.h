// The event store: a durable, queryable history of events (SQLite or PostgreSQL).
// Every stored row is an Event plus the host that saw it and an id unique per host,
// so replays are idempotent and many hosts can share one database.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.h"
#include "core/result.h"
#include "filter/filter.h"

namespace fstrail::store {

struct StoredEvent {
  Event event;
  std::string host;
  int64_t event_id = 0;  // unique per host across restarts (see EventIdAllocator)
};

// Backend names of loaded events point into this process-wide set (Event::backend is a view).
std::string_view intern_backend_name(std::string_view name);

struct QuerySpec {
  std::optional<std::string> path;  // exact path, or a subtree when it ends with '/'
  std::optional<int64_t> since_ns, until_ns;
  std::optional<uint32_t> uid;
  bool login_user = false;  // --user also matches loginuid
  std::optional<std::string> comm;
  std::optional<KindSet> kinds;
  std::optional<std::string> host;
  std::optional<uint64_t> limit;  // the most recent N (shown oldest first)
  bool last_per_path = false;
};

// How an insert failed decides what the writer does with the batch.
enum class FailureKind {
  kUnavailable,  // the database is down, unreachable or out of space: spool and retry later
  kBadData,      // something in the batch was refused: bisect to find the row
};

struct InsertError {
  FailureKind kind;
  Error error;
};

class EventStore {
 public:
  virtual ~EventStore() = default;
  virtual std::string_view kind() const = 0;  // "sqlite" | "postgresql"
  // One transaction of encoded records (store/record.h). Rows already present (same host,
  // event_id, time) are skipped. On failure the transaction is rolled back.
  virtual std::optional<InsertError> insert_records(std::span<const std::string_view> records) = 0;
  // The same for decoded events (tests, tools).
  std::optional<InsertError> insert(std::span<const StoredEvent> batch);
  virtual Result<std::vector<StoredEvent>> query(const QuerySpec& spec) = 0;
  // Drops whole stored days older than `keep_ns` before now.
  virtual Status apply_retention(int64_t keep_ns) = 0;
  // Reconnects after kUnavailable; Ok when the store can take rows again.
  virtual Status reconnect() = 0;
};

// "sqlite:///path/file.db", "/path/file.db", "postgresql://...", "postgres://...",
// or a libpq keyword string ("host=... dbname=...").
// allow_offline: return a PostgreSQL store even when the server is down now (insert reconnects).
Result<std::unique_ptr<EventStore>> open_store(const std::string& url, bool allow_offline = false);
// The SQLite file a --db value names; nullopt for PostgreSQL. An unknown "scheme://" is an
// error (a mistyped scheme must not quietly become a file named after it).
Result<std::optional<std::string>> sqlite_file(const std::string& url);

// The default database: /var/lib/fstrail/events.db as root, else $XDG_STATE_HOME/fstrail/events.db.
std::string default_state_dir();
std::string default_db_url();

// The password written in a connection string (URL user:PASS@ or ?password=, or a keyword
// string's password=), or "".
std::string find_password(std::string_view url);
// The password PostgreSQL connections use in place of (over) one in the connection string,
// e.g. read from --db-password-file; "" = none (libpq's PGPASSWORD, PGPASSFILE, ~/.pgpass).
void set_postgres_password(std::string password);

// A connection string with any password replaced by "***", for messages.
std::string redact_url(std::string_view url);
// Replaces every occurrence of the password of `url` in `message` (libpq errors may echo it).
std::string redact_message(std::string_view message, std::string_view url);

// Event ids: (time in 256 ns units << 8) | slot, strictly increasing within the run and
// starting above the high-water mark persisted by earlier runs, so ids never repeat on a host
// even when the clock steps back. The slot (0..255) tells the processes that write one
// database on one host apart: each holds an OFD lock on its own 8 bytes of a shared slot
// file, where it also keeps the slot's high-water mark (the next holder of the slot starts
// above it). Two processes that share the slot file can never hand out the same id.
class EventIdAllocator {
 public:
  static constexpr int kSlotBits = 8;
  static constexpr int kSlots = 1 << kSlotBits;
  // `state_file` keeps the high-water mark ("" = none, clock only); slot 0, shared with nobody.
  explicit EventIdAllocator(std::string state_file);
  // Takes the first free slot of `slot_file` (created 0600); an error when all are held.
  static Result<std::unique_ptr<EventIdAllocator>> open(std::string state_file, const std::string& slot_file);
  ~EventIdAllocator();
  int64_t next();
  // Persists a mark above every id handed out so far (and the next reservation).
  void persist();
  int slot() const { return slot_; }

 private:
  void persist_locked();

  std::mutex mutex_;  // the event thread and the spool's replay (lost events) both take ids
  std::string state_file_;
  int slot_fd_ = -1;
  int slot_ = 0;
  int64_t last_units_ = 0;
  int64_t reserved_until_units_ = 0;
};

std::string local_host_name();

// "1h", "30m", "2d", "45s", "1w" → ns; used by --since/--until/--retention.
Result<int64_t> parse_duration(std::string_view text);
// Duration (ago from now) or RFC 3339 ("2026-11-23T16:00:00Z", fractional and offsets allowed).
Result<int64_t> parse_time_arg(std::string_view text, int64_t now_ns);

}  // namespace fstrail::store
