// Scrape latency of the agent's /metrics under load: a realistic snapshot, an "agent" thread
// updating it 10 000 times a second under the lock the snapshot callback takes, and several
// concurrent scrapers, each opening a new connection per scrape (the slow case).
// Usage: fstrail_metrics_scrape [seconds=10] [scrapers=4] [interval_ms=100] (0: back to back);
// results: docs/metrics.md.
#include <httplib.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "metrics/render.h"
#include "metrics/server.h"

using namespace fstrail;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int seconds = argc > 1 ? std::atoi(argv[1]) : 10;
  int scrapers = argc > 2 ? std::atoi(argv[2]) : 4;
  auto interval = std::chrono::milliseconds(argc > 3 ? std::atoi(argv[3]) : 100);

  std::mutex lock;
  metrics::Snapshot shared;
  shared.backend = "bpf-tracepoint";
  shared.queue_fill_ratio = 0.01;
  shared.spool_oldest_age_seconds = 3;
  shared.start_time_seconds = 1765000000;
  // 20 guarded trees, each with every alert type seen; every remediation result.
  for (int rule = 0; rule < 20; ++rule)
    for (const char* type : {"owner", "group", "mode", "acl", "xattr", "created", "deleted"})
      shared.alerts[{"/srv/service-" + std::to_string(rule) + "/data", type}] = 1000 + rule;
  for (const char* result : {"fixed", "failed", "not-remediated", "skipped"})
    shared.remediations[result] = 42;

  std::atomic<bool> stop = false;
  std::thread agent([&] {
    auto next = Clock::now();
    for (uint64_t i = 0; !stop; ++i) {
      {
        std::lock_guard g(lock);
        shared.events_by_kind[1 + i % 12]++;
        shared.rows_stored++;
        shared.store_lag_seconds = 0.05;
        shared.spool_bytes = i % 100000;
      }
      next += std::chrono::microseconds(100);  // 10 000 updates/s
      std::this_thread::sleep_until(next);
    }
  });

  auto server = metrics::Server::start("127.0.0.1:0", [&] {
    std::lock_guard g(lock);
    return shared;
  });
  if (!server) {
    std::fprintf(stderr, "%s\n", server.error().message.c_str());
    return 1;
  }
  uint16_t port = (*server)->port();

  std::mutex results_lock;
  std::vector<double> latencies_ms;
  size_t body_bytes = 0, failures = 0;
  std::vector<std::thread> clients;
  auto end = Clock::now() + std::chrono::seconds(seconds);
  for (int c = 0; c < scrapers; ++c)
    clients.emplace_back([&] {
      std::vector<double> mine;
      size_t bad = 0, bytes = 0;
      for (auto next = Clock::now(); Clock::now() < end; next += interval) {
        std::this_thread::sleep_until(next);
        httplib::Client client("127.0.0.1", port);  // a new connection per scrape
        auto begin = Clock::now();
        auto res = client.Get("/metrics");
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - begin).count();
        if (!res || res->status != 200 || res->body.find("fstrail_build_info") == std::string::npos) {
          ++bad;
          continue;
        }
        bytes = res->body.size();
        mine.push_back(ms);
      }
      std::lock_guard g(results_lock);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      failures += bad;
      body_bytes = bytes;
    });
  for (auto& t : clients) t.join();
  stop = true;
  agent.join();

  // What the scrape costs without HTTP and scheduling: render() alone, same snapshot.
  metrics::Snapshot copy = shared;
  auto cpu_ms = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  };
  auto render_begin = Clock::now();
  double render_cpu_begin = cpu_ms();
  size_t rendered = 0;
  for (int i = 0; i < 1000; ++i) rendered += metrics::render(copy).size();
  double render_cpu_ms = (cpu_ms() - render_cpu_begin) / 1000;
  double render_ms = std::chrono::duration<double, std::milli>(Clock::now() - render_begin).count() / 1000;

  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms.empty()
               ? 0.0
               : latencies_ms[std::min(latencies_ms.size() - 1, size_t(p * latencies_ms.size()))];
  };
  std::printf("render() alone: %.3f ms CPU, %.3f ms wall (%zu bytes)\n", render_cpu_ms, render_ms,
              rendered / 1000);
  std::printf("scrapers %d every %lld ms, %d s: %zu scrapes (%.0f/s), %zu failed, body %zu bytes\n", scrapers,
              static_cast<long long>(interval.count()), seconds, latencies_ms.size(),
              latencies_ms.size() / double(seconds), failures, body_bytes);
  std::printf("latency ms: median %.3f  p90 %.3f  p99 %.3f  max %.3f\n", pct(0.5), pct(0.9), pct(0.99),
              latencies_ms.empty() ? 0.0 : latencies_ms.back());
  return failures == 0 && !latencies_ms.empty() ? 0 : 1;
}
