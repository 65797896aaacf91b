// The sinks on arbitrary events (any bytes in names, any field present or not): the JSON is
// one valid object on one line, and the text sink writes exactly one line per event.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/event.h"
#include "sink/sink.h"

using fstrail::Event;
using fstrail::EventKind;

namespace {

template <typename T>
std::optional<T> maybe(FuzzedDataProvider& in) {
  if (!in.ConsumeBool()) return std::nullopt;
  return in.ConsumeIntegral<T>();
}

std::optional<std::string> maybe_string(FuzzedDataProvider& in) {
  if (!in.ConsumeBool()) return std::nullopt;
  return in.ConsumeRandomLengthString(256);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  Event e;
  e.time_ns = in.ConsumeIntegral<int64_t>();
  e.kind = static_cast<EventKind>(in.ConsumeIntegralInRange<int>(0, fstrail::kEventKindCount - 1));
  e.path = in.ConsumeRandomLengthString(512);
  e.old_path = maybe_string(in);
  if (in.ConsumeBool()) e.is_dir = in.ConsumeBool();
  e.dev = maybe<uint64_t>(in);
  e.ino = maybe<uint64_t>(in);
  e.actor_source = static_cast<fstrail::ActorSource>(in.ConsumeIntegralInRange<int>(0, 2));
  e.pid = maybe<int32_t>(in);
  e.tid = maybe<int32_t>(in);
  e.ppid = maybe<int32_t>(in);
  e.uid = maybe<uint32_t>(in);
  e.gid = maybe<uint32_t>(in);
  e.euid = maybe<uint32_t>(in);
  e.egid = maybe<uint32_t>(in);
  e.loginuid = maybe<uint32_t>(in);
  e.sessionid = maybe<uint32_t>(in);
  e.comm = maybe_string(in);
  e.exe = maybe_string(in);
  e.cgroup = maybe_string(in);
  e.old_mode = maybe<uint32_t>(in);
  e.new_mode = maybe<uint32_t>(in);
  e.old_uid = maybe<uint32_t>(in);
  e.new_uid = maybe<uint32_t>(in);
  e.old_gid = maybe<uint32_t>(in);
  e.new_gid = maybe<uint32_t>(in);
  e.error = maybe<int32_t>(in);
  e.denied = in.ConsumeBool();
  e.lost = maybe<uint64_t>(in);
  e.backend = "fuzz";

  std::string json = fstrail::event_to_json(e);
  if (json.find('\n') != std::string::npos) std::abort();
  auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) std::abort();

  std::string appended = "x";
  fstrail::append_event_json(appended, e);
  if (appended.substr(1) != json) std::abort();

  for (bool color : {false, true}) {
    char* text = nullptr;
    size_t len = 0;
    FILE* out = open_memstream(&text, &len);
    {
      auto sink = fstrail::make_text_sink(out, color);
      sink->write(e);
      sink->flush();
    }
    std::fclose(out);
    std::string_view line(text, len);
    bool one_line = !line.empty() && line.back() == '\n' && line.find('\n') == line.size() - 1;
    std::free(text);
    if (!one_line) std::abort();
  }
  return 0;
}
