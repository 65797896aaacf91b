#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include <gtest/gtest.h>

#include "backend/bpf/common/bpf_probes.h"
#include "backend/bpf/common/ring_consumer.h"
#include "fstrail/wire.h"

namespace fstrail::bpf {
namespace {

TEST(LossCounterTest, ReportsGrowthSinceLastLook) {
  LossCounter losses;
  std::vector<uint64_t> values(4, 0);
  EXPECT_EQ(losses.update(values), 0u);
  values[1] = 3;  // cpu/op slots: any slot growing is a loss
  values[3] = 2;
  EXPECT_EQ(losses.update(values), 5u);
  EXPECT_EQ(losses.update(values), 0u);  // unchanged: nothing new
  values[0] = 1;
  EXPECT_EQ(losses.update(values), 1u);
  EXPECT_EQ(losses.total(), 6u);
}

TEST(LossCounterTest, SmallerSumIsNotALoss) {
  LossCounter losses;
  std::vector<uint64_t> values{10, 10};
  EXPECT_EQ(losses.update(values), 20u);
  values = {1, 0};  // map recreated
  EXPECT_EQ(losses.update(values), 0u);
  values = {4, 0};
  EXPECT_EQ(losses.update(values), 3u);
  EXPECT_EQ(losses.total(), 23u);
}

class FakeBpfProc : public ::testing::Test {
 protected:
  void SetUp() override {
    root = std::filesystem::temp_directory_path() / ("fstrail-proc-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root / "42");
    std::filesystem::create_symlink("/usr/bin/from-proc", root / "42" / "exe");
    std::filesystem::create_directories(root / "43");
    std::filesystem::create_directory_symlink("/home/alice", root / "43" / "cwd");
  }
  void TearDown() override { std::filesystem::remove_all(root); }
  std::filesystem::path root;
};

TEST_F(FakeBpfProc, ExeCacheReadsProcOnceForUnknownPids) {
  ExeCache cache(root.string());
  EXPECT_EQ(cache.exe(42), "/usr/bin/from-proc");
  std::filesystem::remove(root / "42" / "exe");
  EXPECT_EQ(cache.exe(42), "/usr/bin/from-proc");  // cached: /proc is not read again
  EXPECT_FALSE(cache.exe(7).has_value());            // no such process: unknown, not made up
}

TEST_F(FakeBpfProc, ExecRecordReplacesTheCachedExe) {
  ExeCache cache(root.string());
  EXPECT_EQ(cache.exe(42), "/usr/bin/from-proc");
  cache.on_exec(42, "/usr/bin/vim", nullptr);
  EXPECT_EQ(cache.exe(42), "/usr/bin/vim");
}

TEST_F(FakeBpfProc, RelativeExecIsResolvedAgainstTheCwd) {
  ExeCache cache(root.string());
  ProcfsPathResolver resolver(root.string());
  cache.on_exec(43, "./build/tool", &resolver);
  EXPECT_EQ(cache.exe(43), "/home/alice/build/tool");
  cache.on_exec(42, "", &resolver);  // execveat(fd, "", AT_EMPTY_PATH): unknown name, read /proc
  EXPECT_EQ(cache.exe(42), "/usr/bin/from-proc");
}

TEST_F(FakeBpfProc, ExeCacheStaysBounded) {
  ExeCache cache(root.string(), 2);
  cache.on_exec(1, "/a", nullptr);
  cache.on_exec(2, "/b", nullptr);
  cache.on_exec(3, "/c", nullptr);
  EXPECT_LE(cache.size(), 2u);
  EXPECT_EQ(cache.exe(3), "/c");
}

std::vector<uint8_t> exec_record(uint32_t pid, std::string_view filename) {
  fst_exec x{};
  x.hdr.type = FST_REC_EXEC;
  x.hdr.version = FST_WIRE_VERSION;
  x.hdr.size = static_cast<uint32_t>(sizeof x + filename.size());
  x.pid = pid;
  x.filename_len = static_cast<uint16_t>(filename.size());
  std::vector<uint8_t> bytes(x.hdr.size);
  std::memcpy(bytes.data(), &x, sizeof x);
  std::memcpy(bytes.data() + sizeof x, filename.data(), filename.size());
  return bytes;
}

std::vector<uint8_t> event_record(uint32_t pid, std::string_view path) {
  fst_event w{};
  w.hdr.type = FST_REC_EVENT;
  w.hdr.version = FST_WIRE_VERSION;
  w.hdr.size = static_cast<uint32_t>(sizeof w + path.size());
  w.op = FST_OP_CREATE;
  w.actor.pid = pid;
  w.actor.tid = pid;
  w.path_enc = FST_PATH_ABSOLUTE;
  w.path_len = static_cast<uint16_t>(path.size());
  std::vector<uint8_t> bytes(w.hdr.size);
  std::memcpy(bytes.data(), &w, sizeof w);
  std::memcpy(bytes.data() + sizeof w, path.data(), path.size());
  return bytes;
}

TEST_F(FakeBpfProc, ConsumerAppliesExecRecordsInOrderAndCountsMalformed) {
  ProcfsPathResolver resolver(root.string());
  RingConsumer consumer("bpf-test", &resolver, -1);
  consumer.exe_cache() = ExeCache(root.string());
  std::vector<Event> events;
  auto handler = [&](Event&& e) { events.push_back(std::move(e)); };

  consumer.consume(event_record(42, "/w/before"), handler);
  consumer.consume(exec_record(42, "/usr/bin/touch"), handler);
  consumer.consume(event_record(42, "/w/after"), handler);
  std::vector<uint8_t> garbage{1, 2, 3};
  consumer.consume(garbage, handler);
  auto truncated = event_record(42, "/w/x");
  truncated.resize(truncated.size() - 2);
  consumer.consume(truncated, handler);

  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].exe, "/usr/bin/from-proc");
  EXPECT_EQ(events[1].exe, "/usr/bin/touch");
  EXPECT_EQ(events[1].backend, "bpf-test");
  EXPECT_EQ(consumer.stats().records, 5u);
  EXPECT_EQ(consumer.stats().lost[LossReason::kMalformedRecord], 2u);

  // Each loss becomes one `lost` event with its reason, once.
  std::vector<Event> lost;
  consumer.check_losses([&](Event&& e) { lost.push_back(std::move(e)); });
  ASSERT_EQ(lost.size(), 1u);
  EXPECT_EQ(lost[0].kind, EventKind::kLost);
  EXPECT_EQ(lost[0].lost, 2u);
  EXPECT_EQ(lost[0].lost_reason, LossReason::kMalformedRecord);
  consumer.check_losses([&](Event&& e) { lost.push_back(std::move(e)); });
  EXPECT_EQ(lost.size(), 1u);
}

// A path the kernel side had to cut (a walk stopped short of the root) would name a path
// that never existed: never emitted, counted as path-too-long.
TEST_F(FakeBpfProc, ACutPathIsNeverEmittedButCountedAsLost) {
  ProcfsPathResolver resolver(root.string());
  RingConsumer consumer("bpf-test", &resolver, -1);
  consumer.exe_cache() = ExeCache(root.string());
  std::vector<Event> events;
  auto cut = event_record(42, "/001ppp/002ppp/leaf");
  reinterpret_cast<fst_event*>(cut.data())->flags |= FST_EF_PATH_TRUNCATED;
  consumer.consume(cut, [&](Event&& e) { events.push_back(std::move(e)); });
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(consumer.stats().lost[LossReason::kPathTooLong], 1u);
  consumer.check_losses([&](Event&& e) { events.push_back(std::move(e)); });
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].lost_reason, LossReason::kPathTooLong);
  EXPECT_EQ(events[0].lost, 1u);
}

class PretendKernel : public KernelFeatures {
 public:
  PretendKernel(bool root, std::optional<std::string> lockdown) : root_(root), lockdown_(std::move(lockdown)) {}
  bool is_root() const override { return root_; }
  std::optional<std::string> lockdown() const override { return lockdown_; }

 private:
  bool root_;
  std::optional<std::string> lockdown_;
};

TEST(ExplainLoadFailureTest, NamesLockdownWhenTheKernelRefusesRoot) {
  std::string why = explain_load_failure("lsm", EPERM, PretendKernel(true, "integrity"));
  EXPECT_NE(why.find("loading an lsm program failed: Operation not permitted"), std::string::npos) << why;
  EXPECT_NE(why.find("lockdown=integrity"), std::string::npos) << why;
}

TEST(ExplainLoadFailureTest, NotRootAndUnsupported) {
  EXPECT_NE(explain_load_failure("fentry", EPERM, PretendKernel(false, "none")).find("not root"), std::string::npos);
  std::string why = explain_load_failure("fentry", EINVAL, PretendKernel(true, "none"));
  EXPECT_NE(why.find("does not support fentry"), std::string::npos) << why;
  EXPECT_NE(why.find("lockdown=none"), std::string::npos) << why;
}

}  // namespace
}  // namespace fstrail::bpf
