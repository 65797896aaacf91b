#include "core/clock.h"

#include <time.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include <fmt/format.h>

namespace fstrail {
namespace {

int64_t now_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

int64_t realtime_now_ns() { return now_ns(CLOCK_REALTIME); }
int64_t boottime_now_ns() { return now_ns(CLOCK_BOOTTIME); }

std::string format_rfc3339(int64_t realtime_ns) {
  int64_t sec = realtime_ns / 1'000'000'000;
  int64_t nsec = realtime_ns % 1'000'000'000;
  if (nsec < 0) {
    nsec += 1'000'000'000;
    --sec;
  }
  time_t t = static_cast<time_t>(sec);
  tm utc{};
  gmtime_r(&t, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, nsec);
}

char* Rfc3339Formatter::write(char* out, int64_t realtime_ns) {
  int64_t sec = realtime_ns / 1'000'000'000;
  int64_t nsec = realtime_ns % 1'000'000'000;
  if (nsec < 0) {
    nsec += 1'000'000'000;
    --sec;
  }
  if (sec != sec_) {
    time_t t = static_cast<time_t>(sec);
    tm utc{};
    gmtime_r(&t, &utc);
    auto end = fmt::format_to_n(prefix_, sizeof prefix_, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.", utc.tm_year + 1900,
                                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
    prefix_len_ = std::min(end.size, sizeof prefix_);
    sec_ = sec;
  }
  std::memcpy(out, prefix_, prefix_len_);
  out += prefix_len_;
  auto n = static_cast<uint32_t>(nsec);
  for (int i = 8; i >= 0; --i, n /= 10) out[i] = static_cast<char>('0' + n % 10);
  out[9] = 'Z';
  return out + 10;
}

}  // namespace fstrail
