// The pipeline: backend events -> enrichment -> filters -> sinks, with the
// per-kind counts and losses that the stop summary shows.
#pragma once

#include <array>
#include <atomic>
#include <cstdio>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "enrich/procfs.h"
#include "filter/filter.h"
#include "sink/sink.h"

namespace fstrail {

struct PipelineCounts {
  std::array<uint64_t, kEventKindCount> by_kind{};  // events delivered to the sinks
  uint64_t filtered_out = 0;
  uint64_t lost = 0;  // sum of `lost` events seen
};

class Pipeline {
 public:
  Pipeline(Filter filter, std::vector<std::unique_ptr<Sink>> sinks, Enricher* enricher = nullptr);

  void process(Event&& event);
  void flush();
  const PipelineCounts& counts() const { return counts_; }

 private:
  Filter filter_;
  std::vector<std::unique_ptr<Sink>> sinks_;
  Enricher* enricher_;
  PipelineCounts counts_;
};

// Polls `backend` into `pipeline` until `stop` is set (by a signal handler) or the
// backend fails; flushes the sinks after every batch.
Status run_until_stopped(Backend& backend, Pipeline& pipeline, const std::atomic<bool>& stop);

// "fstrail: 12 events (create 3, modify 9), 0 lost" for stderr at exit.
void print_summary(FILE* out, const PipelineCounts& counts, const BackendStats& stats);

}  // namespace fstrail
