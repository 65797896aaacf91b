#include "pipeline/pipeline.h"

#include <deque>

#include <gtest/gtest.h>

namespace fstrail {
namespace {

// A test-input backend: replays scripted batches, then asks the loop to stop.
class ScriptedBackend final : public Backend {
 public:
  ScriptedBackend(std::deque<std::vector<Event>> batches, std::atomic<bool>& stop)
      : batches_(std::move(batches)), stop_(stop) {}
  std::string_view name() const override { return "scripted"; }
  Status start(const WatchSpec&) override { return Ok{}; }
  Status poll(int, const EmitFn& emit) override {
    ++polls;
    if (batches_.empty()) {
      stop_ = true;
      return Ok{};
    }
    for (auto& e : batches_.front()) emit(std::move(e));
    batches_.pop_front();
    return Ok{};
  }
  BackendStats stats() const override {
    BackendStats s;
    s.lost.add(LossReason::kKernelQueueOverflow, 2);  // the summary takes the larger count per reason
    s.lost.add(LossReason::kRingBufferFull, 1);
    s.rescans = 1;
    return s;
  }
  int polls = 0;

 private:
  std::deque<std::vector<Event>> batches_;
  std::atomic<bool>& stop_;
};

class CaptureSink final : public Sink {
 public:
  explicit CaptureSink(std::vector<Event>& out, int& flushes) : out_(out), flushes_(flushes) {}
  void write(const Event& e) override { out_.push_back(e); }
  void flush() override { ++flushes_; }

 private:
  std::vector<Event>& out_;
  int& flushes_;
};

Event make(EventKind kind, std::string path) {
  Event e;
  e.kind = kind;
  e.path = std::move(path);
  return e;
}

TEST(Pipeline, FiltersCountsAndFlushesEveryBatch) {
  std::atomic<bool> stop{false};
  Event lost = make(EventKind::kLost, "/w");
  lost.lost = 3;
  lost.lost_reason = LossReason::kKernelQueueOverflow;
  ScriptedBackend backend({{make(EventKind::kCreate, "/w/a"), make(EventKind::kOpen, "/w/a")},
                           {make(EventKind::kModify, "/w/a"), make(EventKind::kCreate, "/w/.git/x"), lost}},
                          stop);
  std::vector<Event> seen;
  int flushes = 0;
  std::vector<std::unique_ptr<Sink>> sinks;
  sinks.push_back(std::make_unique<CaptureSink>(seen, flushes));
  FilterOptions options;
  options.exclude_globs = {".git"};
  Pipeline pipeline(Filter(options), std::move(sinks));

  ASSERT_TRUE(run_until_stopped(backend, pipeline, stop).ok());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].kind, EventKind::kCreate);
  EXPECT_EQ(seen[1].kind, EventKind::kModify);
  EXPECT_EQ(seen[2].kind, EventKind::kLost);
  EXPECT_GE(flushes, 3);
  EXPECT_EQ(pipeline.counts().filtered_out, 2u);
  EXPECT_EQ(pipeline.counts().by_kind[static_cast<size_t>(EventKind::kCreate)], 1u);
  EXPECT_EQ(pipeline.counts().lost[LossReason::kKernelQueueOverflow], 3u);

  char* text = nullptr;
  size_t size = 0;
  FILE* mem = open_memstream(&text, &size);
  print_summary(mem, pipeline.counts(), backend.stats());
  fclose(mem);
  EXPECT_STREQ(text, "fstrail: 2 events (create 1, modify 1), 4 lost (kernel-queue-overflow 3, ring-buffer-full 1), 1 rescans\n");
  free(text);
}

TEST(Pipeline, BackendFailureEndsTheRun) {
  class Failing final : public Backend {
   public:
    std::string_view name() const override { return "failing"; }
    Status start(const WatchSpec&) override { return Ok{}; }
    Status poll(int, const EmitFn&) override { return Error{"read failed", 5}; }
    BackendStats stats() const override { return {}; }
  } backend;
  std::atomic<bool> stop{false};
  Pipeline pipeline(Filter(FilterOptions{}), {});
  Status s = run_until_stopped(backend, pipeline, stop);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().err, 5);
}

}  // namespace
}  // namespace fstrail
