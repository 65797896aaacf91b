// Store benchmark: ingest rate and client CPU into PostgreSQL and SQLite through the real
// recorder (queue → writer thread → binary COPY / batched inserts), and the "who touched
// /srv/app/ in the last hour" query (and one exact path over all time) at a large stored
// history. Medians of --runs. --copy-runs N also times the server alone: a server-side
// `COPY ... FROM 'file' (FORMAT binary)` of the same events into the same indexed table, the
// floor of what any client can reach. FSTRAIL_BENCH_WRITERS sets the recorder's writers.
//   fstrail_store_bench [--events 1000000] [--stored 10000000] [--runs 3] [--copy-runs 0] [--dir /var/tmp]
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "core/clock.h"
#include "store/pg_server.h"
#include "store/postgres/postgres_store.h"
#include "store/record.h"
#include "store/recorder.h"
#include "store/test_events.h"

using namespace fstrail;
using namespace fstrail::store;

namespace {

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Reads every byte of events [begin, end) (the structs and the strings they own) into the
// cache; returns the thread CPU time it took.
double touch(const std::vector<StoredEvent>& events, size_t begin, size_t end) {
  double t0 = thread_cpu_seconds();
  uint64_t sum = 0;
  auto bytes = [&](std::string_view s) {
    for (size_t k = 0; k < s.size(); k += 64) sum += static_cast<unsigned char>(s[k]);
    if (!s.empty()) sum += static_cast<unsigned char>(s.back());
  };
  for (size_t i = begin; i < end; ++i) {
    const StoredEvent& row = events[i];
    const char* p = reinterpret_cast<const char*>(&row);
    for (size_t k = 0; k < sizeof row; k += 64) sum += static_cast<unsigned char>(p[k]);
    bytes(row.host);
    bytes(row.event.path);
    for (const auto* v : {&row.event.old_path, &row.event.comm, &row.event.exe, &row.event.cgroup})
      if (*v) bytes(**v);
  }
  asm volatile("" : : "r"(sum));
  return thread_cpu_seconds() - t0;
}

struct IngestResult {
  double events_per_s, cpu_s_per_million;
};

IngestResult ingest(const std::string& url, const std::string& spool, const std::vector<StoredEvent>& events) {
  RecorderOptions o;
  o.host = "bench";
  if (const char* rows = std::getenv("FSTRAIL_BENCH_BATCH")) o.batch_rows = std::strtoul(rows, nullptr, 10);
  if (const char* w = std::getenv("FSTRAIL_BENCH_WRITERS")) o.writers = std::strtoul(w, nullptr, 10);
  auto recorder = start_recorder(url, spool, 8ull << 30, o);
  if (!recorder) {
    fmt::print(stderr, "bench: {}\n", recorder.error().message);
    std::exit(1);
  }
  rusage producer0{};
  getrusage(RUSAGE_THREAD, &producer0);
  double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  // The producer here is instantaneous: keep it just ahead of the writers so the benchmark
  // measures what the store sustains, not the spool. Once the queue passes kHigh, it sleeps
  // until the writers have drained it to about kLow (the time estimated from the rate they drain
  // at), so the pacing costs a few wake-ups per 60k events rather than one every few
  // milliseconds (each wake-up is a context switch, whose CPU would be counted as the recorder's).
  // Below kLow the writers still have two full batches waiting, so they never starve.
  constexpr size_t kHigh = 100000, kLow = 40000;
  // A live event reaches the recorder just decoded, in cache; the workload's events (~0.5 KB
  // each, 1 M of them) come from memory. Each chunk is read once before it is submitted and
  // the producer's CPU for that read is left out of the recorder's (FSTRAIL_BENCH_VERBOSE
  // prints it).
  constexpr size_t kChunk = 2048;
  double harness_cpu = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i % kChunk == 0) harness_cpu += touch(events, i, std::min(events.size(), i + kChunk));
    (*recorder)->submit(events[i]);
    if (i % 4096 == 4095) {
      (*recorder)->flush();
      size_t depth = (*recorder)->queue_depth();
      if (depth <= kHigh) continue;
      for (; depth > kLow; depth = (*recorder)->queue_depth()) {
        double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        double drained_per_s = static_cast<double>(i + 1 - depth) / std::max(elapsed, 1e-3);
        double wait_s = static_cast<double>(depth - kLow) / std::max(drained_per_s, 1000.0);
        std::this_thread::sleep_for(std::chrono::duration<double>(std::clamp(wait_s, 0.002, 0.2)));
      }
    }
  }
  (*recorder)->flush();
  rusage producer{};
  getrusage(RUSAGE_THREAD, &producer);
  (*recorder)->close();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = cpu_seconds() - cpu0 - harness_cpu;
  if (std::getenv("FSTRAIL_BENCH_VERBOSE")) {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto secs_of = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
    fmt::print(stderr,
               "bench: producer thread during the run: user {:.3f} s, sys {:.3f} s, {} minor faults, "
               "{} voluntary + {} involuntary context switches\n",
               secs_of(producer.ru_utime) - secs_of(producer0.ru_utime),
               secs_of(producer.ru_stime) - secs_of(producer0.ru_stime), producer.ru_minflt - producer0.ru_minflt,
               producer.ru_nvcsw - producer0.ru_nvcsw, producer.ru_nivcsw - producer0.ru_nivcsw);
    fmt::print(stderr, "bench: reading the workload's events (left out of the client CPU): {:.3f} s\n", harness_cpu);
    fmt::print(stderr, "bench: user {}.{:06} sys {}.{:06} (process totals) minflt {}\n", ru.ru_utime.tv_sec,
               ru.ru_utime.tv_usec, ru.ru_stime.tv_sec, ru.ru_stime.tv_usec, ru.ru_minflt);
  }
  auto st = (*recorder)->stats();
  if (st.stored != events.size() || st.spooled != 0)
    fmt::print(stderr, "bench: stored {} spooled {} of {}\n", st.stored, st.spooled, events.size());
  double millions = static_cast<double>(events.size()) / 1e6;
  return {static_cast<double>(events.size()) / secs, cpu / millions};
}

// Loads `count` events ending now (one every step), straight through the store in 10k batches.
void load(EventStore& store, int64_t count, int64_t now, int64_t days) {
  const int64_t step = 86'400'000'000'000LL * days / count;
  std::vector<StoredEvent> batch;
  for (int64_t i = 0; i < count; i += 10000) {
    batch.clear();
    for (int64_t j = i; j < std::min(count, i + 10000); ++j)
      batch.push_back(fixtures::synthetic_event(j, "bench", now - (count - j) * step, 0));
    for (auto& row : batch) row.event.time_ns = now - (count - row.event_id) * step;
    if (auto err = store.insert(batch)) {
      fmt::print(stderr, "bench: load: {}\n", err->error.message);
      std::exit(1);
    }
    if (i % 1'000'000 == 0) fmt::print(stderr, "bench: loaded {} of {} into {}\n", i, count, store.kind());
  }
}

// Each measured run starts with the previous run's data written out and gone (runs drop their
// database when done): without this the server's checkpoint and the kernel's writeback of one run's
// data ran during the next, and the page cache grew by every run (SQLite's rate fell run after run,
// 214k to 151k/s, when it alternated with PostgreSQL).
void settle(const fixtures::PgServer& server) {
  server.psql(server.conninfo(), "CHECKPOINT");
  ::sync();
}

void drop_database(const fixtures::PgServer& server, const std::string& name) {
  if (std::string out = server.psql(server.conninfo(), "DROP DATABASE " + name); out != "DROP DATABASE")
    fmt::print(stderr, "bench: cannot drop {}: {}\n", name, out);
}

// The server alone: the workload as one binary COPY file, loaded by the server itself into a
// fresh database (same schema, partitions made by the store first). Returns rows/s.
double server_copy(fixtures::PgServer& server, const std::string& work, const std::vector<StoredEvent>& events,
                   int run) {
  std::string file = fmt::format("{}/events-{}.pgcopy", work, run);
  {
    std::string buf;
    append_copy_header(buf);
    std::string rec;
    EventRecordView view;
    for (const auto& row : events) {
      rec.clear();
      encode_event(rec, row);
      parse_record(rec, view);
      append_copy_row(buf, view);
    }
    append_copy_trailer(buf);
    FILE* f = std::fopen(file.c_str(), "w");
    std::fwrite(buf.data(), 1, buf.size(), f);
    std::fclose(f);
    std::filesystem::permissions(file, std::filesystem::perms::others_read, std::filesystem::perm_options::add);
  }
  std::string db = server.create_database(fmt::format("servercopy{}", run));
  { auto store = open_store(db); }  // schema and partitions
  settle(server);
  auto t0 = std::chrono::steady_clock::now();
  std::string out = server.psql(db, fmt::format("COPY fstrail_events FROM '{}' (FORMAT binary)", file));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::filesystem::remove(file);
  if (out != fmt::format("COPY {}", events.size())) fmt::print(stderr, "bench: server COPY: {}\n", out);
  drop_database(server, fmt::format("servercopy{}", run));
  return static_cast<double>(events.size()) / secs;
}

double query_ms(EventStore& store, const QuerySpec& spec, size_t* rows) {
  std::vector<double> ms;
  for (int i = 0; i < 11; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto result = store.query(spec);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (!result) {
      fmt::print(stderr, "bench: query: {}\n", result.error().message);
      std::exit(1);
    }
    *rows = result->size();
  }
  return median(ms);
}

}  // namespace

int main(int argc, char** argv) {
  long long events = 1'000'000, stored = 10'000'000, runs = 3, days = 10, copy_runs = 0;
  std::string dir = "/var/tmp", only;
  CLI::App app{"Store benchmark: ingest rate and client CPU through the recorder into PostgreSQL and SQLite, "
               "the server's own COPY rate, and the \"who touched /srv/app/ in the last hour\" query at N stored "
               "events. Starts its own PostgreSQL (run as root). See bench/store/README.md."};
  app.add_option("--events", events, "events per ingest run")->capture_default_str();
  app.add_option("--runs", runs, "ingest runs per store (medians reported)")->capture_default_str();
  app.add_option("--copy-runs", copy_runs, "server-side COPY runs (the server alone)")->capture_default_str();
  app.add_option("--stored", stored, "events bulk-loaded for the query timings (0: no queries)")->capture_default_str();
  app.add_option("--days", days, "days the stored events span, ending now")->capture_default_str();
  app.add_option("--dir", dir, "where the databases and spools go")->capture_default_str();
  app.add_option("--only", only, "one store only")->check(CLI::IsMember({"postgresql", "sqlite"}));
  CLI11_PARSE(app, argc, argv);
  fixtures::PgServer server("-c shared_buffers=512MB -c wal_buffers=64MB -c checkpoint_timeout=30min");
  if (std::string err = server.start(); !err.empty()) {
    fmt::print(stderr, "bench: cannot start PostgreSQL: {}\n", err);
    return 1;
  }
  std::string work = dir + "/fstrail-store-bench";
  std::filesystem::remove_all(work);
  std::filesystem::create_directories(work);

  int64_t now = realtime_now_ns();
  std::vector<StoredEvent> workload;
  workload.reserve(static_cast<size_t>(events));
  for (long long i = 0; i < events; ++i) workload.push_back(fixtures::synthetic_event(i, "bench", now, 1000));

  std::vector<double> pg_rate, pg_cpu, lite_rate, lite_cpu;
  for (long long r = 0; r < runs; ++r) {
    IngestResult p{}, l{};
    if (only != "sqlite") {
      settle(server);
      p = ingest(server.create_database(fmt::format("ingest{}", r)), fmt::format("{}/spool-pg{}", work, r), workload);
      pg_rate.push_back(p.events_per_s);
      pg_cpu.push_back(p.cpu_s_per_million);
      drop_database(server, fmt::format("ingest{}", r));
    }
    if (only != "postgresql") {
      settle(server);
      std::string db = fmt::format("{}/ingest{}.db", work, r);
      l = ingest("sqlite://" + db, fmt::format("{}/spool-lite{}", work, r), workload);
      lite_rate.push_back(l.events_per_s);
      lite_cpu.push_back(l.cpu_s_per_million);
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(db + suffix);
    }
    fmt::print(stderr, "bench: run {}: PostgreSQL {:.0f}/s {:.3f} cpu-s/M, SQLite {:.0f}/s {:.3f} cpu-s/M\n", r,
               p.events_per_s, p.cpu_s_per_million, l.events_per_s, l.cpu_s_per_million);
  }
  std::vector<double> copy_rate;
  for (long long r = 0; r < copy_runs && only != "sqlite"; ++r) {
    copy_rate.push_back(server_copy(server, work, workload, static_cast<int>(r)));
    fmt::print(stderr, "bench: server-side COPY run {}: {:.0f} rows/s\n", r, copy_rate.back());
  }
  workload.clear();
  workload.shrink_to_fit();
  fmt::print("| ingest ({} events, {} runs) | events/s (median) | client CPU s per 1M events (median) |\n", events, runs);
  fmt::print("|---|---|---|\n");
  if (!pg_rate.empty())
    fmt::print("| PostgreSQL 15, binary COPY | {:.0f} | {:.3f} |\n", median(pg_rate), median(pg_cpu));
  if (!lite_rate.empty()) fmt::print("| SQLite WAL | {:.0f} | {:.3f} |\n", median(lite_rate), median(lite_cpu));
  if (!copy_rate.empty())
    fmt::print("| PostgreSQL server alone (server-side binary COPY from a file, {} runs) | {:.0f} | — |\n",
               copy_rate.size(), median(copy_rate));
  fmt::print("\n");
  std::fflush(stdout);

  if (stored > 0) {
    auto pg = open_store(server.create_database("history"));
    auto lite = open_store(fmt::format("sqlite://{}/history.db", work));
    if (!pg || !lite) return 1;
    auto t0 = std::chrono::steady_clock::now();
    if (only != "sqlite") load(**pg, stored, now, days);
    double pg_load = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    server.psql(server.conninfo().replace(server.conninfo().find("dbname=postgres"), 15, "dbname=history"),
                "VACUUM ANALYZE fstrail_events");
    t0 = std::chrono::steady_clock::now();
    if (only != "postgresql") load(**lite, stored, now, days);
    double lite_load = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    QuerySpec hour;
    hour.path = "/srv/app/";
    hour.since_ns = now - 3600LL * 1'000'000'000;
    QuerySpec exact;  // one file, all time (synthetic_event: 1 event in 8000 per path)
    exact.path = "/srv/app/dir7/file3.txt";
    size_t pg_rows = 0, lite_rows = 0, pg_exact_rows = 0, lite_exact_rows = 0;
    double pg_ms = only != "sqlite" ? query_ms(**pg, hour, &pg_rows) : 0;
    double lite_ms = only != "postgresql" ? query_ms(**lite, hour, &lite_rows) : 0;
    double pg_exact_ms = only != "sqlite" ? query_ms(**pg, exact, &pg_exact_rows) : 0;
    double lite_exact_ms = only != "postgresql" ? query_ms(**lite, exact, &lite_exact_rows) : 0;
    if (std::getenv("FSTRAIL_BENCH_EXPLAIN")) {
      time_t since = static_cast<time_t>(now / 1'000'000'000 - 3600);
      struct tm tm{};
      gmtime_r(&since, &tm);
      char hour_ago[64];
      std::strftime(hour_ago, sizeof hour_ago, "%Y-%m-%d %H:%M:%S+00", &tm);
      std::string history = server.conninfo().replace(server.conninfo().find("dbname=postgres"), 15, "dbname=history");
      fmt::print(stderr, "{}\n", server.psql(history, fmt::format(
          "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM fstrail_events WHERE ((path >= '/srv/app/'::bytea AND path < "
          "'/srv/app0'::bytea) OR (old_path >= '/srv/app/'::bytea AND old_path < '/srv/app0'::bytea)) AND time >= "
          "'{}'::timestamptz", hour_ago)));
      fmt::print(stderr, "{}\n", server.psql(history,
          "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM fstrail_events WHERE path = '/srv/app/dir7/file3.txt'::bytea "
          "OR old_path = '/srv/app/dir7/file3.txt'::bytea"));
    }
    fmt::print("| query at {} stored events (over {} days) | median ms (11 runs) | rows | bulk load events/s |\n", stored, days);
    fmt::print("|---|---|---|---|\n");
    // A store left out with --only has no row.
    if (only != "sqlite") {
      fmt::print("| PostgreSQL: --path /srv/app/ --since 1h | {:.2f} | {} | {:.0f} |\n", pg_ms, pg_rows, stored / pg_load);
      fmt::print("| PostgreSQL: --path {} (all time) | {:.2f} | {} | |\n", *exact.path, pg_exact_ms, pg_exact_rows);
    }
    if (only != "postgresql") {
      fmt::print("| SQLite: --path /srv/app/ --since 1h | {:.2f} | {} | {:.0f} |\n", lite_ms, lite_rows, stored / lite_load);
      fmt::print("| SQLite: --path {} (all time) | {:.2f} | {} | |\n", *exact.path, lite_exact_ms, lite_exact_rows);
    }
  }
  std::filesystem::remove_all(work);
  return 0;
}
