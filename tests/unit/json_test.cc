#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <vector>

#include "core/clock.h"
#include "core/text.h"
#include "sink/sink.h"

namespace fstrail {
namespace {

using nlohmann::json;

Event sample() {
  Event e;
  e.time_ns = 1'700'000'000'123'456'789;
  e.kind = EventKind::kCreate;
  e.path = "/srv/app/config.yml";
  e.backend = "test";
  return e;
}

TEST(EventJson, HasEveryContractFieldWithNullsForUnknowns) {
  json j = json::parse(event_to_json(sample()));
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(j["kind"], "create");
  EXPECT_EQ(j["path"], "/srv/app/config.yml");
  for (const char* key : {"old_path", "is_dir", "dev", "ino", "pid", "tid", "ppid", "uid", "gid", "euid", "egid",
                          "loginuid", "comm", "exe", "cgroup"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_TRUE(j[key].is_null()) << key;
  }
  EXPECT_EQ(j["backend"], "test");
  EXPECT_EQ(j["actor_source"], "none");
  EXPECT_FALSE(j.contains("path_b64"));
  EXPECT_FALSE(j.contains("old_mode"));
}

TEST(EventJson, InvalidUtf8PathIsReplacedAndKeptExactlyInBase64) {
  Event e = sample();
  e.kind = EventKind::kRename;
  e.path = std::string("/t/bad\xff\xfe" "name");
  e.old_path = "/t/old";
  std::string line = event_to_json(e);
  json j = json::parse(line);
  EXPECT_EQ(j["path"], "/t/bad\xef\xbf\xbd\xef\xbf\xbdname");
  EXPECT_EQ(base64_decode(j["path_b64"].get<std::string>()), e.path);
  EXPECT_EQ(j["old_path"], "/t/old");
  EXPECT_FALSE(j.contains("old_path_b64"));
}

TEST(EventJson, ControlCharactersNeverBreakTheLine) {
  Event e = sample();
  e.path = "/t/new\nline\r\x01";
  e.comm = "tab\there";
  std::string line = event_to_json(e);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  json j = json::parse(line);
  EXPECT_EQ(j["path"], e.path);
  EXPECT_EQ(j["comm"], "tab\there");
}

TEST(EventJson, ChmodAndChownCarryOldAndNewValues) {
  Event e = sample();
  e.kind = EventKind::kChmod;
  e.old_mode = 0100644;
  e.new_mode = 0100777;
  json j = json::parse(event_to_json(e));
  EXPECT_EQ(j["old_mode"], 0100644);
  EXPECT_EQ(j["new_mode"], 0100777);

  e.kind = EventKind::kChown;
  e.new_uid = 0;
  j = json::parse(event_to_json(e));
  EXPECT_EQ(j["new_uid"], 0);
  EXPECT_TRUE(j["old_uid"].is_null());
  EXPECT_TRUE(j["new_gid"].is_null());
}

TEST(EventJson, ActorFieldsAndLoss) {
  Event e = sample();
  e.actor_source = ActorSource::kKernel;
  e.pid = 42;
  e.uid = 1000;
  e.loginuid = 1001;
  e.comm = "touch";
  json j = json::parse(event_to_json(e));
  EXPECT_EQ(j["pid"], 42);
  EXPECT_EQ(j["uid"], 1000);
  EXPECT_EQ(j["loginuid"], 1001);
  EXPECT_EQ(j["actor_source"], "kernel");

  Event lost = sample();
  lost.kind = EventKind::kLost;
  lost.lost = 17;
  j = json::parse(event_to_json(lost));
  EXPECT_EQ(j["kind"], "lost");
  EXPECT_EQ(j["lost"], 17);
  EXPECT_EQ(j["reason"], "unknown");
  lost.lost_reason = LossReason::kRingBufferFull;
  EXPECT_EQ(json::parse(event_to_json(lost))["reason"], "ring-buffer-full");
}


// The direct writer against the nlohmann encoder it replaced: byte-for-byte equal output
// for every kind, random bytes in paths and strings, and random null/known fields.
namespace reference {
using Ordered = nlohmann::ordered_json;
template <typename T>
Ordered or_null(const std::optional<T>& v) {
  return v ? Ordered(*v) : Ordered(nullptr);
}
void put_path(Ordered& j, const char* key, const std::optional<std::string>& path) {
  j[key] = or_null(path);
  if (path && !is_valid_utf8(*path)) j[std::string(key) + "_b64"] = base64_encode(*path);
}
std::string event_to_json(const Event& e) {
  Ordered j;
  j["time"] = format_rfc3339(e.time_ns);
  j["kind"] = kind_name(e.kind);
  put_path(j, "path", e.path);
  put_path(j, "old_path", e.old_path);
  j["is_dir"] = or_null(e.is_dir);
  j["dev"] = or_null(e.dev);
  j["ino"] = or_null(e.ino);
  j["pid"] = or_null(e.pid);
  j["tid"] = or_null(e.tid);
  j["ppid"] = or_null(e.ppid);
  j["uid"] = or_null(e.uid);
  j["gid"] = or_null(e.gid);
  j["euid"] = or_null(e.euid);
  j["egid"] = or_null(e.egid);
  j["loginuid"] = or_null(e.loginuid);
  j["sessionid"] = or_null(e.sessionid);
  j["comm"] = or_null(e.comm);
  j["exe"] = or_null(e.exe);
  j["cgroup"] = or_null(e.cgroup);
  j["backend"] = e.backend;
  j["actor_source"] = actor_source_name(e.actor_source);
  if (e.kind == EventKind::kChmod) {
    j["old_mode"] = or_null(e.old_mode);
    j["new_mode"] = or_null(e.new_mode);
  }
  if (e.kind == EventKind::kChown) {
    j["old_uid"] = or_null(e.old_uid);
    j["new_uid"] = or_null(e.new_uid);
    j["old_gid"] = or_null(e.old_gid);
    j["new_gid"] = or_null(e.new_gid);
  }
  if (e.error) j["error"] = *e.error;
  if (e.kind == EventKind::kLost) {
    j["lost"] = or_null(e.lost);
    j["reason"] = std::string(loss_reason_name(e.lost_reason));
  }
  return j.dump(-1, ' ', false, Ordered::error_handler_t::replace);
}
}  // namespace reference

class RandomEvents {
 public:
  explicit RandomEvents(uint32_t seed) : rng_(seed) {}
  // Bytes drawn to hit every branch: ASCII, escapes, control characters, valid multi-byte
  // sequences, their truncations, overlongs, surrogates, bytes that are never valid.
  std::string bytes() {
    static const std::vector<std::string> pieces = {
        "a", "/", "Z", " ", "\"", "\\", "\b", "\f", "\n", "\r", "\t", std::string(1, '\0'), "\x01", "\x1f", "\x7f",
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xc0\xaf", "\xc1\xbf",
        "\xe0\x80\x80", "\xe0\xa0\x80", "\xed\xa0\x80", "\xed\x9f\xbf", "\xf0\x80\x80\x80", "\xf4\x8f\xbf\xbf",
        "\xf4\x90\x80\x80", "\xf5", "\xff", "\xfe", "\x80", "\xbf", "\xee\x80\x80", "\xef\xbf\xbd"};
    std::string s;
    int n = static_cast<int>(rng_() % 12);
    for (int i = 0; i < n; ++i) {
      if (rng_() % 4 == 0) {
        s += static_cast<char>(rng_() % 256);
      } else {
        s += pieces[rng_() % pieces.size()];
      }
    }
    return s;
  }
  template <typename T>
  std::optional<T> maybe(T value) {
    return rng_() % 3 == 0 ? std::nullopt : std::optional<T>(value);
  }
  std::optional<std::string> maybe_string() { return rng_() % 3 == 0 ? std::nullopt : std::optional(bytes()); }
  Event event(EventKind kind) {
    Event e;
    e.time_ns = static_cast<int64_t>(rng_()) * 1'000'003 - (rng_() % 2 ? 1'000'000'000'000'000'000 : 0);
    e.kind = kind;
    e.path = "/" + bytes();
    if (rng_() % 2) e.old_path = "/" + bytes();
    e.is_dir = maybe<bool>(rng_() % 2);
    e.dev = maybe<uint64_t>(UINT64_MAX - rng_());
    e.ino = maybe<uint64_t>(rng_());
    e.actor_source = static_cast<ActorSource>(rng_() % 3);
    e.pid = maybe<int32_t>(static_cast<int32_t>(rng_()));
    e.tid = maybe<int32_t>(INT32_MIN);
    e.ppid = maybe<int32_t>(0);
    e.uid = maybe<uint32_t>(rng_());
    e.gid = maybe<uint32_t>(UINT32_MAX);
    e.euid = maybe<uint32_t>(0);
    e.egid = maybe<uint32_t>(rng_() % 2000);
    e.loginuid = maybe<uint32_t>(rng_());
    e.sessionid = maybe<uint32_t>(rng_());
    e.comm = maybe_string();
    e.exe = maybe_string();
    e.cgroup = maybe_string();
    e.old_mode = maybe<uint32_t>(rng_() % 0200000);
    e.new_mode = maybe<uint32_t>(rng_() % 0200000);
    e.old_uid = maybe<uint32_t>(rng_());
    e.new_uid = maybe<uint32_t>(rng_());
    e.old_gid = maybe<uint32_t>(rng_());
    e.new_gid = maybe<uint32_t>(rng_());
    if (rng_() % 4 == 0) e.error = static_cast<int32_t>(rng_() % 200) - 100;
    e.lost = maybe<uint64_t>(rng_());
    e.lost_reason = static_cast<LossReason>(rng_() % kLossReasonCount);
    e.backend = rng_() % 2 ? "fanotify" : "bpf-tracepoint";
    return e;
  }

 private:
  std::mt19937 rng_;
};

TEST(EventJson, DirectWriterPrintsExactlyWhatNlohmannPrinted) {
  RandomEvents random(20261123);
  int invalid_paths = 0;
  for (int round = 0; round < 3000; ++round) {
    for (int k = 1; k < kEventKindCount; ++k) {
      Event e = random.event(static_cast<EventKind>(k));
      std::string expected = reference::event_to_json(e);
      ASSERT_EQ(event_to_json(e), expected) << "kind " << k << " round " << round;
      if (!is_valid_utf8(e.path)) ++invalid_paths;
    }
  }
  EXPECT_GT(invalid_paths, 1000);  // the comparison did cover the replacement path
}

TEST(EventJson, EveryByteValueAloneAndInPairsMatchesNlohmann) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; b += 1) {
      Event e = sample();
      e.path = std::string("/") + static_cast<char>(a) + static_cast<char>(b);
      e.comm = std::string(1, static_cast<char>(a));
      ASSERT_EQ(event_to_json(e), reference::event_to_json(e)) << a << " " << b;
    }
  }
}

// Long strings go 8 bytes at a time while nothing needs escaping: every byte value at
// every position of a 40-byte ASCII path, so each lands in each lane of a word, at the
// start, in the middle and in the tail after the last whole word.
TEST(EventJson, EveryByteValueAtEveryPositionOfALongPathMatchesNlohmann) {
  const std::string ascii = "/srv/app/some-long-directory/name.txt.01";
  for (size_t at = 0; at < ascii.size(); ++at) {
    for (int b = 0; b < 256; ++b) {
      Event e = sample();
      e.path = ascii;
      e.path[at] = static_cast<char>(b);
      e.exe = e.path + e.path;
      ASSERT_EQ(event_to_json(e), reference::event_to_json(e)) << at << " " << b;
      e.path.insert(at, "\xe2\x82\xac");  // a valid 3-byte sequence before it
      ASSERT_EQ(event_to_json(e), reference::event_to_json(e)) << at << " " << b;
    }
  }
}

}  // namespace
}  // namespace fstrail

namespace fstrail {
namespace {

// The formatter that reuses the part up to the second against format_rfc3339: the same
// text for times in one second, across second, day, month and year boundaries, before
// 1970, and in any order (a cached second must never leak into another one).
TEST(Rfc3339Formatter, EqualsFormatRfc3339) {
  Rfc3339Formatter formatter;
  std::vector<int64_t> times;
  for (int64_t base : {int64_t{0}, int64_t{1'700'000'000'000'000'000}, int64_t{951'782'399'999'999'999} /* 2000-02-28 */,
                       int64_t{1'798'761'599'000'000'000} /* 2026-12-31T23:59:59 */, int64_t{-1}, int64_t{-86'400'000'000'001}})
    for (int64_t step : {int64_t{0}, int64_t{1}, int64_t{999'999'999}, int64_t{1'000'000'000}, int64_t{86'400'000'000'000}})
      for (int k = 0; k < 3; ++k) times.push_back(base + k * step);
  std::mt19937_64 rng(20261130);
  int64_t t = 1'764'500'000'000'000'000;
  for (int i = 0; i < 200000; ++i) {
    t += static_cast<int64_t>(rng() % 50'000'000);  // a stream of events: mostly the same second
    times.push_back(t);
    if (i % 1000 == 0) times.push_back(static_cast<int64_t>(rng() >> 2) - (int64_t{1} << 61));  // anywhere
  }
  char buf[Rfc3339Formatter::kMaxLength];
  for (int64_t ns : times) {
    char* end = formatter.write(buf, ns);
    ASSERT_EQ(std::string(buf, end), format_rfc3339(ns)) << ns;
  }
}

// The sink's batches (one write per flush) hold exactly the lines of the encoder, in
// order, whether a batch is small, spans kMaxPending, or is flushed twice.
TEST(JsonLinesSink, WritesExactlyTheEncodedLinesInBatches) {
  FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  std::string expected;
  {
    JsonLinesSink sink(f);
    Event e = sample();
    for (int batch = 0; batch < 3; ++batch) {
      int n = batch == 1 ? 20000 : 10;  // the second one crosses kMaxPending
      for (int i = 0; i < n; ++i) {
        e.time_ns += 333'333'333;
        e.path = "/srv/app/f" + std::to_string(batch) + "-" + std::to_string(i);
        // Now and then a path whose line is far longer than the room the sink keeps:
        // control characters (6 bytes each) and invalid bytes (U+FFFD and base64).
        if (i % 5000 == 7) e.path += std::string(300'000, i % 2 ? '\x01' : '\xff');
        sink.write(e);
        expected += event_to_json(e) + "\n";
      }
      sink.flush();
      sink.flush();
    }
    ASSERT_GT(expected.size(), JsonLinesSink::kMaxPending);
  }
  std::rewind(f);
  std::string got;
  char buf[65536];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) got.append(buf, n);
  std::fclose(f);
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace fstrail
