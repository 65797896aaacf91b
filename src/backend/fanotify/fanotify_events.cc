// fanotify: one event of the kernel to fstrail's events (a merged event can hold several
// kinds), with the losses it reveals.
#include "backend/fanotify/fanotify_internal.h"

namespace fstrail::fan {

// A name of an object is left only by a rename or a delete (a second name, a link, stops
// the check): a rename from a name other than the one the object's last reported rename
// left it at means renames in between were merged by the kernel (or done where no mark
// saw them). How many is unknown: at least one.
void FanotifyBackend::check_rename_sequence(const Record& r, const std::string& source, bool single_name,
                                            const EmitFn& emit) {
  if (!r.target) return;
  std::string_view object = fid_key(r.target);
  auto it = last_name_.find(object);
  if (single_name && it != last_name_.end() && r.old_dir && r.old_name) {
    std::string_view dir = fid_key(r.old_dir);
    std::string_view last = it->second;
    if (!(last.size() == dir.size() + std::strlen(r.old_name) && last.starts_with(dir) &&
          last.substr(dir.size()) == r.old_name)) {
      emit_loss(LossReason::kMergedByKernel, source, batch_time_, emit);
    }
  }
  if (!single_name || !r.dir || !r.name) {
    if (it != last_name_.end()) last_name_.erase(it);
    return;
  }
  std::string name_now = std::string(fid_key(r.dir)) + r.name;
  if (it != last_name_.end()) {
    it->second = std::move(name_now);
    return;
  }
  if (last_name_.size() >= 65536) last_name_.clear();
  last_name_.emplace(std::string(object), std::move(name_now));
}

// One loss (`lost` null: the kernel does not say how many, at least one): counted for the
// summary and sent as a `lost` event naming where.
void FanotifyBackend::emit_loss(LossReason reason, const std::string& path, int64_t time_ns, const EmitFn& emit) {
  stats_.lost.add(reason);
  Event e = new_event(EventKind::kLost, time_ns);
  e.lost_reason = reason;
  e.path = path;
  emit(std::move(e));
}

Event FanotifyBackend::event_of(const Change& c) const {
  Event e;
  e.time_ns = batch_time_;
  e.backend = name();
  e.is_dir = c.is_dir;
  if (c.md->pid > 0) e.pid = c.md->pid;
  return e;
}

bool FanotifyBackend::stat_once(Change& c) {
  if (c.stat_state == 0) c.stat_state = stat_object(c.path, c.r, c.self, c.st) ? 1 : -1;
  return c.stat_state == 1;
}

void FanotifyBackend::handle_event(const fanotify_event_metadata* md, const Record& r, const EmitFn& emit) {
  const uint64_t mask = md->mask;
  Change c{md, r, static_cast<bool>(mask & FAN_ONDIR)};
  if (mask & FAN_RENAME) return on_rename(c, emit);
  if (!r.dir) return;
  std::string dir = resolve_fid(r.dir);
  if (dir.empty()) return;
  c.self = !r.name || std::strcmp(r.name, ".") == 0;
  c.path = c.self ? dir : join_path(dir, r.name);
  if (!under_roots(c.path)) return;
  if ((mask & FAN_DELETE_SELF) && c.self) {
    // Only the roots ask for it: any other directory's removal is its parent's FAN_DELETE.
    warn_root_removed(c.path);
    Event e = event_of(c);
    e.kind = EventKind::kRmdir;
    e.path = c.path;
    e.is_dir = true;
    // The event comes when the last reference goes: fstrail's own, when it still held the
    // directory open. Then who removed it is unknown.
    bool ours = e.pid == self_;
    if (ours) e.pid.reset();
    emit_event(std::move(e), ours ? -1 : r.pidfd, emit);
  }
  if ((mask & FAN_MOVE_SELF) && c.self) move_root(c.path, r, md, emit);  // only the roots ask for it
  if ((mask & (FAN_CREATE | FAN_DELETE)) && r.target && !last_name_.empty()) {
    if (auto it = last_name_.find(fid_key(r.target)); it != last_name_.end()) last_name_.erase(it);
  }
  if (mask & FAN_CREATE) on_create(c, emit);
  if (mask & FAN_MODIFY) on_modify(c, emit);
  if (mask & FAN_ATTRIB) on_attrib(c, emit);
  if ((mask & FAN_OPEN) && !c.self) {
    Event e = event_of(c);
    e.kind = EventKind::kOpen;
    e.path = c.path;
    emit_event(std::move(e), r.pidfd, emit);
  }
  if (mask & FAN_CLOSE_WRITE) on_close_write(c, emit);
  if (mask & FAN_DELETE) on_delete(c, emit);
}

void FanotifyBackend::on_rename(Change& c, const EmitFn& emit) {
  const Record& r = c.r;
  const bool is_dir = c.is_dir;
  // The kernel includes only the sides whose directory is marked: the far side of a
  // move across the trees' edge is found from the moved object's own handle.
  std::string from, to;
  if (r.old_dir) from = join_path(resolve_fid(r.old_dir), r.old_name ? r.old_name : "");
  if (r.dir) to = join_path(resolve_fid(r.dir), r.name ? r.name : "");
  else if (r.target) to = resolve_fid(r.target, /*use_cache=*/false);  // the cache has its old path
  bool from_inside = !from.empty() && under_roots(from), to_inside = !to.empty() && under_roots(to);
  if (!from_inside && !to_inside) return;
  if (is_dir) {
    if (!to_inside) {
      forget_subtree(from);
    } else if (from_inside && dir_keys_.contains(from)) {
      move_subtree(from, to);
    } else if (from_inside) {
      // Renamed before it was marked (in the read of its creation, which left it to
      // this event): marked now under its new name, and what it holds reported. Or by
      // the next rename, when this name too is gone.
      if (r.target && !r.name_gone && !r.object_gone) {
        if (UniqueFd fd = open_handle(r.target, O_RDONLY | O_DIRECTORY | O_CLOEXEC); fd.valid())
          mark_new_dir(fd.get(), to, r.target->fsid, std::string(fid_key(r.target)), emit);
      }
    } else {
      note_failure(mark_tree(to));  // moved in: watch it; its contents are not new
    }
  }
  written_.erase(from);
  Event e = event_of(c);
  e.path = std::move(to);
  if (from.empty()) {
    // Moved in from a place nobody watches: the source is unknowable, like a create.
    e.kind = is_dir ? EventKind::kMkdir : EventKind::kCreate;
  } else if (e.path.empty()) {
    e.kind = is_dir ? EventKind::kRmdir : EventKind::kDelete;  // moved out to an unknown place
    e.path = std::move(from);
  } else {
    e.kind = EventKind::kRename;
    e.old_path = std::move(from);
  }
  struct stat st{};
  bool known = e.kind != EventKind::kDelete && e.kind != EventKind::kRmdir && stat_object(e.path, r, false, st);
  if (known) fill_identity(st, e);
  if (e.old_path) check_rename_sequence(r, *e.old_path, known && st.st_nlink == 1, emit);
  emit_event(std::move(e), r.pidfd, emit);
}

void FanotifyBackend::on_create(Change& c, const EmitFn& emit) {
  const Record& r = c.r;
  bool duplicate = false;
  if (r.target) {
    if (auto it = scanned_.find(fid_key(r.target)); it != scanned_.end()) {
      scanned_.erase(it);
      duplicate = true;
    }
  }
  // A new directory is opened once, relative to its directory, then examined, marked
  // and listed through that fd. Not when a later event of this read deletes it or
  // renames it: its contents would be reported under this name; the rename marks it.
  UniqueFd new_dir;
  if (c.is_dir && !duplicate && !r.object_gone && !r.name_gone && !c.self) {
    if (int parent = dir_fd_for(r.dir); parent >= 0)
      new_dir.reset(::openat(parent, r.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (new_dir.valid()) c.stat_state = ::fstat(new_dir.get(), &c.st) == 0 ? 1 : -1;
  }
  bool known = stat_once(c);
  if (known) attrs_.remember_created(c.st);
  if (duplicate) return;
  Event e = event_of(c);
  e.path = c.path;
  e.kind = c.is_dir ? EventKind::kMkdir : EventKind::kCreate;
  if (known) {
    fill_identity(c.st, e);
    if (S_ISLNK(c.st.st_mode)) e.kind = EventKind::kSymlink;
    else if (!c.is_dir && c.st.st_nlink > 1) e.kind = EventKind::kLink;
  }
  emit_event(std::move(e), r.pidfd, emit);
  if (c.is_dir && new_dir.valid()) {
    // A new directory is on its parent's filesystem: the event's fsid is its own.
    std::string key = r.target ? std::string(fid_key(r.target)) : std::string();
    mark_new_dir(new_dir.get(), c.path, r.dir->fsid, std::move(key), emit);
  }
}

void FanotifyBackend::on_modify(Change& c, const EmitFn& emit) {
  bool truncated = false;
  if (!written_.contains(c.path) && stat_once(c)) truncated = attrs_.shrank(c.st);
  if (!truncated) {
    written_.insert(c.path);
    return;
  }
  Event e = event_of(c);
  e.kind = EventKind::kTruncate;
  e.path = c.path;
  fill_identity(c.st, e);
  emit_event(std::move(e), c.r.pidfd, emit);
}

void FanotifyBackend::on_attrib(Change& c, const EmitFn& emit) {
  Event e = event_of(c);
  e.path = c.path;
  if (stat_once(c)) {
    fill_identity(c.st, e);
    // Examined by handle after a later rename of the same read: its change time has
    // moved since this change.
    if (auto kind = attrs_.classify_attrib(c.st, e, c.r.name_gone)) {
      e.kind = *kind;
      emit_event(std::move(e), c.r.pidfd, emit);
    }
  } else {
    // Gone before it could be examined: an attribute changed, which one is unknown.
    e.kind = EventKind::kChmod;
    emit_event(std::move(e), c.r.pidfd, emit);
  }
}

void FanotifyBackend::on_close_write(Change& c, const EmitFn& emit) {
  auto it = written_.find(c.path);
  if (it == written_.end()) return;
  written_.erase(it);
  Event e = event_of(c);
  e.kind = EventKind::kModify;
  e.path = c.path;
  if (stat_once(c)) {
    fill_identity(c.st, e);
    attrs_.remember_contents(c.st);
  }
  emit_event(std::move(e), c.r.pidfd, emit);
}

void FanotifyBackend::on_delete(Change& c, const EmitFn& emit) {
  if (c.is_dir) forget_subtree(c.path);
  written_.erase(c.path);
  Event e = event_of(c);
  e.kind = c.is_dir ? EventKind::kRmdir : EventKind::kDelete;
  e.path = std::move(c.path);
  emit_event(std::move(e), c.r.pidfd, emit);
}

}  // namespace fstrail::fan
