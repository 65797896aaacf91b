#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "metrics/render.h"

namespace fstrail::metrics {
namespace {

Snapshot example() {
  Snapshot s;
  s.backend = "fanotify";
  s.events_by_kind[static_cast<size_t>(EventKind::kCreate)] = 12;
  s.events_by_kind[static_cast<size_t>(EventKind::kModify)] = 3400;
  s.events_by_kind[static_cast<size_t>(EventKind::kLost)] = 1;
  s.lost.add(LossReason::kKernelQueueOverflow, 7);
  s.queue_fill_ratio = 0.25;
  s.spool_bytes = 4096;
  s.spool_oldest_age_seconds = 1.5;
  s.rows_stored = 3413;
  s.store_lag_seconds = 0.125;
  s.alerts[{"/srv/app", "owner"}] = 2;
  s.alerts[{"/srv/app", "mode"}] = 1;
  s.remediations["fixed"] = 2;
  s.remediations["failed"] = 1;
  s.config_reloads = 3;
  s.config_reload_failures = 1;
  s.start_time_seconds = 1765000000.5;
  return s;
}

TEST(MetricsRender, ExactOutput) {
  EXPECT_EQ(render(example()), R"(# HELP fstrail_build_info fstrail's version; the value is always 1.
# TYPE fstrail_build_info gauge
fstrail_build_info{version=")" FSTRAIL_VERSION R"("} 1
# HELP fstrail_process_start_time_seconds Unix time the agent started, in seconds.
# TYPE fstrail_process_start_time_seconds gauge
fstrail_process_start_time_seconds 1765000000.5
# HELP fstrail_events_total Events delivered to the sinks and the store, by kind and backend.
# TYPE fstrail_events_total counter
fstrail_events_total{backend="fanotify",kind="create"} 12
fstrail_events_total{backend="fanotify",kind="mkdir"} 0
fstrail_events_total{backend="fanotify",kind="delete"} 0
fstrail_events_total{backend="fanotify",kind="rmdir"} 0
fstrail_events_total{backend="fanotify",kind="rename"} 0
fstrail_events_total{backend="fanotify",kind="modify"} 3400
fstrail_events_total{backend="fanotify",kind="chmod"} 0
fstrail_events_total{backend="fanotify",kind="chown"} 0
fstrail_events_total{backend="fanotify",kind="truncate"} 0
fstrail_events_total{backend="fanotify",kind="link"} 0
fstrail_events_total{backend="fanotify",kind="symlink"} 0
fstrail_events_total{backend="fanotify",kind="xattr"} 0
fstrail_events_total{backend="fanotify",kind="open"} 0
fstrail_events_total{backend="fanotify",kind="lost"} 1
# HELP fstrail_events_lost_total Events lost, by reason (every reason, 0 included).
# TYPE fstrail_events_lost_total counter
fstrail_events_lost_total{reason="unknown"} 0
fstrail_events_lost_total{reason="kernel-queue-overflow"} 7
fstrail_events_lost_total{reason="ring-buffer-full"} 0
fstrail_events_lost_total{reason="bpf-map-full"} 0
fstrail_events_lost_total{reason="malformed-record"} 0
fstrail_events_lost_total{reason="unresolved-path"} 0
fstrail_events_lost_total{reason="unwatched-directory"} 0
fstrail_events_lost_total{reason="unwatched-mount"} 0
fstrail_events_lost_total{reason="spool-corrupt"} 0
fstrail_events_lost_total{reason="merged-by-kernel"} 0
fstrail_events_lost_total{reason="path-too-long"} 0
# HELP fstrail_queue_fill_ratio Fill of the kernel queue or ring buffer the backend reads, 0 to 1.
# TYPE fstrail_queue_fill_ratio gauge
fstrail_queue_fill_ratio{backend="fanotify"} 0.25
# HELP fstrail_spool_bytes Bytes of events spooled on disk, waiting for the store.
# TYPE fstrail_spool_bytes gauge
fstrail_spool_bytes 4096
# HELP fstrail_spool_oldest_event_age_seconds Age of the oldest spooled event, in seconds.
# TYPE fstrail_spool_oldest_event_age_seconds gauge
fstrail_spool_oldest_event_age_seconds 1.5
# HELP fstrail_store_rows_total Rows written to the store since the agent started.
# TYPE fstrail_store_rows_total counter
fstrail_store_rows_total 3413
# HELP fstrail_store_lag_seconds Now minus the time of the newest event stored, in seconds.
# TYPE fstrail_store_lag_seconds gauge
fstrail_store_lag_seconds 0.125
# HELP fstrail_alerts_total Guard alerts, by rule and type.
# TYPE fstrail_alerts_total counter
fstrail_alerts_total{rule="/srv/app",type="mode"} 1
fstrail_alerts_total{rule="/srv/app",type="owner"} 2
# HELP fstrail_remediations_total Guard remediations, by result.
# TYPE fstrail_remediations_total counter
fstrail_remediations_total{result="failed"} 1
fstrail_remediations_total{result="fixed"} 2
# HELP fstrail_config_reloads_total Configuration reloads (SIGHUP) applied.
# TYPE fstrail_config_reloads_total counter
fstrail_config_reloads_total 3
# HELP fstrail_config_reload_failures_total Configuration reloads (SIGHUP) rejected; the previous configuration stays.
# TYPE fstrail_config_reload_failures_total counter
fstrail_config_reload_failures_total 1
)");
}

TEST(MetricsRender, UnknownValuesAreAbsentNotZero) {
  Snapshot s = example();
  s.queue_fill_ratio.reset();
  s.spool_oldest_age_seconds.reset();
  std::string out = render(s);
  EXPECT_EQ(out.find("fstrail_queue_fill_ratio"), std::string::npos);
  EXPECT_EQ(out.find("fstrail_spool_oldest_event_age_seconds"), std::string::npos);
  EXPECT_NE(out.find("fstrail_spool_bytes 4096\n"), std::string::npos);
}

TEST(MetricsRender, EveryLossReasonEvenAtZero) {
  Snapshot s;
  s.lost.add(LossReason::kPathTooLong, 5);
  std::string out = render(s);
  for (int i = 0; i < kLossReasonCount; ++i) {
    auto reason = static_cast<LossReason>(i);
    std::string line = "fstrail_events_lost_total{reason=\"" + std::string(loss_reason_name(reason)) +
                       "\"} " + (reason == LossReason::kPathTooLong ? "5" : "0") + "\n";
    EXPECT_NE(out.find(line), std::string::npos) << line;
  }
}

TEST(MetricsRender, EscapesLabelValues) {
  Snapshot s;
  s.backend = "inotify";
  s.alerts[{"/srv/a\"b\\c\nd", "owner"}] = 1;
  s.remediations["not-\xff"] = 4;  // not UTF-8: shown as \xNN (then \ escaped)
  std::string out = render(s);
  EXPECT_NE(out.find("fstrail_alerts_total{rule=\"/srv/a\\\"b\\\\c\\nd\",type=\"owner\"} 1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("fstrail_remediations_total{result=\"not-\\\\xff\"} 4\n"), std::string::npos) << out;
}

TEST(MetricsRender, LargeCountersAndFractions) {
  Snapshot s;
  s.rows_stored = uint64_t{1} << 40;
  s.store_lag_seconds = 0.000123;
  std::string out = render(s);
  EXPECT_NE(out.find("fstrail_store_rows_total 1099511627776\n"), std::string::npos) << out;
  EXPECT_NE(out.find("fstrail_store_lag_seconds 0.000123\n"), std::string::npos) << out;
}

// Names: fstrail_ prefix, snake_case, counters end in _total, one TYPE per family.
TEST(MetricsRender, NamingConventions) {
  std::istringstream in(render(example()));
  std::set<std::string> families;
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("# TYPE ")) continue;
    std::istringstream words(line.substr(7));
    std::string name, type;
    words >> name >> type;
    EXPECT_TRUE(name.starts_with("fstrail_")) << name;
    EXPECT_EQ(name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string::npos) << name;
    if (type == "counter") {
      EXPECT_TRUE(name.ends_with("_total")) << name;
    }
    EXPECT_TRUE(families.insert(name).second) << name;
  }
  EXPECT_EQ(families.size(), 13u);
}

std::string run_promtool(const std::string& exposition) {
  std::string path = testing::TempDir() + "/fstrail-metrics-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << exposition;
  std::string cmd = std::string(FSTRAIL_PROMTOOL) + " check metrics < " + path + " 2>&1; echo rc=$?";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (p && fgets(buf, sizeof buf, p)) out += buf;
  if (p) pclose(p);
  std::remove(path.c_str());
  return out;
}

// A real parser and linter: promtool, from Debian's prometheus package (scripts/install-deps.sh).
TEST(MetricsRender, PromtoolAcceptsAndLintsClean) {
  ASSERT_STRNE(FSTRAIL_PROMTOOL, "") << "promtool not found at configure time: install Debian's prometheus "
                                        "package (scripts/install-deps.sh) and re-run cmake";
  Snapshot s = example();
  s.alerts[{"/srv/a\"b\\c\nd", "owner"}] = 1;
  s.remediations["not-\xff"] = 4;
  EXPECT_EQ(run_promtool(render(s)), "rc=0\n");
  EXPECT_EQ(run_promtool(render(Snapshot{})), "rc=0\n");
  // ... and it does reject what is wrong, so the two checks above mean something.
  EXPECT_NE(run_promtool("# TYPE fstrail_x counter\nfstrail_x{a=\"b} 1\n"), "rc=0\n");
  EXPECT_NE(run_promtool("# TYPE fstrail_x counter\nfstrail_x 1\n"), "rc=0\n");  // lint: no _total
}

}  // namespace
}  // namespace fstrail::metrics
