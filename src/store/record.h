// The record format of an event: how the recorder queues events, the spool keeps them and the
// stores read them for insertion. Encoded once on the event thread; parsed without copies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"

namespace fstrail::store {

// One event ↔ bytes: the record format of the in-memory queue, the spool and the stores'
// insert path (encoded once on the event thread; no allocation per event after that).
void encode_event(std::string& out, const Event& event, std::string_view host, int64_t event_id);
inline void encode_event(std::string& out, const StoredEvent& row) { encode_event(out, row.event, row.host, row.event_id); }
bool decode_event(std::string_view bytes, StoredEvent& row);

// A parsed record whose strings point into the record bytes.
struct EventRecordView {
  int64_t time_ns = 0;
  int64_t event_id = 0;
  EventKind kind = EventKind::kCreate;
  ActorSource actor_source = ActorSource::kNone;
  std::string_view host, path, backend;
  std::optional<std::string_view> old_path, comm, exe, cgroup;
  std::optional<bool> is_dir;
  std::optional<uint64_t> dev, ino, lost;
  std::optional<int32_t> pid, tid, ppid, error;
  std::optional<uint32_t> uid, gid, euid, egid, loginuid, sessionid;
  std::optional<uint32_t> old_mode, new_mode, old_uid, new_uid, old_gid, new_gid;
  std::optional<LossReason> lost_reason;  // lost events only
};
bool parse_record(std::string_view bytes, EventRecordView& view);

// Encoded events back to back, with their offsets.
class RecordBatch {
 public:
  void add(const Event& event, std::string_view host, int64_t event_id) {
    offsets_.push_back(static_cast<uint32_t>(data_.size()));
    encode_event(data_, event, host, event_id);
  }
  void add(std::string_view record) {
    offsets_.push_back(static_cast<uint32_t>(data_.size()));
    data_.append(record);
  }
  size_t size() const { return offsets_.size(); }
  bool empty() const { return offsets_.empty(); }
  size_t bytes() const { return data_.size(); }
  std::string_view record(size_t i) const {
    size_t end = i + 1 < offsets_.size() ? offsets_[i + 1] : data_.size();
    return std::string_view(data_).substr(offsets_[i], end - offsets_[i]);
  }
  std::vector<std::string_view> views() const {
    std::vector<std::string_view> out;
    out.reserve(size());
    for (size_t i = 0; i < size(); ++i) out.push_back(record(i));
    return out;
  }
  void clear() {
    data_.clear();
    offsets_.clear();
  }

 private:
  std::string data_;
  std::vector<uint32_t> offsets_;
};

std::vector<StoredEvent> decode_all(const RecordBatch& batch);

}  // namespace fstrail::store
