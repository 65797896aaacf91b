// Synthetic events for the store tests: every kind, every field, and the paths that
// break naive stores (invalid UTF-8, newlines, LIKE wildcards, 4 KiB).
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sink/sink.h"
#include "store/store.h"

namespace fstrail::store::fixtures {

inline constexpr int64_t kBaseTimeNs = 1'795'000'000'123'456'789;  // 2026-11-19, with nanoseconds

inline std::vector<StoredEvent> every_kind_events(const std::string& host, int64_t base_ns = kBaseTimeNs) {
  std::vector<StoredEvent> out;
  const std::string long_path = "/srv/app/" + std::string(4096 - 9 - 4, 'x') + ".txt";
  const std::vector<std::string> paths = {
      "/srv/app/plain.txt",        "/srv/app/bad\xff\xfe-utf8", "/srv/app/new\nline",
      "/srv/app/100%_done",        "/srv/app/a_b",              "/srv/app/sub/deep/file",
      long_path,                   "/etc/passwd",               "/srv/application/other",
      "/srv/app",                  "/srv/app0",                 "/tmp/x",
      "/srv/app/\xc3\xa9t\xc3\xa9", "/srv/app/x%y",
  };
  for (int k = 1; k < kEventKindCount; ++k) {
    for (size_t p = 0; p < paths.size(); ++p) {
      StoredEvent row;
      row.host = host;
      row.event_id = k * 1000 + static_cast<int64_t>(p);
      Event& e = row.event;
      e.time_ns = base_ns + k * 1'000'003 + static_cast<int64_t>(p) * 7;
      e.kind = static_cast<EventKind>(k);
      e.path = paths[p];
      e.backend = intern_backend_name(p % 2 ? "fanotify" : "bpf-lsm");
      if (p % 3 == 0) {  // every field known
        e.actor_source = ActorSource::kKernel;
        e.is_dir = (k == 2 || k == 4);
        e.dev = 0xfd00000000000001ull;  // above INT64_MAX: stored as a bit pattern
        e.ino = 1234567890123ull + p;
        e.pid = 4242 + k;
        e.tid = 4243 + k;
        e.ppid = 1;
        e.uid = 1000 + static_cast<uint32_t>(p % 2);
        e.gid = 1000;
        e.euid = 0;
        e.egid = 0;
        e.loginuid = 1001;
        e.sessionid = 4294967295u;
        e.comm = p == 3 ? "we\xffird" : "vim";
        e.exe = "/usr/bin/vim";
        e.cgroup = "/user.slice/user-1000.slice";
      } else if (p % 3 == 1) {
        e.actor_source = ActorSource::kProcfs;
        e.pid = 77;
        e.uid = 0;
        e.comm = "sh";
      }
      if (e.kind == EventKind::kRename) e.old_path = paths[(p + 1) % paths.size()];
      if (e.kind == EventKind::kChmod) {
        e.old_mode = 0100644;
        e.new_mode = 0100755;
      }
      if (e.kind == EventKind::kChown) {
        e.old_uid = 1000;
        e.new_uid = 0;
        if (p % 2) e.old_gid = 1000;
        e.new_gid = 4294967294u;
      }
      if (p == 5) e.error = 13;
      if (e.kind == EventKind::kLost) {
        e.lost = 18446744073709551615ull;
        e.lost_reason = LossReason::kSpoolCorrupt;
      }
      out.push_back(std::move(row));
    }
  }
  return out;
}

// Bulk workload: ~10 paths per directory, a few users and programs, one event per `step_ns`.
inline StoredEvent synthetic_event(int64_t i, const std::string& host, int64_t base_ns, int64_t step_ns) {
  static const char* const kTrees[] = {"/srv/app/", "/srv/www/", "/var/log/", "/home/alice/", "/etc/",
                                       "/srv/data/", "/opt/tool/", "/tmp/build/"};
  static const char* const kComms[] = {"vim", "python3", "nginx", "rsync", "bash", "gcc"};
  StoredEvent row;
  row.host = host;
  row.event_id = i;
  Event& e = row.event;
  e.time_ns = base_ns + i * step_ns;
  e.kind = static_cast<EventKind>(1 + i % 12);
  e.path = fmt::format("{}dir{}/file{}.txt", kTrees[i % 8], (i / 8) % 100, (i / 800) % 10);
  if (e.kind == EventKind::kRename) e.old_path = e.path + ".tmp";
  e.actor_source = ActorSource::kKernel;
  e.pid = static_cast<int32_t>(1000 + i % 5000);
  e.tid = e.pid;
  e.ppid = 1;
  e.uid = static_cast<uint32_t>(1000 + i % 4);
  e.gid = *e.uid;
  e.euid = *e.uid;
  e.egid = *e.uid;
  e.loginuid = 1000;
  e.sessionid = 3;
  e.comm = kComms[i % 6];
  e.exe = std::string("/usr/bin/") + *e.comm;
  e.dev = 2049;
  e.ino = static_cast<uint64_t>(100000 + i);
  e.is_dir = false;
  e.backend = intern_backend_name("fanotify");
  return row;
}

// Full equality: every field, the path bytes, host and id.
inline void expect_same_rows(const std::vector<StoredEvent>& a, const std::vector<StoredEvent>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].host, b[i].host) << i;
    EXPECT_EQ(a[i].event_id, b[i].event_id) << i;
    EXPECT_EQ(a[i].event.path, b[i].event.path) << i;
    EXPECT_EQ(a[i].event.old_path, b[i].event.old_path) << i;
    EXPECT_EQ(a[i].event.comm, b[i].event.comm) << i;
    EXPECT_EQ(event_to_json(a[i].event), event_to_json(b[i].event)) << i;
  }
}

}  // namespace fstrail::store::fixtures
