// The user-space half of every eBPF backend: drains the ring buffer, decodes each
// record, keeps the exe of each process from exec records, and turns growth of the
// BPF `lost_by_op` counters into `lost` events.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "core/clock.h"
#include "decode/decoder.h"

struct ring_buffer;

namespace fstrail::bpf {

// Sum of a per-CPU, per-op counter map over time: how many records were lost since
// the last look. Counters only grow; a smaller sum (map recreated) is not a loss.
class LossCounter {
 public:
  // `values`: every slot of every CPU, as read from the map. Returns the growth.
  uint64_t update(std::span<const uint64_t> values);
  uint64_t total() const { return total_; }

 private:
  uint64_t last_sum_ = 0;
  uint64_t total_ = 0;
};

// pid -> executable. Filled from exec records (so `exe` is the image that did the
// operation, even when the process has exec'd or exited since); a pid never seen
// exec'ing is read from /proc/<pid>/exe once.
class ExeCache {
 public:
  explicit ExeCache(std::string proc_root = "/proc", size_t max_entries = 65536)
      : proc_root_(std::move(proc_root)), max_entries_(max_entries) {}

  // `filename` as passed to execve: absolute, relative to the cwd, or empty (unknown).
  void on_exec(pid_t pid, const std::string& filename, PathResolver* resolver);
  // The kernel named the executable file itself (FST_REC_EXE; empty: unknown).
  void on_kernel_exe(pid_t pid, const std::string& path);
  // The process exited: a later process with its pid is not lent its exe.
  void forget(pid_t pid) { by_pid_.erase(pid); }
  // Only what the kernel said: never /proc (bpf-tracepoint kernel-read mode).
  void kernel_only() { kernel_only_ = true; }
  std::optional<std::string> exe(pid_t pid);
  size_t size() const { return by_pid_.size(); }

 private:
  void put(pid_t pid, std::optional<std::string> exe);
  std::optional<std::string> read_proc_exe(pid_t pid) const;

  std::string proc_root_;
  size_t max_entries_;
  bool kernel_only_ = false;
  std::unordered_map<pid_t, std::optional<std::string>> by_pid_;
};

// Reads a BPF per-CPU array map of u64 (any number of slots) into one flat vector.
std::optional<std::vector<uint64_t>> read_percpu_counters(int map_fd, uint32_t slots);

struct RingConsumerStats {
  uint64_t records = 0;
  // ring-buffer-full and bpf-map-full from lost_by_op; malformed-record (records the
  // decoder rejected, the first few logged); unresolved-path (fd-based changes of
  // processes gone before their path could be known).
  LossCounts lost;
};

class RingConsumer {
 public:
  // Called for every decoded file event, after `exe` is filled; the backend finishes
  // it (filters, enriches) and emits it or not.
  using EventHandler = std::function<void(Event&&)>;

  RingConsumer(std::string_view backend_name, PathResolver* resolver, int lost_map_fd);
  ~RingConsumer();
  RingConsumer(const RingConsumer&) = delete;
  RingConsumer& operator=(const RingConsumer&) = delete;

  Status open(int ring_map_fd);
  // Adaptive wakeups: `polling_flag` is the BPF object's fst_consumer_polling
  // (common.bpf.h), in its memory-mapped .bss. Once records arrive, poll() stops
  // blocking: it sets the flag (the kernel then adds records without waking anyone),
  // naps briefly and drains, so a burst costs one wakeup per nap instead of one per
  // record. After a few empty naps it clears the flag, drains once more and blocks
  // again. Without it (lsm, fentry): every poll blocks and records wake it.
  void use_adaptive_polling(volatile uint32_t* polling_flag) { polling_flag_ = polling_flag; }
  // At most `records` records per poll (0: no limit); the rest stay in the ring for
  // the next poll, which then does not nap. Bounds a batch a backend holds whole.
  // A poll with timeout 0 (the drain before a stop) takes everything regardless.
  void limit_batch(int records) { batch_limit_ = records; }
  // A benchmark floor: records are consumed and counted, never decoded.
  void drop_records() { drop_ = true; }
  // Waits up to timeout_ms (0: never blocks, never naps), hands every record to
  // `handler`, then emits a `lost` event through `emit_lost` if the loss counters
  // grew. The counters are read at most every 10 ms, and when a blocking poll
  // timed out or the timeout was 0.
  Status poll(int timeout_ms, const EventHandler& handler, const EmitFn& emit_lost);
  // Decodes one record (what poll does for each); public so tests feed bytes.
  void consume(std::span<const uint8_t> bytes, const EventHandler& handler);
  // Reads lost_by_op; emits a `lost` event for each reason whose count grew since the
  // last `lost` events (unresolved-path only counts: see check_losses).
  void check_losses(const EmitFn& emit_lost);

  // Directory-fd records (backends that see paths only as passed): without a
  // handler they are ignored.
  void on_dirfd(std::function<void(DirFdRecord&&)> handler) { dirfd_handler_ = std::move(handler); }

  const RingConsumerStats& stats() const { return stats_; }
  ExeCache& exe_cache() { return exes_; }

 private:
  static int on_record(void* self, void* data, size_t size);
  int poll_adaptive(int timeout_ms);
  int drain(bool block, int timeout_ms);
  void set_polling(bool polling);

  std::string_view backend_;
  BootClock clock_;
  PathResolver* resolver_;
  int lost_map_fd_;
  ring_buffer* ring_ = nullptr;
  const EventHandler* handler_ = nullptr;  // during poll
  std::function<void(DirFdRecord&&)> dirfd_handler_;
  ExeCache exes_;
  LossCounter ring_full_, map_full_;
  LossCounts reported_;  // what `lost` events have said so far
  RingConsumerStats stats_;
  volatile uint32_t* polling_flag_ = nullptr;
  bool polling_ = false;
  int idle_naps_ = 0;
  bool drop_ = false;
  int batch_limit_ = 0;
  int in_batch_ = 0;
  bool more_pending_ = false;
  int last_drain_ = 0;  // records the last drain found
  int64_t last_loss_check_ns_ = 0;

};

}  // namespace fstrail::bpf
