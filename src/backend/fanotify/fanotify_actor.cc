// fanotify: the process behind an event (its pidfd), and the event sent with it.
#include "backend/fanotify/fanotify_internal.h"

namespace fstrail::fan {

namespace {

// PIDFD_GET_INFO (Linux 6.13): the credentials of the process a pidfd refers to, in
// one ioctl. Not in Debian 12's headers.
struct PidfdInfo {
  uint64_t mask, cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
  uint32_t coredump_mask, spare;
};
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
constexpr uint64_t kPidfdInfoPid = 1, kPidfdInfoCreds = 2;
// How long the /proc fields of a process (comm, exe, cgroup, loginuid) are reused:
// they change only on exec, prctl or migration, and are read after the fact anyway.
constexpr int64_t kActorReuseNs = 100'000'000;

}  // namespace

// Credentials current as of now (PIDFD_GET_INFO); the rest from /proc, reused for a
// short while per process. A process already gone keeps what was read before, from
// this very process (same pidfs inode), or stays unknown.
void FanotifyBackend::fill_actor(Event& e, int pidfd) {
  auto copy_fields = [&e](const Event& a) {
    e.ppid = a.ppid, e.uid = a.uid, e.gid = a.gid, e.euid = a.euid, e.egid = a.egid;
    e.loginuid = a.loginuid, e.sessionid = a.sessionid, e.comm = a.comm, e.exe = a.exe, e.cgroup = a.cgroup;
  };
  // The process behind the pidfd, not the pid number: one read may hold events of two
  // processes that had the same pid one after the other.
  struct stat pst{};
  uint64_t process_id = ::fstat(pidfd, &pst) == 0 ? pst.st_ino : 0;
  auto it = actors_.find(*e.pid);
  bool same_process = it != actors_.end() && process_id != 0 && it->second.process_id == process_id;
  // Events of one read were all queued before it: within it, one reading per process.
  if (same_process && it->second.batch == batch_seq_) {
    copy_fields(it->second.fields);
    return;
  }
  bool reuse = same_process && batch_time_ - it->second.read_ns < kActorReuseNs;
  if (!reuse) {
    // A process found gone keeps what was read from it before (or stays unknown):
    // its later events (a queue behind a fast writer that has exited since) do not
    // try /proc again.
    if (same_process && it->second.gone) {
      copy_fields(it->second.fields);
      it->second.batch = batch_seq_;
      return;
    }
    enricher_.enrich(e, pidfd);
    if (!e.comm) {  // gone before it could be read
      if (same_process) {
        copy_fields(it->second.fields);
        it->second.gone = true;
        it->second.batch = batch_seq_;
      } else if (process_id != 0) {
        if (actors_.size() > 4096) actors_.clear();
        actors_[*e.pid] = CachedActor{process_id, batch_time_, batch_seq_, e, true};
      }
      return;
    }
    if (actors_.size() > 4096) actors_.clear();
    actors_[*e.pid] = CachedActor{process_id, batch_time_, batch_seq_, e};
    return;
  }
  copy_fields(it->second.fields);
  PidfdInfo info{};
  info.mask = kPidfdInfoPid | kPidfdInfoCreds;
  if (::ioctl(pidfd, kPidfdGetInfo, &info) == 0 && (info.mask & kPidfdInfoCreds)) {
    e.uid = info.ruid, e.gid = info.rgid, e.euid = info.euid, e.egid = info.egid;
    if (info.mask & kPidfdInfoPid) e.ppid = static_cast<int32_t>(info.ppid);
  }
  it->second.batch = batch_seq_;
  it->second.fields.uid = e.uid, it->second.fields.gid = e.gid, it->second.fields.euid = e.euid;
  it->second.fields.egid = e.egid, it->second.fields.ppid = e.ppid;
}

void FanotifyBackend::emit_event(Event&& e, int pidfd, const EmitFn& emit) {
  if (!spec_.kinds.test(static_cast<size_t>(e.kind)) || e.pid == self_) return;
  if (e.pid) {
    e.actor_source = ActorSource::kProcfs;
    // Without a pidfd (FAN_EPIDFD: exited before the event was read) nothing says which
    // process had this pid: what was read for the same pid number may be another
    // process (pids are reused at once when pid_max is small or a pid is asked for,
    // clone3 set_tid). The fields stay null.
    if (pidfd >= 0) fill_actor(e, pidfd);
  }
  emit(std::move(e));
}

}  // namespace fstrail::fan
