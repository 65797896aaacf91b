// Losses: why events were lost, and counts of them by reason. Every place that loses
// events counts them here, so the stop summary, the JSON `lost` events and the metrics
// all say the same thing.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fstrail {

// Why events were lost (Event::lost_reason, BackendStats, the stop summary, metrics).
// Append-only: the names are part of the JSON contract (docs/events.md) and the store.
enum class LossReason : uint8_t {
  kUnknown,              // a producer that does not say (older spool records)
  kKernelQueueOverflow,  // fanotify/inotify queue overflowed: followed by a rescan
  kRingBufferFull,       // a BPF program could not reserve ring-buffer space
  kBpfMapFull,           // a BPF program could not track an operation (a map was full)
  kMalformedRecord,      // a kernel record the decoder rejected
  kUnresolvedPath,       // an fd-based change whose path the kernel could not give, by a process gone
  kUnwatchedDirectory,   // a directory under a root that could not be watched (path too long, limits)
  kUnwatchedMount,       // a mount inside a root that the backend cannot see into
  kSpoolCorrupt,         // spooled events that failed their check on replay (quarantined)
  kMergedByKernel,       // fanotify merged identical queued events (a rename repeated by one process)
  kPathTooLong,          // an eBPF record whose path was longer than the kernel side could carry
};
inline constexpr int kLossReasonCount = static_cast<int>(LossReason::kPathTooLong) + 1;
std::string_view loss_reason_name(LossReason reason);
std::optional<LossReason> loss_reason_from_name(std::string_view name);

class LossCounts {
 public:
  void add(LossReason reason, uint64_t n = 1) { by_reason_[static_cast<size_t>(reason)] += n; }
  uint64_t operator[](LossReason reason) const { return by_reason_[static_cast<size_t>(reason)]; }
  uint64_t total() const;
  // Per reason, the larger of the two (one source may see losses the other only counts).
  LossCounts max_with(const LossCounts& other) const;
  // "ring-buffer-full 3, kernel-queue-overflow 1"; empty when nothing was lost.
  std::string describe() const;

 private:
  std::array<uint64_t, kLossReasonCount> by_reason_{};
};

}  // namespace fstrail
