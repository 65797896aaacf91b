// fstrail run's debounce, settle and coalescing, on a fake clock.
#include "devtools/batcher.h"

#include <gtest/gtest.h>

namespace fstrail::devtools {
namespace {

constexpr int64_t kMs = 1'000'000;

Event ev(EventKind kind, std::string path, std::optional<std::string> old_path = std::nullopt) {
  Event e;
  e.kind = kind;
  e.path = std::move(path);
  e.old_path = std::move(old_path);
  return e;
}

class BatcherTest : public ::testing::Test {
 protected:
  ChangeBatcher b{BatchTiming{50 * kMs, 2000 * kMs}};
  int64_t now = 1000 * kMs;  // the fake clock
};

TEST_F(BatcherTest, NothingPendingIsNeverDue) {
  EXPECT_FALSE(b.pending());
  EXPECT_EQ(b.wait_ns(now), -1);
  EXPECT_FALSE(b.due(now + 10'000 * kMs));
}

TEST_F(BatcherTest, DueOnlyAfterTheQuietTime) {
  b.add(ev(EventKind::kModify, "/t/a"), now);
  EXPECT_EQ(b.wait_ns(now), 50 * kMs);
  EXPECT_FALSE(b.due(now + 49 * kMs));
  EXPECT_TRUE(b.due(now + 50 * kMs));
}

TEST_F(BatcherTest, ABurstIsOneBatch) {
  // 10 000 files, one every 0.1 ms: the quiet time restarts with each.
  for (int i = 0; i < 10000; ++i) {
    b.add(ev(EventKind::kCreate, "/t/f" + std::to_string(i)), now);
    EXPECT_FALSE(b.due(now));
    now += kMs / 10;
  }
  EXPECT_FALSE(b.due(now + 40 * kMs));
  EXPECT_TRUE(b.due(now + 50 * kMs));
  Batch batch = b.take();
  EXPECT_EQ(batch.changes.size(), 10000u);
  EXPECT_EQ(batch.changes.front().path, "/t/f0");
  EXPECT_FALSE(b.pending());
}

TEST_F(BatcherTest, GapsLongerThanTheDebounceMakeSeparateBatches) {
  b.add(ev(EventKind::kModify, "/t/a"), now);
  now += 60 * kMs;
  ASSERT_TRUE(b.due(now));
  EXPECT_EQ(b.take().changes.size(), 1u);
  b.add(ev(EventKind::kModify, "/t/b"), now);
  EXPECT_FALSE(b.due(now + 10 * kMs));
  EXPECT_TRUE(b.due(now + 50 * kMs));
}

TEST_F(BatcherTest, SettleWaitsForAFileBeingWrittenAtMostSettleMax) {
  b.add(ev(EventKind::kCreate, "/t/big"), now);
  b.set_writes_in_progress(true);
  EXPECT_FALSE(b.due(now + 50 * kMs));
  EXPECT_FALSE(b.due(now + 1999 * kMs));
  EXPECT_TRUE(b.due(now + 2000 * kMs));  // still written: no longer than settle-max
  EXPECT_EQ(b.wait_ns(now + 100 * kMs), 1900 * kMs);
}

TEST_F(BatcherTest, SettleEndsWhenTheWriterCloses) {
  b.add(ev(EventKind::kCreate, "/t/big"), now);
  b.set_writes_in_progress(true);
  now += 500 * kMs;
  EXPECT_FALSE(b.due(now));
  b.set_writes_in_progress(false);
  b.add(ev(EventKind::kModify, "/t/big"), now);  // the close
  EXPECT_FALSE(b.due(now + 49 * kMs));
  EXPECT_TRUE(b.due(now + 50 * kMs));
  Batch batch = b.take();
  ASSERT_EQ(batch.changes.size(), 1u);
  EXPECT_EQ(batch.changes[0].kind, EventKind::kCreate);  // created, then written: created
}

TEST_F(BatcherTest, AtomicSaveIsOneModifyOfTheTarget) {
  b.add(ev(EventKind::kCreate, "/t/.main.c.swx"), now);
  b.add(ev(EventKind::kModify, "/t/.main.c.swx"), now);
  b.add(ev(EventKind::kRename, "/t/main.c", "/t/.main.c.swx"), now);
  Batch batch = b.take();
  ASSERT_EQ(batch.changes.size(), 1u);
  EXPECT_EQ(batch.changes[0].path, "/t/main.c");
  EXPECT_EQ(batch.changes[0].kind, EventKind::kModify);
  EXPECT_FALSE(batch.changes[0].old_path);
}

TEST_F(BatcherTest, ARenameOfAnOldFileStaysARename) {
  b.add(ev(EventKind::kModify, "/t/a"), now);
  b.add(ev(EventKind::kRename, "/t/b", "/t/a"), now);
  Batch batch = b.take();
  ASSERT_EQ(batch.changes.size(), 1u);
  EXPECT_EQ(batch.changes[0].kind, EventKind::kRename);
  EXPECT_EQ(batch.changes[0].old_path, "/t/a");
}

TEST_F(BatcherTest, CreatedThenRemovedIsNoChange) {
  b.add(ev(EventKind::kCreate, "/t/tmp"), now);
  b.add(ev(EventKind::kModify, "/t/tmp"), now);
  b.add(ev(EventKind::kDelete, "/t/tmp"), now);
  EXPECT_FALSE(b.pending());
  EXPECT_EQ(b.wait_ns(now), -1);
}

TEST_F(BatcherTest, RemovedThenCreatedIsAModify) {
  b.add(ev(EventKind::kDelete, "/t/a"), now);
  b.add(ev(EventKind::kCreate, "/t/a"), now);
  Batch batch = b.take();
  ASSERT_EQ(batch.changes.size(), 1u);
  EXPECT_EQ(batch.changes[0].kind, EventKind::kModify);
}

TEST_F(BatcherTest, ErasedAndMadeAgainKeepsOnePlace) {
  b.add(ev(EventKind::kCreate, "/t/a"), now);
  b.add(ev(EventKind::kModify, "/t/b"), now);
  b.add(ev(EventKind::kDelete, "/t/a"), now);
  b.add(ev(EventKind::kCreate, "/t/a"), now);
  Batch batch = b.take();
  ASSERT_EQ(batch.changes.size(), 2u);
  EXPECT_EQ(batch.changes[0].path, "/t/b");
  EXPECT_EQ(batch.changes[1].path, "/t/a");
  EXPECT_EQ(batch.changes[1].kind, EventKind::kCreate);
}

TEST_F(BatcherTest, ALossMakesARescanBatchEvenWithoutChanges) {
  Event lost = ev(EventKind::kLost, "/t");
  lost.lost_reason = LossReason::kKernelQueueOverflow;
  b.add(std::move(lost), now);
  EXPECT_TRUE(b.pending());
  EXPECT_TRUE(b.due(now + 50 * kMs));
  Batch batch = b.take();
  EXPECT_TRUE(batch.rescan);
  EXPECT_EQ(batch.lost[LossReason::kKernelQueueOverflow], 1u);
  EXPECT_FALSE(b.take().rescan);  // the next one is not
}

TEST_F(BatcherTest, OpenIsNotAChange) {
  b.add(ev(EventKind::kOpen, "/t/a"), now);
  EXPECT_FALSE(b.pending());
}

}  // namespace
}  // namespace fstrail::devtools
