// The spool: a bounded, fsynced, append-only queue of events on disk, for when the
// database cannot take them. Segments are replayed in order from a durable cursor;
// a replay that repeats after a crash is harmless because inserts are idempotent.
#pragma once

#include <cstdint>
#include <mutex>
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
};

class Spool {
 public:
  // Creates `dir` if needed and recovers a torn tail left by a crash.
  static Result<std::unique_ptr<Spool>> open(std::string dir, uint64_t max_bytes);
  ~Spool();

  // Appends and fsyncs. Events beyond max_bytes are dropped and counted (overflow()).
  Status append(std::span<const std::string_view> records);
  Status append(std::span<const StoredEvent> rows);
  bool empty();
  uint64_t pending_bytes();
  // Up to `max_rows` events from the cursor; `next` is where the cursor goes once they are stored.
  Result<RecordBatch> peek(size_t max_rows, SpoolPosition& next);
  // Moves the cursor durably and deletes fully replayed segments.
  Status commit(SpoolPosition next);

  uint64_t overflow() const { return overflow_; }
  uint64_t corrupt() const { return corrupt_; }
  const std::string& dir() const { return dir_; }

 private:
  Spool(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  Status recover();
  std::string segment_path(uint64_t segment) const;
  Status open_tail(uint64_t segment);
  std::vector<uint64_t> segments() const;

  std::mutex mutex_;
  std::string dir_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;  // all segment bytes not yet deleted
  SpoolPosition cursor_;
  uint64_t tail_segment_ = 0;
  uint64_t tail_size_ = 0;
  int tail_fd_ = -1;
  uint64_t overflow_ = 0;
  uint64_t corrupt_ = 0;
  std::string buffer_;
};

}  // namespace fstrail::store
