// `fstrail query`'s filter parsing and SQL on arbitrary filter values: one value per line
// (path, since, until, user, comm, kinds, host, flags). Every value the parsers accept makes a
// query both dialects build and SQLite runs without error, and what a --path returns is on it.
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/clock.h"
#include "filter/filter.h"
#include "store/query_sql.h"
#include "store/store.h"

using namespace fstrail;
using namespace fstrail::store;

namespace {

EventStore& sqlite_store() {
  static std::unique_ptr<EventStore> store = [] {
    char tmpl[] = "/dev/shm/fstrail-fuzz-query-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    auto opened = open_store(std::string("sqlite://") + tmpl + "/events.db");
    if (!opened) std::abort();
    std::vector<StoredEvent> rows;
    const char* paths[] = {"/srv/app/a", "/srv/app/", "/srv/app%/b", "/srv/_x", "/etc/passwd", "/srv/app/'; --"};
    int64_t now = realtime_now_ns();
    for (int i = 0; i < 60; ++i) {
      StoredEvent row;
      row.host = i % 2 ? "web1" : "h'; DROP TABLE x; --";
      row.event_id = i;
      row.event.time_ns = now - int64_t{i} * 600'000'000'000;
      row.event.kind = static_cast<EventKind>(1 + i % 12);
      row.event.path = paths[i % 6];
      if (i % 5 == 0) row.event.old_path = std::string(paths[(i + 1) % 6]) + "~";
      row.event.uid = static_cast<uint32_t>(i % 3);
      row.event.comm = i % 2 ? "vim" : "%";
      row.event.backend = "fuzz";
      rows.push_back(std::move(row));
    }
    if (auto err = (*opened)->insert(rows)) {
      std::fprintf(stderr, "%s\n", err->error.message.c_str());
      std::abort();
    }
    return std::move(*opened);
  }();
  return *store;
}

bool on_path(const std::string& spec, const std::string& path) {
  if (!spec.empty() && spec.back() == '/') return path.compare(0, spec.size(), spec) == 0;
  return path == spec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> field;
  for (size_t start = 0; field.size() < 8;) {
    size_t end = text.find('\n', start);
    field.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  field.resize(8);
  QuerySpec spec;
  int64_t now = realtime_now_ns();
  if (!field[0].empty()) spec.path = field[0];
  if (!field[1].empty()) {
    auto t = parse_time_arg(field[1], now);
    if (!t) return 0;
    spec.since_ns = *t;
  }
  if (!field[2].empty()) {
    auto t = parse_time_arg(field[2], now);
    if (!t) return 0;
    spec.until_ns = *t;
  }
  if (!field[3].empty()) {
    auto uid = parse_user(field[3]);
    if (!uid) return 0;
    spec.uid = *uid;
  }
  if (!field[4].empty()) spec.comm = field[4];
  if (!field[5].empty()) {
    auto kinds = parse_kinds(field[5]);
    if (!kinds) return 0;
    spec.kinds = *kinds;
  }
  if (!field[6].empty()) spec.host = field[6];
  uint8_t flags = field[7].empty() ? 0 : static_cast<uint8_t>(field[7][0]);
  spec.login_user = flags & 1;
  spec.last_per_path = flags & 2;
  if (flags & 4) spec.limit = 1 + (flags >> 3);

  for (auto dialect : {SqlDialect::kSqlite, SqlDialect::kPostgres}) {
    SqlQuery q = build_query_sql(spec, dialect, (flags & 128) ? 0.5 : -1);
    if (q.sql.empty()) std::abort();
  }
  auto rows = sqlite_store().query(spec);
  if (!rows) std::abort();  // an accepted filter is never an SQL error
  for (const auto& row : *rows) {
    if (spec.path && !on_path(*spec.path, row.event.path) &&
        !(row.event.old_path && on_path(*spec.path, *row.event.old_path)))
      std::abort();
    if (spec.host && row.host != *spec.host) std::abort();
    if (spec.comm && row.event.comm != *spec.comm) std::abort();
  }
  return 0;
}
