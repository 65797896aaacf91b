#include "store/recorder.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <chrono>
#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/text.h"

namespace fstrail::store {

namespace {
std::vector<std::unique_ptr<EventStore>> one_store(std::unique_ptr<EventStore> store) {
  std::vector<std::unique_ptr<EventStore>> v;
  v.push_back(std::move(store));
  return v;
}
}  // namespace

Recorder::Recorder(std::vector<std::unique_ptr<EventStore>> stores, std::unique_ptr<Spool> spool,
                   std::unique_ptr<Spool> quarantine, std::unique_ptr<EventIdAllocator> ids, RecorderOptions options)
    : stores_(std::move(stores)),
      spool_(std::move(spool)),
      quarantine_(std::move(quarantine)),
      ids_(std::move(ids)),
      options_(std::move(options)) {
  seen_recoveries_.assign(stores_.size(), 0);
  for (size_t w = 0; w < stores_.size(); ++w) threads_.emplace_back([this, w] { run(w); });
}

Recorder::Recorder(std::unique_ptr<EventStore> store, std::unique_ptr<Spool> spool, std::unique_ptr<Spool> quarantine,
                   std::unique_ptr<EventIdAllocator> ids, RecorderOptions options)
    : Recorder(one_store(std::move(store)), std::move(spool), std::move(quarantine), std::move(ids),
               std::move(options)) {}

Recorder::~Recorder() { close(); }

void Recorder::write(const Event& event) { add(event, options_.host, ids_ ? ids_->next() : 0); }

void Recorder::submit(const StoredEvent& row) { add(row.event, row.host, row.event_id); }

void Recorder::add(const Event& event, std::string_view host, int64_t event_id) {
  ++queued_;
  std::lock_guard lock(mutex_);
  if (queued_events_ >= options_.queue_max) {
    overflow_.add(event, host, event_id);
    return;
  }
  filling_.add(event, host, event_id);
  ++queued_events_;
  if (filling_.size() >= options_.batch_rows) {
    full_.push_back(std::move(filling_));
    filling_ = RecordBatch{};
    if (!spare_.empty()) {
      filling_ = std::move(spare_.back());
      spare_.pop_back();
    }
    wake_.notify_one();
  }
}

void Recorder::flush() {
  RecordBatch overflow;
  {
    std::lock_guard lock(mutex_);
    if (overflow_.empty()) return;
    std::swap(overflow, overflow_);
  }
  // The writer is behind: these go to disk now so a slow store never grows memory without bound.
  auto views = overflow.views();
  spool_rows(views);
}

void Recorder::close() {
  {
    std::lock_guard lock(mutex_);
    if (threads_.empty() || !threads_[0].joinable()) return;
  }
  flush();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  // Every writer has stopped (and spooled what it could not store): one last attempt to hand
  // the spool to the store; what remains is replayed at the next start.
  if (!available_) {
    next_retry_ns_ = 0;
    try_reconnect();
  }
  while (available_ && !spool_->empty())
    if (!replay_some()) break;
  if (ids_) ids_->persist();
}

bool Recorder::wait_idle(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock lock(mutex_);
  while (std::chrono::steady_clock::now() < deadline) {
    if (queued_events_ == 0 && overflow_.empty() && busy_ == 0) {
      lock.unlock();
      if (spool_->empty()) return true;
      lock.lock();
    }
    wake_.notify_one();
    idle_.wait_for(lock, std::chrono::milliseconds(20));
  }
  return false;
}

RecorderLevels Recorder::levels() const {
  RecorderLevels l;
  l.spool_bytes = spool_->pending_bytes();
  if (l.spool_bytes == 0) oldest_spooled_ns_ = 0;
  else if (int64_t oldest = oldest_spooled_ns_.load(); oldest) l.spool_oldest_ns = oldest;
  if (int64_t newest = newest_stored_ns_.load(); newest) l.newest_stored_ns = newest;
  return l;
}

RecorderStats Recorder::stats() const {
  RecorderStats s;
  s.queued = queued_;
  s.stored = stored_;
  s.spooled = spooled_;
  s.replayed = replayed_;
  s.quarantined = quarantined_;
  s.spool_overflow = spool_->overflow();
  s.spool_lost = spool_->lost();
  s.spool_lost_unknown = spool_->lost_unknown();
  s.spool_bad_bytes = spool_->quarantined_bytes();
  s.outages = outages_;
  return s;
}

size_t Recorder::queue_depth() const {
  std::lock_guard lock(mutex_);
  return queued_events_;
}

void Recorder::spool_rows(std::span<const std::string_view> rows) {
  if (!rows.empty() && spool_->empty()) {
    EventRecordView first;
    if (parse_record(rows.front(), first)) oldest_spooled_ns_ = first.time_ns;
  }
  uint64_t before = spool_->overflow();
  if (Status s = spool_->append(rows); !s) fmt::print(options_.log, "fstrail: {}\n", s.error().message);
  uint64_t dropped = spool_->overflow() - before;
  spooled_ += rows.size() - std::min<uint64_t>(dropped, rows.size());
  if (dropped)
    fmt::print(options_.log, "fstrail: spool {} is full: {} events dropped (raise --spool-max)\n", spool_->dir(),
               dropped);
}

bool Recorder::insert_resilient(EventStore& store, std::span<const std::string_view> rows) {
  if (rows.empty()) return true;
  auto err = store.insert_records(rows);
  if (!err) {
    stored_ += rows.size();
    EventRecordView last;
    if (parse_record(rows.back(), last)) {
      int64_t newest = newest_stored_ns_.load();
      while (last.time_ns > newest && !newest_stored_ns_.compare_exchange_weak(newest, last.time_ns)) {
      }
    }
    return true;
  }
  if (err->kind == FailureKind::kUnavailable) {
    fmt::print(options_.log, "fstrail: {}; spooling events until it is back\n", err->error.message);
    return false;
  }
  if (rows.size() == 1) {
    EventRecordView view;
    parse_record(rows[0], view);
    fmt::print(options_.log, "fstrail: event {} of {} refused, kept in {}: {}\n", view.event_id,
               escape_for_terminal(view.host), quarantine_->dir(), err->error.message);
    std::lock_guard lock(quarantine_mutex_);
    if (Status s = quarantine_->append(rows); !s) fmt::print(options_.log, "fstrail: {}\n", s.error().message);
    ++quarantined_;
    return true;
  }
  size_t half = rows.size() / 2;
  return insert_resilient(store, rows.subspan(0, half)) && insert_resilient(store, rows.subspan(half));
}

void Recorder::mark_unavailable() {
  // Only the writer that sees the store go away counts the outage (others may see it too).
  if (available_.exchange(false)) ++outages_;
  next_retry_ns_ = realtime_now_ns() + int64_t{options_.retry_interval_ms} * 1'000'000;
}

void Recorder::try_reconnect() {
  int64_t now = realtime_now_ns();
  if (now < next_retry_ns_) return;
  next_retry_ns_ = now + int64_t{options_.retry_interval_ms} * 1'000'000;
  if (Status s = stores_[0]->reconnect(); s) {
    seen_recoveries_[0] = ++recoveries_;
    available_ = true;
    fmt::print(options_.log, "fstrail: {} store is back; replaying the spool\n", stores_[0]->kind());
  }
}

bool Recorder::ready(size_t writer) {
  uint64_t recoveries = recoveries_;
  if (seen_recoveries_[writer] == recoveries) return true;
  if (Status s = stores_[writer]->reconnect(); !s) return false;
  seen_recoveries_[writer] = recoveries;
  return true;
}

// Moves one batch from the spool to the store; false when there is nothing left or the store failed.
bool Recorder::replay_some() {
  SpoolPosition next;
  auto rows = spool_->peek(options_.batch_rows, next);
  if (!rows) {
    fmt::print(options_.log, "fstrail: {}\n", rows.error().message);
    return false;
  }
  const size_t replayed = rows->size();
  if (next.damaged()) {
    // What could not be read is stored as a lost event in the same transaction as the rows
    // read with it, so it lands exactly when they do.
    auto mark = spool_->pending_lost();
    if (!mark) {
      int64_t now = realtime_now_ns();
      mark = Spool::LostMark{ids_ ? ids_->next() : now, now};
      if (Status s = spool_->set_pending_lost(*mark); !s) {
        fmt::print(options_.log, "fstrail: {}\n", s.error().message);
        return false;
      }
    }
    Event lost;
    lost.kind = EventKind::kLost;
    lost.time_ns = mark->time_ns;
    lost.path = spool_->dir();
    if (!next.lost_unknown) lost.lost = next.lost;
    lost.backend = "spool";
    lost.lost_reason = LossReason::kSpoolCorrupt;
    rows->add(lost, options_.host, mark->event_id);
  }
  auto views = rows->views();
  if (!insert_resilient(*stores_[0], views)) {
    mark_unavailable();
    return false;
  }
  replayed_ += replayed;
  if (Status s = spool_->commit(next); !s) {
    fmt::print(options_.log, "fstrail: {}\n", s.error().message);
    return false;
  }
  if (next.damaged())
    fmt::print(options_.log, "fstrail: spool {} is damaged: {} event(s) could not be read, {} bad byte(s) kept in {}; "
                             "stored as a lost event\n",
               spool_->dir(), next.lost_unknown ? fmt::format("at least {}", next.lost) : std::to_string(next.lost),
               next.bad_bytes, spool_->quarantine_dir());
  return replayed > 0 || next.damaged();
}

void Recorder::store_batch(size_t writer, const RecordBatch& batch) {
  if (writer == 0) {
    if (!available_) try_reconnect();
    // The spool is replayed first, so events reach the store in the order they happened.
    while (available_ && !spool_->empty())
      if (!replay_some()) break;
  }
  if (batch.empty()) return;
  auto views = batch.views();
  // A batch never overtakes spooled events: while the spool holds any, it goes there too.
  if (available_ && spool_->empty() && ready(writer)) {
    if (insert_resilient(*stores_[writer], views)) return;
    mark_unavailable();
  }
  spool_rows(views);
}

void Recorder::run(size_t writer) {
  RecordBatch batch;
  for (;;) {
    bool stopping;
    {
      std::unique_lock lock(mutex_);
      if (!batch.empty()) {
        queued_events_ -= batch.size();
        batch.clear();
        spare_.push_back(std::move(batch));
        batch = RecordBatch{};
        --busy_;
      }
      idle_.notify_all();
      wake_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms),
                     [&] { return stopping_ || !full_.empty(); });
      stopping = stopping_;
      if (!full_.empty()) {
        batch = std::move(full_.front());
        full_.pop_front();
      } else if (!filling_.empty()) {  // the interval passed: what is there goes now
        std::swap(batch, filling_);
      }
      if (!batch.empty()) ++busy_;
      if (stopping && batch.empty()) break;
    }
    if (writer == 0 && options_.retention_ns && available_ && realtime_now_ns() >= next_retention_ns_) {
      next_retention_ns_ = realtime_now_ns() + 3600LL * 1'000'000'000;
      if (Status s = stores_[0]->apply_retention(*options_.retention_ns); !s)
        fmt::print(options_.log, "fstrail: retention: {}\n", s.error().message);
    }
    store_batch(writer, batch);
  }
  std::lock_guard lock(mutex_);
  idle_.notify_all();
}

std::string event_id_slot_file(const std::string& db_url) {
  // Every process that writes a SQLite file shares its slot file, whatever path it was given.
  if (auto file = sqlite_file(db_url); file && *file) {
    std::string path = **file;
    if (char* real = ::realpath(path.c_str(), nullptr)) {
      path = real;
      std::free(real);
    }
    return path + "-fstrail-ids";
  }
  return default_state_dir() + "/event-id-slots";
}

Result<std::unique_ptr<Recorder>> start_recorder(const std::string& db_url, const std::string& spool_dir,
                                                 uint64_t spool_max_bytes, RecorderOptions options) {
  if (Status s = make_private_dirs(spool_dir); !s) return s.error();
  std::string lock_path = spool_dir + "/lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid()) return Error::from_errno("cannot open " + lock_path);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    return Error{fmt::format("the spool {} is in use by another fstrail process: give each one its own --spool DIR",
                             spool_dir),
                 err};
  }
  // Locked before the spool is opened: opening recovers (truncates) a torn tail.
  auto spool = Spool::open(spool_dir, spool_max_bytes);
  if (!spool) return spool.error();
  auto quarantine = Spool::open(spool_dir + "/quarantine", spool_max_bytes);
  if (!quarantine) return quarantine.error();
  std::vector<std::unique_ptr<EventStore>> stores;
  auto store = open_store(db_url, /*allow_offline=*/true);
  if (!store) return store.error();
  stores.push_back(std::move(*store));
  const bool sqlite = stores[0]->kind() == "sqlite";
  // SQLite rewrites every index page a transaction touches: larger transactions amortize the
  // randomly placed path-index pages (the 200 ms flush interval still bounds the latency).
  if (sqlite && options.batch_rows == RecorderOptions{}.batch_rows) options.batch_rows = 50000;
  // SQLite has one writer at a time per database: more connections would only wait for its lock.
  size_t writers = sqlite ? 1 : std::max<size_t>(1, options.writers);
  while (stores.size() < writers) {
    auto more = open_store(db_url, /*allow_offline=*/true);
    if (!more) return more.error();
    stores.push_back(std::move(*more));
  }
  std::string slot_file = event_id_slot_file(db_url);
  if (Status s = make_private_dirs(std::filesystem::path(slot_file).parent_path()); !s) return s.error();
  auto ids = EventIdAllocator::open(spool_dir + "/event-id", slot_file);
  if (!ids) return ids.error();
  auto recorder = std::make_unique<Recorder>(std::move(stores), std::move(*spool), std::move(*quarantine),
                                             std::move(*ids), std::move(options));
  recorder->hold_spool_lock(std::move(lock));
  return recorder;
}

void print_recorder_summary(FILE* out, const RecorderStats& st) {
  fmt::print(out, "fstrail: {} stored ({} replayed from the spool), {} spooled, {} quarantined, {} dropped "
                  "(spool full), {} outages, {} unreadable in the spool ({} bad bytes quarantined)\n",
             st.stored, st.replayed, st.spooled, st.quarantined, st.spool_overflow, st.outages,
             st.spool_lost_unknown ? fmt::format("at least {}", st.spool_lost) : std::to_string(st.spool_lost),
             st.spool_bad_bytes);
}

}  // namespace fstrail::store
