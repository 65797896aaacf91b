// fanotify with FAN_REPORT_DFID_NAME_TARGET | FAN_REPORT_PIDFD.
//
// Marks: one inode mark per directory of the watched trees (FAN_EVENT_ON_CHILD), kept
// up to date as directories appear, move and disappear, rather than one
// FAN_MARK_FILESYSTEM mark: a filesystem mark makes every operation on the whole
// filesystem queue an event that user space then throws away (bench/results/watch.md).
//
// Paths: events carry the parent directory as a file handle. Every marked directory's
// handle is known (name_to_handle_at when it is marked), so a handle -> path map
// resolves almost every event without a system call; open_by_handle_at on a mount fd
// covers the rest (a directory outside the trees, as the far side of a rename).
#include "backend/fanotify/fanotify_backend.h"

#include "backend/fanotify/fanotify_internal.h"

namespace fstrail {
namespace fan {

Status FanotifyBackend::start(const WatchSpec& spec) {
  spec_ = spec;
  if (spec.kinds.test(static_cast<size_t>(EventKind::kOpen))) mask_ |= FAN_OPEN;
  fan_.reset(::fanotify_init(kInitFlags, O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  if (!fan_.valid()) return Error::from_errno("fanotify_init");
  // Read before the trees are marked: a mount made in between is then seen as new.
  mountinfo_.reset(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!mountinfo_.valid()) return Error::from_errno("open /proc/self/mountinfo");
  check_mounts(nullptr);
  for (const auto& root : spec.roots) {
    if (Status s = mark_tree(root); !s) return s;
    // A root's own removal or rename: its parent is not marked, so nothing else reports it.
    if (::fanotify_mark(fan_.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_DELETE_SELF | FAN_MOVE_SELF | FAN_ONDIR,
                        AT_FDCWD, root.c_str()) != 0)
      return mark_error(root);
  }
  return Ok{};
}

// New roots are marked like the first ones. A root removed keeps its marks (they are
// per directory and may be shared with a root that stays); under_roots drops its events.
Status FanotifyBackend::update_roots(const std::vector<std::string>& roots) {
  for (const auto& root : roots_not_in(roots, spec_.roots)) {
    if (Status s = mark_tree(root); !s) return s;
    if (::fanotify_mark(fan_.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, FAN_DELETE_SELF | FAN_MOVE_SELF | FAN_ONDIR,
                        AT_FDCWD, root.c_str()) != 0)
      return mark_error(root);
  }
  spec_.roots = roots;
  return Ok{};
}

void FanotifyBackend::rescan(const EmitFn& emit) {
  ++stats_.rescans;
  for (const auto& root : spec_.roots) note_failure(mark_tree(root));
  (void)emit;
}

Status FanotifyBackend::poll(int timeout_ms, const EmitFn& emit) {
  pollfd pfds[2] = {{fan_.get(), POLLIN, 0}, {mountinfo_.get(), POLLPRI, 0}};
  int ready = ::poll(pfds, 2, timeout_ms);
  if (ready < 0) return errno == EINTR ? Status(Ok{}) : Status(Error::from_errno("poll fanotify"));
  if (pfds[1].revents & (POLLPRI | POLLERR)) {
    check_mounts(emit);
    if (!(pfds[0].revents & POLLIN)) return failed_;
  }
  if (ready == 0) {
    // Idle: let go of the directories held open for lookups. An open directory keeps a
    // removed one alive, and a removed root's FAN_DELETE_SELF comes only once it is let go.
    dir_fds_.clear();
    for (auto& m : mount_fds_)
      if (!m.held) m.fd.reset();
    scanned_.clear();
    return Ok{};
  }
  if (!failed_) return failed_;
  pacer_.wait();  // at most one read a millisecond (read_pacer.h)
  if (buf_.empty()) size_buffer();
  // One read per call, so that the caller flushes its output after each; again at once
  // only when the read filled the buffer.
  for (;;) {
    ssize_t len = ::read(fan_.get(), buf_.data(), buf_.size());
    if (len < 0) {
      if (errno == EAGAIN) {
        scanned_.clear();
        return failed_;
      }
      if (errno == EINTR) return Ok{};
      return Error::from_errno("read fanotify");
    }
    batch_time_ = realtime_now_ns();
    pacer_.read_done(static_cast<size_t>(len) + kMaxEventBytes > buf_.size());
    ++batch_seq_;
    if (Status s = parse_read(buf_.data(), static_cast<size_t>(len)); !s) return s;
    prepare_batch();
    bool overflow = false;
    for (const Parsed& ev : parsed_) {
      if (ev.md.mask & FAN_Q_OVERFLOW) {
        overflow = true;
      } else {
        // fstrail's own changes (guard remediation) are not reported, but they still
        // keep the attribute cache and the directory maps current.
        handle_event(&ev.md, ev.r, emit);
      }
    }
    close_pidfds();
    if (overflow) {
      // The kernel does not say how many: at least one.
      emit_loss(LossReason::kKernelQueueOverflow, spec_.roots.front(), batch_time_, emit);
      rescan(emit);
    }
    if (!pacer_.filled()) return failed_;
  }
}

// As many events per read as the descriptor limit allows: each event of a read comes
// with an open pidfd (at least ~96 bytes per event), and a pidfd that cannot be opened
// loses the event's attribution.
void FanotifyBackend::size_buffer() {
  rlimit lim{};
  size_t size = 1 << 18;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    size_t spare = lim.rlim_cur > 256 ? lim.rlim_cur - 128 : 128;
    size = std::clamp<size_t>(spare * 96, 4096, size);
  }
  buf_.resize(size);
}

// Events are packed with 4-byte alignment (info records are padded to 4), so the
// 8-byte-aligned metadata is copied out.
Status FanotifyBackend::parse_read(const char* buf, size_t len) {
  parsed_.clear();
  pidfds_.clear();
  auto name_of = [](const fanotify_event_info_fid* f) {
    auto* h = reinterpret_cast<const file_handle*>(f->handle);
    return reinterpret_cast<const char*>(h->f_handle + h->handle_bytes);
  };
  for (size_t at = 0; at + sizeof(fanotify_event_metadata) <= len;) {
    Parsed& ev = parsed_.emplace_back();
    fanotify_event_metadata& md = ev.md;
    std::memcpy(&md, buf + at, sizeof md);
    if (md.event_len < sizeof md || at + md.event_len > len) {
      parsed_.pop_back();
      break;
    }
    if (md.vers != FANOTIFY_METADATA_VERSION) {
      for (const Parsed& done : parsed_)
        if (done.r.pidfd >= 0) ::close(done.r.pidfd);
      return Error{fmt::format("fanotify metadata version {} is not {}", md.vers, FANOTIFY_METADATA_VERSION)};
    }
    Record& r = ev.r;
    const char* p = buf + at + md.metadata_len;
    const char* end = buf + at + md.event_len;
    while (p + sizeof(fanotify_event_info_header) <= end) {
      auto* hdr = reinterpret_cast<const fanotify_event_info_header*>(p);
      if (hdr->len == 0) break;
      auto* fid = reinterpret_cast<const fanotify_event_info_fid*>(p);
      switch (hdr->info_type) {
        case FAN_EVENT_INFO_TYPE_DFID_NAME:
        case FAN_EVENT_INFO_TYPE_NEW_DFID_NAME: r.dir = fid, r.name = name_of(fid); break;
        case FAN_EVENT_INFO_TYPE_DFID: r.dir = fid; break;
        case FAN_EVENT_INFO_TYPE_OLD_DFID_NAME: r.old_dir = fid, r.old_name = name_of(fid); break;
        case FAN_EVENT_INFO_TYPE_FID: r.target = fid; break;
        case FAN_EVENT_INFO_TYPE_PIDFD:
          r.pidfd = reinterpret_cast<const fanotify_event_info_pidfd*>(p)->pidfd;
          break;
        default: break;
      }
      p += hdr->len;
    }
    if (r.pidfd >= 0) pidfds_.push_back(r.pidfd);
    if (md.fd >= 0) pidfds_.push_back(md.fd);
    at += md.event_len;
  }
  return Ok{};
}

// Which names and objects a later event of this read removes (see Record).
void FanotifyBackend::prepare_batch() {
  removed_at_.clear();
  deleted_at_.clear();
  auto name_ref = [](const fanotify_event_info_fid* dir, const char* name) {
    return NameRef{fid_key(dir), name};
  };
  for (size_t i = 0; i < parsed_.size(); ++i) {
    const auto& [md, r] = parsed_[i];
    if ((md.mask & FAN_DELETE) && r.dir && r.name) removed_at_[name_ref(r.dir, r.name)] = i;
    if ((md.mask & FAN_RENAME) && r.old_dir && r.old_name) removed_at_[name_ref(r.old_dir, r.old_name)] = i;
    if ((md.mask & FAN_DELETE) && r.target) deleted_at_[fid_key(r.target)] = i;
  }
  if (removed_at_.empty()) return;
  for (size_t i = 0; i < parsed_.size(); ++i) {
    auto& [md, r] = parsed_[i];
    // The kernel merges queued events of one object, name and process: a create and
    // a delete in one event (mkdir + rmdir, create + unlink) happened in that order,
    // as an object cannot be created again once deleted (link(2) of another name of
    // it aside: its identity is then left unknown).
    if ((md.mask & FAN_DELETE) && (md.mask & FAN_CREATE)) {
      r.name_gone = r.object_gone = true;
      continue;
    }
    if (r.dir && r.name) {  // for a rename, its new name
      auto it = removed_at_.find(name_ref(r.dir, r.name));
      r.name_gone = it != removed_at_.end() && it->second > i;
    }
    if (r.target) {
      auto it = deleted_at_.find(fid_key(r.target));
      r.object_gone = it != deleted_at_.end() && it->second > i;
    }
  }
}

// The pidfds of a read are mostly consecutive descriptors: one close_range per run.
void FanotifyBackend::close_pidfds() {
  if (pidfds_.empty()) return;
  std::sort(pidfds_.begin(), pidfds_.end());
  size_t run = 0;
  for (size_t i = 1; i <= pidfds_.size(); ++i) {
    if (i < pidfds_.size() && pidfds_[i] == pidfds_[i - 1] + 1) continue;
    auto first = static_cast<unsigned>(pidfds_[run]), last = static_cast<unsigned>(pidfds_[i - 1]);
    if (first == last || ::syscall(SYS_close_range, first, last, 0) != 0)
      for (size_t k = run; k < i; ++k) ::close(pidfds_[k]);
    run = i;
  }
  pidfds_.clear();
}

}  // namespace fan

Availability probe_fanotify() {
  UniqueFd fd(::fanotify_init(fan::kInitFlags, O_RDONLY | O_LARGEFILE | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == EPERM)
      return {false, "needs root (CAP_SYS_ADMIN): run fstrail with sudo, or use --backend inotify as any user"};
    if (errno == EINVAL)
      return {false, "this kernel lacks FAN_REPORT_DFID_NAME_TARGET or FAN_REPORT_PIDFD (needs Linux 5.15+)"};
    return {false, fmt::format("fanotify_init failed: {}", std::strerror(errno))};
  }
  if (::fanotify_mark(fd.get(), FAN_MARK_ADD | FAN_MARK_ONLYDIR, fan::kDirMask, AT_FDCWD, "/") != 0) {
    if (errno == EINVAL) return {false, "this kernel lacks FAN_RENAME (needs Linux 5.17+)"};
    return {false, fmt::format("fanotify_mark failed: {}", std::strerror(errno))};
  }
  return {true, "per-directory marks, pidfd attribution"};
}

std::unique_ptr<Backend> create_fanotify_backend() { return std::make_unique<fan::FanotifyBackend>(); }

}  // namespace fstrail
