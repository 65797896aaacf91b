// How often fanotify and inotify read their queue: at most once a millisecond.
//
// A reader that keeps up with a writer reads a few events at a time, and each read takes
// the queue's lock the writer needs and leaves the reader to be woken by the writer's next
// event: a writer inside the tree ran 2.1x as long as without fstrail on fanotify, 1.45x
// with this (bench/results/fanotify.md). A read that does not fill the buffer took every
// event queued then, so a caller that reads until one does still gets every event there is. An event that comes over a millisecond after the
// last read is read at once (a process that exits quickly must still be in /proc when its
// event is read, and a lone event is not held back); later ones gather until a millisecond
// after it. A read that filled the buffer is followed at once: more are waiting.
#pragma once

#include <time.h>

#include <cstdint>

#include "core/clock.h"

namespace fstrail {

class ReadPacer {
 public:
  static constexpr int64_t kGatherNs = 1'000'000;

  // Before a read.
  void wait() const {
    if (filled_) return;
    int64_t wait_ns = last_read_ns_ + kGatherNs - boottime_now_ns();
    if (wait_ns <= 0) return;
    timespec gather{0, static_cast<long>(wait_ns)};
    ::nanosleep(&gather, nullptr);
  }
  // After a read that returned events; `filled`: it filled the buffer.
  void read_done(bool filled) {
    last_read_ns_ = boottime_now_ns();
    filled_ = filled;
  }
  bool filled() const { return filled_; }

 private:
  int64_t last_read_ns_ = 0;  // CLOCK_BOOTTIME
  bool filled_ = false;
};

}  // namespace fstrail
