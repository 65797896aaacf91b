// The pipeline: backend events -> filters -> sinks, with the per-kind counts and
// losses that the stop summary shows. Actor fields arrive filled by the backend
// (each knows whether its pid still names the same process: see enrich/procfs.h).
#pragma once

#include <array>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "filter/filter.h"
#include "sink/sink.h"

namespace fstrail {

struct PipelineCounts {
  std::array<uint64_t, kEventKindCount> by_kind{};  // events delivered to the sinks
  uint64_t filtered_out = 0;
  LossCounts lost;  // sum of `lost` events seen, by reason
};

class Pipeline {
 public:
  Pipeline(Filter filter, std::vector<std::unique_ptr<Sink>> sinks);

  void process(Event&& event);
  void flush();
  const PipelineCounts& counts() const { return counts_; }

 private:
  Filter filter_;
  std::vector<std::unique_ptr<Sink>> sinks_;
  PipelineCounts counts_;
};

// Polls `backend` into `pipeline` until `stop` is set (by a signal handler) or the
// backend fails; flushes the sinks after every batch. `between_polls`, when given, runs on
// this thread after each flush (the agent reloads its configuration there); an error from
// it ends the loop.
Status run_until_stopped(Backend& backend, Pipeline& pipeline, const std::atomic<bool>& stop,
                         const std::function<Status()>& between_polls = {});

// "fstrail: 12 events (create 3, modify 9), 2 lost (kernel-queue-overflow 2), 1 rescans"
// for stderr at exit. Per reason, the larger of what the `lost` events said and what
// the backend counted.
void print_summary(FILE* out, const PipelineCounts& counts, const BackendStats& stats);

}  // namespace fstrail
