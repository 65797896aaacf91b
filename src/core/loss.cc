#include "core/loss.h"

#include <fmt/format.h>

#include <algorithm>

namespace fstrail {
namespace {

constexpr std::array<std::string_view, kLossReasonCount> kLossReasonNames = {
    "unknown",          "kernel-queue-overflow", "ring-buffer-full",    "bpf-map-full",     "malformed-record",
    "unresolved-path",  "unwatched-directory",   "unwatched-mount",     "spool-corrupt",
    "merged-by-kernel", "path-too-long",
};

}  // namespace

std::string_view loss_reason_name(LossReason reason) {
  auto i = static_cast<size_t>(reason);
  return i < kLossReasonNames.size() ? kLossReasonNames[i] : "unknown";
}

std::optional<LossReason> loss_reason_from_name(std::string_view name) {
  for (size_t i = 0; i < kLossReasonNames.size(); ++i)
    if (kLossReasonNames[i] == name) return static_cast<LossReason>(i);
  return std::nullopt;
}

uint64_t LossCounts::total() const {
  uint64_t n = 0;
  for (uint64_t v : by_reason_) n += v;
  return n;
}

LossCounts LossCounts::max_with(const LossCounts& other) const {
  LossCounts out;
  for (size_t i = 0; i < by_reason_.size(); ++i) out.by_reason_[i] = std::max(by_reason_[i], other.by_reason_[i]);
  return out;
}

std::string LossCounts::describe() const {
  std::string out;
  for (size_t i = 0; i < by_reason_.size(); ++i)
    if (by_reason_[i])
      out += fmt::format("{}{} {}", out.empty() ? "" : ", ", loss_reason_name(static_cast<LossReason>(i)), by_reason_[i]);
  return out;
}

}  // namespace fstrail
