#include "store/record.h"

#include <algorithm>
#include <cstring>

namespace fstrail::store {
namespace {

// An event is written in two passes over the same code: Sizer counts the bytes, Writer stores
// them through a raw pointer into space reserved once (appending field by field to a std::string
// costs an out-of-line call and a capacity check per field, ~35 per event).
struct Sizer {
  size_t n = 0;
  template <typename T>
  void put(T) { n += sizeof(T); }
  void put_str(std::string_view s) { n += sizeof(uint32_t) + s.size(); }
};
struct Writer {
  char* p;
  template <typename T>
  void put(T v) {
    std::memcpy(p, &v, sizeof v);
    p += sizeof v;
  }
  void put_str(std::string_view s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
};

template <typename Out>
void write_event(Out& o, const Event& e, std::string_view host, int64_t event_id) {
  o.template put<int64_t>(e.time_ns);
  o.template put<int64_t>(event_id);
  o.template put<uint8_t>(static_cast<uint8_t>(e.kind));
  o.template put<uint8_t>(static_cast<uint8_t>(e.actor_source));
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
  mark(e.kind == EventKind::kLost);  // lost_reason (records written before it lack the bit)
  o.template put<uint32_t>(mask);
  o.put_str(host);
  o.put_str(e.path);
  o.put_str(e.backend);
  if (e.old_path) o.put_str(*e.old_path);
  if (e.is_dir) o.template put<uint8_t>(*e.is_dir);
  if (e.dev) o.template put<uint64_t>(*e.dev);
  if (e.ino) o.template put<uint64_t>(*e.ino);
  for (const auto* v : {&e.pid, &e.tid, &e.ppid}) if (*v) o.template put<int32_t>(**v);
  for (const auto* v : {&e.uid, &e.gid, &e.euid, &e.egid, &e.loginuid, &e.sessionid})
    if (*v) o.template put<uint32_t>(**v);
  for (const auto* v : {&e.comm, &e.exe, &e.cgroup}) if (*v) o.put_str(**v);
  for (const auto* v : {&e.old_mode, &e.new_mode, &e.old_uid, &e.new_uid, &e.old_gid, &e.new_gid})
    if (*v) o.template put<uint32_t>(**v);
  if (e.error) o.template put<int32_t>(*e.error);
  if (e.lost) o.template put<uint64_t>(*e.lost);
  if (e.kind == EventKind::kLost) o.template put<uint8_t>(static_cast<uint8_t>(e.lost_reason));
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
  Sizer size;
  write_event(size, e, host, event_id);
  size_t at = out.size();
  // Batches are reused: once the buffer has grown, this does not allocate.
  if (out.capacity() < at + size.n) out.reserve(std::max(out.capacity() * 2, at + size.n));
  out.resize(at + size.n);
  Writer w{out.data() + at};
  write_event(w, e, host, event_id);
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
  if (has()) {
    uint8_t reason = r.get<uint8_t>();
    v.lost_reason = reason < kLossReasonCount ? static_cast<LossReason>(reason) : LossReason::kUnknown;
  }
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
  e.lost_reason = v.lost_reason.value_or(LossReason::kUnknown);
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
