// Feeds synthetic events through the real recorder (store + spool) — the process the fault
// tests stop, restart and SIGKILL. Event i has id i and time base + i µs, so every run agrees.
//   store_feeder --db URL --spool DIR --count N [--rate EVENTS_PER_S] [--batch ROWS] [--base-ns NS]
//                [--wait-s S]   (S: how long to wait for the store to take everything; 0 = spool and exit)
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "core/clock.h"
#include "store/recorder.h"
#include "store/test_events.h"

namespace {
std::atomic<bool> g_stop{false};
void on_term(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  using namespace fstrail::store;
  std::string db, spool;
  long long count = 0, rate = 0, batch = 10000, wait_s = 300;
  long long base_ns = fstrail::realtime_now_ns();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--db") db = v;
    else if (k == "--spool") spool = v;
    else if (k == "--count") count = std::atoll(v.c_str());
    else if (k == "--rate") rate = std::atoll(v.c_str());
    else if (k == "--batch") batch = std::atoll(v.c_str());
    else if (k == "--base-ns") base_ns = std::atoll(v.c_str());
    else if (k == "--wait-s") wait_s = std::atoll(v.c_str());
  }
  struct sigaction sa{};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, nullptr);
  RecorderOptions o;
  o.host = "feeder";
  o.batch_rows = static_cast<size_t>(batch);
  o.retry_interval_ms = 500;
  auto recorder = start_recorder(db, spool, 4ull << 30, o);
  if (!recorder) {
    fmt::print(stderr, "feeder: {}\n", recorder.error().message);
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  for (long long i = 0; i < count && !g_stop; ++i) {
    (*recorder)->submit(fixtures::synthetic_event(i, "feeder", base_ns, 1000));
    if (i % 1000 == 999) {
      (*recorder)->flush();
      if (rate > 0) std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000 / rate));
    }
  }
  (*recorder)->flush();
  bool idle = true;
  for (long long waited = 0; wait_s > 0 && !g_stop; ++waited) {
    if ((idle = (*recorder)->wait_idle(1000))) break;
    if (waited >= wait_s) break;
  }
  (*recorder)->close();
  auto st = (*recorder)->stats();
  fmt::print("stored={} spooled={} replayed={} quarantined={} overflow={} outages={}\n", st.stored, st.spooled,
             st.replayed, st.quarantined, st.spool_overflow, st.outages);
  return idle || wait_s == 0 ? 0 : 3;
}
