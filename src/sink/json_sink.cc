#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/text.h"
#include "sink/sink.h"

namespace fstrail {
namespace {

using Json = nlohmann::ordered_json;

template <typename T>
Json or_null(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

// Paths are bytes: invalid UTF-8 is replaced by U+FFFD in `key` (when dumped) and
// kept exactly, base64, in `key_b64`.
void put_path(Json& j, const char* key, const std::optional<std::string>& path) {
  j[key] = or_null(path);
  if (path && !is_valid_utf8(*path)) j[std::string(key) + "_b64"] = base64_encode(*path);
}

}  // namespace

std::string event_to_json(const Event& e) {
  Json j;
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
  if (e.denied) j["denied"] = true;
  if (e.kind == EventKind::kLost) j["lost"] = or_null(e.lost);
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void JsonLinesSink::write(const Event& event) {
  std::string line = event_to_json(event);
  line += '\n';
  fwrite(line.data(), 1, line.size(), out_);
}

void JsonLinesSink::flush() { fflush(out_); }

}  // namespace fstrail
