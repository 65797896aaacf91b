// The spool: a bounded, fsynced, append-only queue of events on disk, for when the
// database cannot take them. Segments are replayed in order from a durable cursor;
// a replay that repeats after a crash is harmless because inserts are idempotent.
//
// Nothing in it is lost silently. A segment starts with a header (kept twice) that says how
// many records were written into it; every record is framed (magic, length, its number in the
// segment, CRC32 of all three and the payload). A reader that meets bad bytes resyncs on the
// next record that checks, replays every record that checks, keeps the bad bytes in
// DIR/quarantine/ and counts what it could not read from the record numbers and the header
// (a cut tail included).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "store/record.h"
#include "store/store.h"

namespace fstrail::store {

struct SpoolPosition {
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint64_t record = 0;  // the number of the next record expected in `segment`
  // What the peek that produced this position could not read (moved into the totals by commit).
  uint64_t lost = 0;           // records counted lost: missing numbers and a cut tail
  bool lost_unknown = false;   // a segment whose header is unreadable: more may be lost
  uint64_t bad_bytes = 0;      // bytes moved to quarantine
  bool damaged() const { return lost || lost_unknown || bad_bytes; }
};

// Creates every missing component of `dir` with mode 0700.
Status make_private_dirs(const std::string& dir);

class Spool {
 public:
  // Creates `dir` (0700) if needed. Segments left by an earlier run are read, never appended to.
  static Result<std::unique_ptr<Spool>> open(std::string dir, uint64_t max_bytes);
  ~Spool();

  // Appends and fsyncs. Events beyond max_bytes are dropped and counted (overflow()).
  Status append(std::span<const std::string_view> records);
  Status append(std::span<const StoredEvent> rows);
  bool empty();
  uint64_t pending_bytes();
  // Up to `max_rows` events from the cursor; `next` is where the cursor goes once they are
  // stored, and says what could not be read on the way (its bad bytes are already in quarantine).
  Result<RecordBatch> peek(size_t max_rows, SpoolPosition& next);
  // Moves the cursor durably and deletes fully replayed segments.
  Status commit(SpoolPosition next);

  // The (event_id, time) of the lost event for damage found after the cursor, kept with the
  // cursor until commit: a replay repeated after a crash stores the same row, which the store
  // skips, rather than a second lost event for the same damage.
  struct LostMark {
    int64_t event_id = 0;
    int64_t time_ns = 0;
  };
  std::optional<LostMark> pending_lost();
  Status set_pending_lost(LostMark mark);

  uint64_t overflow() const { return overflow_; }
  uint64_t lost() const { return lost_; }  // records that could not be read (committed)
  bool lost_unknown() const { return lost_unknown_; }
  uint64_t quarantined_bytes() const { return bad_bytes_; }
  const std::string& dir() const { return dir_; }
  std::string quarantine_dir() const { return dir_ + "/quarantine"; }

 private:
  Spool(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  Status recover();
  std::string segment_path(uint64_t segment) const;
  Status open_tail(uint64_t segment);
  Status write_header(uint64_t records);
  Status write_cursor(const SpoolPosition& pos, const std::optional<LostMark>& mark);
  std::vector<uint64_t> segments() const;
  // Reads one segment from `pos` into `rows` (up to max_rows); true when the segment is done.
  Result<bool> read_segment(int fd, uint64_t size, bool live_tail, size_t max_rows, RecordBatch& rows,
                            SpoolPosition& pos);
  void quarantine(int fd, uint64_t segment, uint64_t from, uint64_t to, SpoolPosition& pos);

  std::mutex mutex_;
  std::string dir_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;  // all segment bytes not yet deleted
  SpoolPosition cursor_;
  std::optional<LostMark> pending_lost_;
  uint64_t tail_segment_ = 0;
  uint64_t tail_size_ = 0;
  uint64_t tail_records_ = 0;
  int tail_fd_ = -1;
  uint64_t overflow_ = 0;
  uint64_t lost_ = 0;
  bool lost_unknown_ = false;
  uint64_t bad_bytes_ = 0;
  std::string buffer_;
};

}  // namespace fstrail::store
