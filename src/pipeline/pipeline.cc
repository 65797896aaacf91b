#include "pipeline/pipeline.h"

#include <fmt/format.h>

namespace fstrail {

Pipeline::Pipeline(Filter filter, std::vector<std::unique_ptr<Sink>> sinks)
    : filter_(std::move(filter)), sinks_(std::move(sinks)) {}

void Pipeline::process(Event&& event) {
  if (event.kind == EventKind::kLost) counts_.lost.add(event.lost_reason, event.lost.value_or(0));
  if (!filter_.accepts(event)) {
    ++counts_.filtered_out;
    return;
  }
  ++counts_.by_kind[static_cast<size_t>(event.kind)];
  for (auto& sink : sinks_) sink->write(event);
}

void Pipeline::flush() {
  for (auto& sink : sinks_) sink->flush();
}

Status run_until_stopped(Backend& backend, Pipeline& pipeline, const std::atomic<bool>& stop,
                         const std::function<Status()>& between_polls) {
  EmitFn emit = [&pipeline](Event&& e) { pipeline.process(std::move(e)); };
  while (!stop.load(std::memory_order_relaxed)) {
    Status s = backend.poll(200, emit);
    pipeline.flush();
    if (!s) return s;
    if (between_polls)
      if (Status b = between_polls(); !b) return b;
  }
  // Drain what the kernel already queued before the stop request.
  Status s = backend.poll(0, emit);
  pipeline.flush();
  return s;
}

void print_summary(FILE* out, const PipelineCounts& counts, const BackendStats& stats) {
  uint64_t total = 0;
  std::string parts;
  for (int k = 1; k < kEventKindCount; ++k) {
    uint64_t n = counts.by_kind[static_cast<size_t>(k)];
    if (n == 0 || static_cast<EventKind>(k) == EventKind::kLost) continue;
    total += n;
    parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", kind_name(static_cast<EventKind>(k)), n);
  }
  LossCounts lost = counts.lost.max_with(stats.lost);
  fmt::print(out, "fstrail: {} events{}, {} lost", total, parts.empty() ? "" : " (" + parts + ")", lost.total());
  if (lost.total()) fmt::print(out, " ({})", lost.describe());
  if (stats.rescans) fmt::print(out, ", {} rescans", stats.rescans);
  fmt::print(out, "\n");
}

}  // namespace fstrail
