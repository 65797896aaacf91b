// The recorder: the Sink of `fstrail record`. The event-reading thread only stamps each
// event with (host, event_id) and encodes it into the current batch (store/record.h), with no
// allocation per event; writer threads, one store connection each, hand the batches to the
// store (~10k rows or ~200 ms per transaction). When the store is unavailable, or the
// queue is full, events go to the on-disk spool, replayed in order once the store is back.
//
// With several writers, batches commit concurrently (their order in the store is the order of
// their commits, which no query depends on: queries order by time). Writer 0 alone reconnects,
// replays the spool and applies retention; while the spool holds anything, every writer appends
// its batches to the spool instead of the store, so the spool is replayed in the order the
// events happened. (A batch already being written when another writer starts spooling may
// commit before the spooled ones, as concurrent batches do.) Replays are idempotent either way.
#pragma once

#include <cstdio>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/unique_fd.h"
#include "sink/sink.h"
#include "store/record.h"
#include "store/spool/spool.h"
#include "store/store.h"

namespace fstrail::store {

struct RecorderOptions {
  std::string host = local_host_name();
  size_t batch_rows = 10000;
  // Writer threads, each with its own store connection (PostgreSQL: COPY runs on two
  // connections while the server's backends work in parallel). SQLite takes one writer.
  size_t writers = 2;
  int flush_interval_ms = 200;
  size_t queue_max = 200000;            // events held in memory before the spool takes them
  std::optional<int64_t> retention_ns;  // drop days older than this
  int retry_interval_ms = 1000;         // reconnect attempts while the store is unavailable
  FILE* log = stderr;
};

struct RecorderStats {
  uint64_t queued = 0;
  uint64_t stored = 0;       // rows the store accepted (including replays)
  uint64_t spooled = 0;      // rows written to the spool
  uint64_t replayed = 0;     // rows moved from the spool to the store
  uint64_t quarantined = 0;  // rows the store refused, kept in <spool>/quarantine
  uint64_t spool_overflow = 0;
  uint64_t outages = 0;      // times the store became unavailable
  uint64_t spool_lost = 0;   // spooled events that could not be read back (stored as lost events)
  bool spool_lost_unknown = false;  // a segment header was unreadable: spool_lost is a lower bound
  uint64_t spool_bad_bytes = 0;     // damaged spool bytes kept in <spool>/quarantine
};

// What the recorder holds now (the agent's metrics).
struct RecorderLevels {
  uint64_t spool_bytes = 0;
  // The time of the first event spooled since the spool was last empty (with several
  // writers, the first one's batch): unset when the spool is empty or that time is unknown.
  std::optional<int64_t> spool_oldest_ns;
  std::optional<int64_t> newest_stored_ns;  // the newest event time the store accepted
};

// "fstrail: N stored (M replayed from the spool), ..." for stderr at exit.
void print_recorder_summary(FILE* out, const RecorderStats& stats);


class Recorder final : public Sink {
 public:
  // `ids` stamps events given to write(); events that already carry ids go through submit().
  // One writer per store in `stores` (options.writers is start_recorder's business); stores[0]
  // is the primary: it reconnects, replays the spool and applies retention.
  Recorder(std::vector<std::unique_ptr<EventStore>> stores, std::unique_ptr<Spool> spool,
           std::unique_ptr<Spool> quarantine, std::unique_ptr<EventIdAllocator> ids, RecorderOptions options);
  Recorder(std::unique_ptr<EventStore> store, std::unique_ptr<Spool> spool, std::unique_ptr<Spool> quarantine,
           std::unique_ptr<EventIdAllocator> ids, RecorderOptions options);
  ~Recorder() override;

  void write(const Event& event) override;
  void flush() override;
  void submit(const StoredEvent& row);
  // Stores or spools everything still queued, replays the spool while the store takes rows,
  // and stops the writer thread.
  void close();
  // Waits until the queue and spool are empty (the store has everything) or `timeout_ms` passes.
  bool wait_idle(int timeout_ms);

  RecorderStats stats() const;
  RecorderLevels levels() const;  // thread-safe
  size_t queue_depth() const;
  // Keeps the spool directory's lock for the recorder's lifetime (see start_recorder).
  void hold_spool_lock(UniqueFd lock) { spool_lock_ = std::move(lock); }

 private:
  void add(const Event& event, std::string_view host, int64_t event_id);
  void run(size_t writer);
  void store_batch(size_t writer, const RecordBatch& batch);
  // Inserts, bisecting batches the store refuses so that good rows land and the bad ones
  // are quarantined. Returns false when the store is unavailable (nothing is lost: the caller spools).
  bool insert_resilient(EventStore& store, std::span<const std::string_view> rows);
  bool replay_some();
  void spool_rows(std::span<const std::string_view> rows);
  void try_reconnect();
  void mark_unavailable();
  // A secondary writer's connection may predate an outage: it reconnects once per recovery.
  bool ready(size_t writer);

  std::vector<std::unique_ptr<EventStore>> stores_;
  std::unique_ptr<Spool> spool_;
  std::unique_ptr<Spool> quarantine_;
  std::unique_ptr<EventIdAllocator> ids_;
  RecorderOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  // Encoded events: full batches, the batch being filled, and what did not fit (queue full),
  // which the event thread spools at flush(). Batches are recycled to avoid page faults.
  std::deque<RecordBatch> full_;
  RecordBatch filling_;
  RecordBatch overflow_;
  std::vector<RecordBatch> spare_;
  size_t queued_events_ = 0;
  bool stopping_ = false;
  size_t busy_ = 0;  // writers holding a batch

  std::atomic<bool> available_{true};
  std::atomic<uint64_t> recoveries_{0};  // times the store came back
  std::vector<uint64_t> seen_recoveries_;  // per writer
  std::atomic<int64_t> next_retry_ns_{0};
  int64_t next_retention_ns_ = 0;
  std::mutex quarantine_mutex_;

  UniqueFd spool_lock_;
  mutable std::atomic<int64_t> oldest_spooled_ns_{0};
  std::atomic<int64_t> newest_stored_ns_{0};
  std::atomic<uint64_t> queued_{0}, stored_{0}, spooled_{0}, replayed_{0}, quarantined_{0}, outages_{0};
  std::vector<std::thread> threads_;
};

// Opens everything `fstrail record` needs (store, spool, quarantine, id state) and starts the writer.
// The spool directory is locked: two processes appending to one spool (or sharing its event-id
// state) would corrupt it, so a second recorder on the same directory is refused.
// Where the processes writing `db_url` from this host take their event-id slots: next to a
// SQLite file (its real path + "-fstrail-ids"), else <state dir>/event-id-slots.
std::string event_id_slot_file(const std::string& db_url);

Result<std::unique_ptr<Recorder>> start_recorder(const std::string& db_url, const std::string& spool_dir,
                                                 uint64_t spool_max_bytes, RecorderOptions options);

}  // namespace fstrail::store
