#include "store/record.h"

#include <cstring>

namespace fstrail::store {
namespace {

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_str(std::string& out, std::string_view s) {
  put<uint32_t>(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

struct Reader {
  std::string_view in;
  bool ok = true;
  template <typename T>
  T get() {
    T v{};
    if (in.size() < sizeof v) {
      ok = false;
      return v;
    }
    std::memcpy(&v, in.data(), sizeof v);
    in.remove_prefix(sizeof v);
    return v;
  }
  std::string_view get_view() {
    uint32_t n = get<uint32_t>();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string_view s = in.substr(0, n);
    in.remove_prefix(n);
    return s;
  }
};

}  // namespace

void encode_event(std::string& out, const Event& e, std::string_view host, int64_t event_id) {
  put<int64_t>(out, e.time_ns);
  put<int64_t>(out, event_id);
  put<uint8_t>(out, static_cast<uint8_t>(e.kind));
  put<uint8_t>(out, static_cast<uint8_t>(e.actor_source));
  uint32_t mask = 0;
  int bit = 0;
  auto mark = [&](bool present) { mask |= present ? (1u << bit) : 0; ++bit; };
  mark(e.old_path.has_value());
  mark(e.is_dir.has_value());
  mark(e.dev.has_value());
  mark(e.ino.has_value());
  for (const auto* v : {&e.pid, &e.tid, &e.ppid}) mark(v->has_value());
  for (const auto* v : {&e.uid, &e.gid, &e.euid, &e.egid, &e.loginuid, &e.sessionid}) mark(v->has_value());
  for (const auto* v : {&e.comm, &e.exe, &e.cgroup}) mark(v->has_value());
  for (const auto* v : {&e.old_mode, &e.new_mode, &e.old_uid, &e.new_uid, &e.old_gid, &e.new_gid}) mark(v->has_value());
  mark(e.error.has_value());
  mark(e.lost.has_value());
  put<uint32_t>(out, mask);
  put_str(out, host);
  put_str(out, e.path);
  put_str(out, e.backend);
  if (e.old_path) put_str(out, *e.old_path);
  if (e.is_dir) put<uint8_t>(out, *e.is_dir);
  if (e.dev) put<uint64_t>(out, *e.dev);
  if (e.ino) put<uint64_t>(out, *e.ino);
  for (const auto* v : {&e.pid, &e.tid, &e.ppid}) if (*v) put<int32_t>(out, **v);
  for (const auto* v : {&e.uid, &e.gid, &e.euid, &e.egid, &e.loginuid, &e.sessionid}) if (*v) put<uint32_t>(out, **v);
  for (const auto* v : {&e.comm, &e.exe, &e.cgroup}) if (*v) put_str(out, **v);
  for (const auto* v : {&e.old_mode, &e.new_mode, &e.old_uid, &e.new_uid, &e.old_gid, &e.new_gid})
    if (*v) put<uint32_t>(out, **v);
  if (e.error) put<int32_t>(out, *e.error);
  if (e.lost) put<uint64_t>(out, *e.lost);
}

bool parse_record(std::string_view bytes, EventRecordView& v) {
  Reader r{bytes};
  v = EventRecordView{};
  v.time_ns = r.get<int64_t>();
  v.event_id = r.get<int64_t>();
  uint8_t kind = r.get<uint8_t>();
  v.kind = static_cast<EventKind>(kind);
  v.actor_source = static_cast<ActorSource>(r.get<uint8_t>());
  uint32_t mask = r.get<uint32_t>();
  int bit = 0;
  auto has = [&] { return (mask >> bit++) & 1u; };
  v.host = r.get_view();
  v.path = r.get_view();
  v.backend = r.get_view();
  if (has()) v.old_path = r.get_view();
  if (has()) v.is_dir = r.get<uint8_t>() != 0;
  if (has()) v.dev = r.get<uint64_t>();
  if (has()) v.ino = r.get<uint64_t>();
  for (auto* x : {&v.pid, &v.tid, &v.ppid}) if (has()) *x = r.get<int32_t>();
  for (auto* x : {&v.uid, &v.gid, &v.euid, &v.egid, &v.loginuid, &v.sessionid}) if (has()) *x = r.get<uint32_t>();
  for (auto* x : {&v.comm, &v.exe, &v.cgroup}) if (has()) *x = r.get_view();
  for (auto* x : {&v.old_mode, &v.new_mode, &v.old_uid, &v.new_uid, &v.old_gid, &v.new_gid})
    if (has()) *x = r.get<uint32_t>();
  if (has()) v.error = r.get<int32_t>();
  if (has()) v.lost = r.get<uint64_t>();
  return r.ok && r.in.empty() && kind >= 1 && kind < kEventKindCount;
}

bool decode_event(std::string_view bytes, StoredEvent& row) {
  EventRecordView v;
  if (!parse_record(bytes, v)) return false;
  auto opt_str = [](const std::optional<std::string_view>& s) -> std::optional<std::string> {
    if (!s) return std::nullopt;
    return std::string(*s);
  };
  Event& e = row.event;
  e = Event{};
  row.host = v.host;
  row.event_id = v.event_id;
  e.time_ns = v.time_ns;
  e.kind = v.kind;
  e.actor_source = v.actor_source;
  e.path = v.path;
  e.backend = intern_backend_name(v.backend);
  e.old_path = opt_str(v.old_path);
  e.comm = opt_str(v.comm);
  e.exe = opt_str(v.exe);
  e.cgroup = opt_str(v.cgroup);
  e.is_dir = v.is_dir;
  e.dev = v.dev;
  e.ino = v.ino;
  e.lost = v.lost;
  e.pid = v.pid;
  e.tid = v.tid;
  e.ppid = v.ppid;
  e.error = v.error;
  e.uid = v.uid;
  e.gid = v.gid;
  e.euid = v.euid;
  e.egid = v.egid;
  e.loginuid = v.loginuid;
  e.sessionid = v.sessionid;
  e.old_mode = v.old_mode;
  e.new_mode = v.new_mode;
  e.old_uid = v.old_uid;
  e.new_uid = v.new_uid;
  e.old_gid = v.old_gid;
  e.new_gid = v.new_gid;
  return true;
}

std::vector<StoredEvent> decode_all(const RecordBatch& batch) {
  std::vector<StoredEvent> out(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) decode_event(batch.record(i), out[i]);
  return out;
}

}  // namespace fstrail::store
