// Host tier (root): the loss counters read from a real per-CPU BPF array map.
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include "backend/bpf/common/ring_consumer.h"

namespace fstrail::bpf {
namespace {

// The loss counters in one batch read are the values of every slot of every CPU, in
// the order a lookup per slot gives.
TEST(ReadPercpuCountersTest, BatchReadEqualsOneLookupPerSlot) {
  constexpr uint32_t kSlots = 14;
  int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "fst_test_lost", sizeof(uint32_t), sizeof(uint64_t), kSlots,
                          nullptr);
  ASSERT_GE(fd, 0) << "cannot create a BPF map: " << std::strerror(-fd) << " (the host tier runs as root)";
  int cpus = libbpf_num_possible_cpus();
  ASSERT_GT(cpus, 0);
  std::vector<uint64_t> per_key(static_cast<size_t>(cpus) * kSlots);
  for (uint32_t key = 0; key < kSlots; ++key) {
    std::vector<uint64_t> values(static_cast<size_t>(cpus));
    for (int cpu = 0; cpu < cpus; ++cpu) values[static_cast<size_t>(cpu)] = 1000ULL * key + static_cast<uint64_t>(cpu) + 1;
    ASSERT_EQ(bpf_map_update_elem(fd, &key, values.data(), BPF_ANY), 0);
    std::copy(values.begin(), values.end(), per_key.begin() + static_cast<long>(key) * cpus);
  }
  auto read = read_percpu_counters(fd, kSlots);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(*read, per_key);
  close(fd);
}

}  // namespace
}  // namespace fstrail::bpf
