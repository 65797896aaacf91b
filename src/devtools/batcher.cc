#include "devtools/batcher.h"

#include <algorithm>

namespace fstrail::devtools {
namespace {

bool is_creation(EventKind kind) {
  return kind == EventKind::kCreate || kind == EventKind::kMkdir || kind == EventKind::kSymlink ||
         kind == EventKind::kLink;
}

bool is_removal(EventKind kind) { return kind == EventKind::kDelete || kind == EventKind::kRmdir; }

// Which kind a path keeps when several changes meet in a batch: the stronger one.
int strength(EventKind kind) {
  if (is_creation(kind)) return 4;
  if (kind == EventKind::kRename) return 3;
  if (kind == EventKind::kModify || kind == EventKind::kTruncate) return 2;
  return 1;  // chmod, chown, xattr
}

}  // namespace

void ChangeBatcher::add(Event&& event, int64_t now_ns) {
  if (event.kind == EventKind::kOpen) return;
  last_event_ns_ = now_ns;
  if (event.kind == EventKind::kLost) {
    rescan_ = true;
    lost_.add(event.lost_reason, event.lost.value_or(1));
    return;
  }
  if (event.kind == EventKind::kRename && event.old_path) return merge_rename(std::move(event));
  merge(std::move(event));
}

ChangeBatcher::Entry& ChangeBatcher::entry(const std::string& path) {
  auto [it, inserted] = entries_.try_emplace(path);
  if (inserted) {
    it->second.seq = next_seq_++;
    order_.emplace_back(path, it->second.seq);
  }
  return it->second;
}

void ChangeBatcher::erase(const std::string& path) {
  entries_.erase(path);  // its place in order_ is skipped by take()
}

void ChangeBatcher::merge(Event&& event) {
  auto found = entries_.find(event.path);
  if (found == entries_.end()) {
    bool created = is_creation(event.kind);
    std::string path = event.path;
    Entry& e = entry(path);
    e.event = std::move(event);
    e.created_here = created;
    return;
  }
  Entry& e = found->second;
  EventKind before = e.event.kind;
  if (is_removal(event.kind)) {
    if (e.created_here) return erase(event.path);  // came and went: no change
    e.event = std::move(event);
    return;
  }
  if (is_removal(before)) {  // removed, then a new one under the same name: replaced
    EventKind now = is_creation(event.kind) ? EventKind::kModify : event.kind;
    e.event = std::move(event);
    e.event.kind = now;
    return;
  }
  EventKind keep = strength(before) >= strength(event.kind) ? before : event.kind;
  std::optional<std::string> old_path = e.event.old_path;
  e.event = std::move(event);  // the latest actor
  e.event.kind = keep;
  if (keep == EventKind::kRename) e.event.old_path = old_path;
}

void ChangeBatcher::merge_rename(Event&& event) {
  std::string from = *event.old_path;
  auto src = entries_.find(from);
  bool src_new = src != entries_.end() && src->second.created_here;
  bool src_seen = src != entries_.end();
  if (src_seen) erase(from);
  // The target may have had its own entry: what replaced it is what counts now.
  erase(event.path);
  std::string path = event.path;
  if (src_new) {  // an atomic save: a new file renamed over (or to) the target
    event.kind = EventKind::kModify;
    event.old_path.reset();
  }
  entry(path).event = std::move(event);
}

int64_t ChangeBatcher::wait_ns(int64_t now_ns) const {
  if (!pending()) return -1;
  int64_t quiet_until = last_event_ns_ + timing_.debounce_ns;
  if (writing_) quiet_until = std::max(quiet_until, last_event_ns_ + timing_.settle_max_ns);
  return std::max<int64_t>(0, quiet_until - now_ns);
}

Batch ChangeBatcher::take() {
  Batch batch;
  batch.rescan = rescan_;
  batch.lost = lost_;
  batch.changes.reserve(order_.size());
  for (const auto& [path, seq] : order_) {
    auto it = entries_.find(path);
    if (it != entries_.end() && it->second.seq == seq) batch.changes.push_back(std::move(it->second.event));
  }
  order_.clear();
  entries_.clear();
  rescan_ = false;
  lost_ = LossCounts{};
  return batch;
}

}  // namespace fstrail::devtools
