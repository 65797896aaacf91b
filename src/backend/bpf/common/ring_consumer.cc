#include "backend/bpf/common/ring_consumer.h"

#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <cstdio>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "fstrail/wire.h"

namespace fstrail::bpf {

namespace {

// Adaptive polling: the nap between drains while records flow (bounds the added
// latency) and how many empty naps in a row send the consumer back to sleep.
constexpr long kNapNs = 200'000;
// A drain that found this many records means a dense stream: the next nap is longer, so
// a burst is read in fewer, larger batches (each poll has a fixed cost: the wakeup, the
// output write, the /proc and map reads). A record then waits at most kDenseNapNs.
constexpr int kDenseDrain = 64;
constexpr long kDenseNapNs = 500'000;
constexpr int kIdleNapsBeforeSleep = 5;
constexpr int64_t kLossCheckIntervalNs = 10'000'000;
// What on_record returns to stop a drain at the batch limit (the record itself is
// consumed); never an error libbpf returns from its ring buffer calls.
constexpr int kBatchFull = -ECANCELED;

int64_t monotonic_coarse_ns() {
  struct timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

}  // namespace

uint64_t LossCounter::update(std::span<const uint64_t> values) {
  uint64_t sum = 0;
  for (uint64_t v : values) sum += v;
  uint64_t grown = sum > last_sum_ ? sum - last_sum_ : 0;
  last_sum_ = sum;
  total_ += grown;
  return grown;
}

std::optional<std::string> ExeCache::read_proc_exe(pid_t pid) const {
  char buf[4096];
  std::string link = fmt::format("{}/{}/exe", proc_root_, pid);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

void ExeCache::put(pid_t pid, std::optional<std::string> exe) {
  // Bounded without bookkeeping: pids of exited processes pile up, so start over.
  if (by_pid_.size() >= max_entries_ && !by_pid_.contains(pid)) by_pid_.clear();
  by_pid_[pid] = std::move(exe);
}

void ExeCache::on_exec(pid_t pid, const std::string& filename, PathResolver* resolver) {
  std::optional<std::string> exe;
  if (!filename.empty() && filename.front() == '/')
    exe = filename;
  else if (!filename.empty() && resolver)
    exe = resolver->resolve(pid, -100 /* AT_FDCWD */, filename);
  if (!exe) exe = read_proc_exe(pid);
  put(pid, std::move(exe));
}

void ExeCache::on_kernel_exe(pid_t pid, const std::string& path) {
  put(pid, path.empty() ? std::nullopt : std::optional<std::string>(path));
}

std::optional<std::string> ExeCache::exe(pid_t pid) {
  if (auto it = by_pid_.find(pid); it != by_pid_.end()) return it->second;
  if (kernel_only_) return std::nullopt;
  auto exe = read_proc_exe(pid);
  put(pid, exe);  // once: a pid whose /proc entry is gone stays unknown
  return exe;
}

std::optional<std::vector<uint64_t>> read_percpu_counters(int map_fd, uint32_t slots) {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return std::nullopt;
  std::vector<uint64_t> all(static_cast<size_t>(cpus) * slots);
  // Every slot in one syscall (an array's batch: keys in order, each key's values for
  // every CPU together, as below). It stops at the end of the map with ENOENT; whatever
  // did not come back whole is read slot by slot.
  std::vector<uint32_t> keys(slots);
  uint32_t batch_position = 0, count = slots;
  int err = bpf_map_lookup_batch(map_fd, nullptr, &batch_position, keys.data(), all.data(), &count, nullptr);
  if ((err == 0 || err == -ENOENT) && count == slots) {
    bool in_order = true;
    for (uint32_t key = 0; key < slots; ++key) in_order = in_order && keys[key] == key;
    if (in_order) return all;
  }
  for (uint32_t key = 0; key < slots; ++key)
    if (bpf_map_lookup_elem(map_fd, &key, all.data() + static_cast<size_t>(key) * cpus) != 0) return std::nullopt;
  return all;
}

RingConsumer::RingConsumer(std::string_view backend_name, PathResolver* resolver, int lost_map_fd)
    : backend_(backend_name), resolver_(resolver), lost_map_fd_(lost_map_fd) {}

RingConsumer::~RingConsumer() { ring_buffer__free(ring_); }

Status RingConsumer::open(int ring_map_fd) {
  ring_ = ring_buffer__new(ring_map_fd, &RingConsumer::on_record, this, nullptr);
  if (!ring_) return Error::from_errno("cannot open the BPF ring buffer");
  return Ok{};
}

int RingConsumer::on_record(void* self, void* data, size_t size) {
  auto* consumer = static_cast<RingConsumer*>(self);
  if (consumer->drop_)
    ++consumer->stats_.records;
  else
    consumer->consume({static_cast<const uint8_t*>(data), size}, *consumer->handler_);
  if (consumer->batch_limit_ > 0 && ++consumer->in_batch_ >= consumer->batch_limit_) return kBatchFull;
  return 0;
}

void RingConsumer::consume(std::span<const uint8_t> bytes, const EventHandler& handler) {
  ++stats_.records;
  DecodeContext ctx{clock_, backend_, resolver_};
  auto record = decode_record(bytes, ctx);
  if (!record && record.error().err == ENAMETOOLONG) {
    stats_.lost.add(LossReason::kPathTooLong);
    return;
  }
  if (!record && record.error().err == ESRCH) {
    // Expected, not a fault: an fd-based call (fchmod, ftruncate) the kernel could not
    // place, by a process that has exited. Whether it was in a tree is unknowable.
    stats_.lost.add(LossReason::kUnresolvedPath);
    return;
  }
  if (!record) {
    // Counted always; logged for the first few and then every 1000th, so a flood
    // (say, paths of processes that exited before /proc was read) stays readable.
    stats_.lost.add(LossReason::kMalformedRecord);
    uint64_t malformed = stats_.lost[LossReason::kMalformedRecord];
    if (malformed <= 5 || malformed % 1000 == 0)
      fmt::print(stderr, "fstrail: {}: dropped a record ({} so far): {}\n", backend_, malformed,
                 record.error().message);
    return;
  }
  if (auto* exec = std::get_if<ExecRecord>(&record.value())) {
    if (exec->from_kernel)
      exes_.on_kernel_exe(exec->pid, exec->filename);
    else
      exes_.on_exec(exec->pid, exec->filename, resolver_);
    return;
  }
  if (auto* dirfd = std::get_if<DirFdRecord>(&record.value())) {
    if (dirfd_handler_) dirfd_handler_(std::move(*dirfd));
    return;
  }
  Event& event = std::get<Event>(record.value());
  if (event.pid) event.exe = exes_.exe(*event.pid);
  handler(std::move(event));
}

void RingConsumer::check_losses(const EmitFn& emit_lost) {
  if (lost_map_fd_ >= 0) {
    // Two bands of FST_OP_COUNT slots (common.bpf.h); each slot holds every CPU's value.
    if (auto values = read_percpu_counters(lost_map_fd_, 2 * FST_OP_COUNT)) {
      std::span<const uint64_t> all(*values);
      size_t band = all.size() / 2;
      stats_.lost.add(LossReason::kRingBufferFull, ring_full_.update(all.first(band)));
      stats_.lost.add(LossReason::kBpfMapFull, map_full_.update(all.subspan(band)));
    }
  }
  for (int i = 0; i < kLossReasonCount; ++i) {
    auto reason = static_cast<LossReason>(i);
    // Counted for the summary, never an event: these are fd-based changes anywhere on the
    // machine whose file could not be placed, most of them outside every watched tree; a
    // `lost` event (and the guard's rescan it triggers) would claim a loss nobody knows of.
    if (reason == LossReason::kUnresolvedPath) continue;
    uint64_t grown = stats_.lost[reason] - reported_[reason];
    if (grown == 0) continue;
    reported_.add(reason, grown);
    Event lost;
    lost.kind = EventKind::kLost;
    lost.time_ns = realtime_now_ns();
    lost.lost = grown;
    lost.lost_reason = reason;
    lost.backend = backend_;
    emit_lost(std::move(lost));
  }
}

void RingConsumer::set_polling(bool polling) {
  polling_ = polling;
  idle_naps_ = 0;
  // Sequentially consistent (xchg on x86-64): the store is visible before the drain
  // that follows reads the producer position (see common.bpf.h).
  std::atomic_ref<uint32_t>(*const_cast<uint32_t*>(polling_flag_)).store(polling ? 1 : 0, std::memory_order_seq_cst);
}

int RingConsumer::drain(bool block, int timeout_ms) {
  in_batch_ = 0;
  int n = block ? ring_buffer__poll(ring_, timeout_ms) : ring_buffer__consume(ring_);
  more_pending_ = n == kBatchFull;
  if (more_pending_) n = in_batch_;
  last_drain_ = n;
  return n;
}

int RingConsumer::poll_adaptive(int timeout_ms) {
  if (polling_) {
    if (!more_pending_) {
      struct timespec nap{0, last_drain_ >= kDenseDrain ? kDenseNapNs : kNapNs};
      ::nanosleep(&nap, nullptr);
    }
    int n = drain(false, 0);
    if (n != 0) {
      idle_naps_ = 0;
      return n;
    }
    if (++idle_naps_ < kIdleNapsBeforeSleep) return 0;
    // Back to sleep: clear the flag first, then drain once more, so a record added
    // without a wakeup before the clear is read now or seen by the blocking poll.
    set_polling(false);
    n = drain(false, 0);
    if (n != 0) {
      set_polling(true);
      return n;
    }
  }
  int n = drain(true, timeout_ms);
  // A wait that timed out drains anyway (reading the ring's positions costs no
  // syscall): whatever happened to wakeups, no record waits longer than one timeout.
  if (n == 0) n = drain(false, 0);
  if (n > 0) set_polling(true);
  return n;
}

Status RingConsumer::poll(int timeout_ms, const EventHandler& handler, const EmitFn& emit_lost) {
  clock_.refresh();
  handler_ = &handler;
  int n;
  if (timeout_ms == 0) {
    // Everything queued now, past the batch limit too: the last poll before a stop.
    n = drain(false, 0);
    for (int more; n > 0 && more_pending_ && (more = drain(false, 0)) > 0;) n += more;
  } else if (polling_flag_)
    n = poll_adaptive(timeout_ms);
  else
    n = drain(true, timeout_ms);
  handler_ = nullptr;
  int64_t now = monotonic_coarse_ns();
  if (timeout_ms == 0 || (n == 0 && !polling_) || now - last_loss_check_ns_ >= kLossCheckIntervalNs) {
    last_loss_check_ns_ = now;
    check_losses(emit_lost);
  }
  if (n < 0 && n != -EINTR) return Error::from_errno("polling the BPF ring buffer failed", -n);
  return Ok{};
}

}  // namespace fstrail::bpf
