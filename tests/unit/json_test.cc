#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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
}

}  // namespace
}  // namespace fstrail
