// Clocks: realtime for event times, and the boot-time offset that turns
// bpf_ktime_get_boot_ns() stamps into wall-clock times.
#pragma once

#include <cstdint>
#include <string>

namespace fstrail {

int64_t realtime_now_ns();
int64_t boottime_now_ns();

// RFC 3339 in UTC with nanoseconds: 2026-11-23T16:13:20.123456789Z
std::string format_rfc3339(int64_t realtime_ns);

// The same text, with the part up to the second formatted once per
// second: events come in batches that share their second, and gmtime_r plus
// formatting was a visible share of the JSON sink's time under a burst.
class Rfc3339Formatter {
 public:
  // Writes the text at `out`, which has room for kMaxLength bytes; returns its end.
  char* write(char* out, int64_t realtime_ns);
  static constexpr size_t kMaxLength = 40;

 private:
  int64_t sec_ = INT64_MIN;
  char prefix_[24] = {};  // "2026-11-23T16:13:20." without a terminator
  size_t prefix_len_ = 0;
};

// Converts CLOCK_BOOTTIME stamps to CLOCK_REALTIME; refresh() follows wall-clock steps.
class BootClock {
 public:
  BootClock() { refresh(); }
  void refresh() { offset_ns_ = realtime_now_ns() - boottime_now_ns(); }
  // A stamp no kernel gives (a corrupt record) saturates instead of overflowing.
  int64_t to_realtime(uint64_t boot_ns) const {
    int64_t t;
    if (boot_ns > static_cast<uint64_t>(INT64_MAX) || __builtin_add_overflow(static_cast<int64_t>(boot_ns), offset_ns_, &t))
      return INT64_MAX;
    return t;
  }

 private:
  int64_t offset_ns_ = 0;
};

}  // namespace fstrail
