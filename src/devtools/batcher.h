// Turns a stream of file events into batches of net changes, one batch per run of a
// developer's command: debounce (a batch is due once no event came for `debounce`), settle
// (while a file is being written, wait, at most `settle_max` after the last event), and
// coalescing per path (an atomic save — a temporary file written then renamed over the
// target — is one `modify` of the target; a file created and removed within the batch is
// no change). Times are passed in (ns, any monotonic clock) so tests use a fake clock.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/event.h"
#include "core/loss.h"

namespace fstrail::devtools {

struct BatchTiming {
  int64_t debounce_ns = 50'000'000;
  int64_t settle_max_ns = 2'000'000'000;
};

struct Batch {
  std::vector<Event> changes;  // one per path, in the order paths first changed
  bool rescan = false;         // events were lost: the command should look at everything
  LossCounts lost;
};

class ChangeBatcher {
 public:
  explicit ChangeBatcher(BatchTiming timing) : timing_(timing) {}

  // A `lost` event makes the batch a rescan; `open` events are not changes.
  void add(Event&& event, int64_t now_ns);
  // Whether some watched file is being written (opened for writing, not yet closed).
  void set_writes_in_progress(bool writing) { writing_ = writing; }

  bool pending() const { return !entries_.empty() || rescan_; }
  // 0: due now; otherwise how long until it may be (-1: nothing pending).
  int64_t wait_ns(int64_t now_ns) const;
  bool due(int64_t now_ns) const { return wait_ns(now_ns) == 0; }
  Batch take();

 private:
  struct Entry {
    Event event;
    bool created_here = false;  // did not exist before this batch (as far as events tell)
    uint64_t seq = 0;           // its place in order_ (an entry erased and made again moves)
  };
  void merge(Event&& event);
  void merge_rename(Event&& event);
  void erase(const std::string& path);
  Entry& entry(const std::string& path);

  BatchTiming timing_;
  bool writing_ = false;
  bool rescan_ = false;
  LossCounts lost_;
  int64_t last_event_ns_ = 0;
  std::vector<std::pair<std::string, uint64_t>> order_;  // may hold erased entries' places
  uint64_t next_seq_ = 0;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace fstrail::devtools
