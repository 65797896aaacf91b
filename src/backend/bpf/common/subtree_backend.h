// The user-space half of the backends built on fs_capture.bpf.h (bpf-lsm, bpf-fentry):
// watched roots as (st_dev, st_ino) keys of the in-kernel filter, settings written
// before load, programs for functions a kernel lacks switched off, then the shared
// ring-buffer consumer. The two backends differ only in their skeleton (Traits).
#pragma once

#include <algorithm>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "backend/backend.h"
#include "backend/bpf/common/bpf_runtime.h"
#include "backend/bpf/common/ring_consumer.h"
#include "decode/decoder.h"
#include "fstrail/guard_map.h"

namespace fstrail::bpf {

// struct fst_root_key in fs_capture.bpf.h
struct RootKey {
  uint64_t dev;
  uint64_t ino;
};

// The key of a watched directory (stat, not lstat: a root given as a symlink names its target).
Result<RootKey> root_key_of(const std::string& path);
// Whether the running kernel's BTF has this function (a hook or a traced function).
bool kernel_has_function(std::string_view name);
// Whether that function returns a pointer (vfs_mkdir: int before 6.15, a dentry since).
bool kernel_function_returns_pointer(std::string_view name);
// Bit (1 << op) per wanted op; the ops match EventKind values.
uint32_t wanted_ops(const KindSet& kinds);

// The kernel's rule for a guarded tree (the fst_guard_rules value); an error naming the
// tree when it does not fit (more than FST_GUARD_MAX_EXEMPT exempt users).
Result<fst_guard_rule> kernel_guard_rule(const GuardedTree& tree);

// A backend whose watched roots can change while it runs.
class SubtreeBackend : public Backend {
 public:
  virtual Status add_root(const std::string& path) = 0;
  virtual Status remove_root(const std::string& path) = 0;
};

template <typename Traits>
class SubtreeBpfBackend final : public SubtreeBackend {
 public:
  using Skeleton = typename Traits::Skeleton;

  ~SubtreeBpfBackend() override {
    consumer_.reset();
    if (skel_) Traits::destroy(skel_);
  }

  std::string_view name() const override { return Traits::kName; }

  Status start(const WatchSpec& spec) override {
    if (Status s = prepare_bpf_runtime(); !s) return s;
    skel_ = Traits::open();
    if (!skel_) return Error::from_errno(fmt::format("{}: cannot open the BPF object", Traits::kName));
    skel_->rodata->fst_agent_tgid = static_cast<uint32_t>(::getpid());
    skel_->rodata->fst_ops_wanted = wanted_ops(spec.kinds);
    skel_->rodata->fst_report_failed = spec.report_failed ? 1 : 0;
    bool enforce = false;
    for (const auto& tree : spec.guarded_trees) enforce |= tree.enforce;
    if constexpr (Traits::kCanEnforce) {
      skel_->rodata->fst_enforce = enforce ? 1 : 0;
    } else if (enforce) {
      return Error{fmt::format("{} cannot enforce guard rules: only bpf-lsm denies operations in the kernel "
                               "(see `fstrail doctor`)", Traits::kName)};
    }
    Traits::choose_programs(skel_);
    if (int err = Traits::load(skel_); err)
      return Error::from_errno(fmt::format("{}: loading the BPF programs failed (set FSTRAIL_BPF_VERBOSE=1 "
                                           "for the verifier log)", Traits::kName), -err);
    for (const auto& root : spec.roots)
      if (Status s = add_root(root); !s) return s;
    roots_ = spec.roots;
    if constexpr (Traits::kCanEnforce) {
      for (const auto& tree : spec.guarded_trees)
        if (Status s = add_guarded_tree(tree); !s) return s;
    }
    if (int err = Traits::attach(skel_); err)
      return Error::from_errno(fmt::format("{}: attaching the BPF programs failed", Traits::kName), -err);
    consumer_ = std::make_unique<RingConsumer>(Traits::kName, &resolver_, bpf_map__fd(skel_->maps.lost_by_op));
    // exe comes from the kernel (fs_capture.bpf.h announces it): never from /proc by pid.
    consumer_->exe_cache().kernel_only();
    return consumer_->open(bpf_map__fd(skel_->maps.events));
  }

  // Roots can change while running: the filter is a map the kernel reads at every event.
  Status add_root(const std::string& path) override {
    auto key = root_key_of(path);
    if (!key) return key.error();
    uint8_t one = 1;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.fst_roots), &*key, &one, BPF_ANY) != 0)
      return Error::from_errno(fmt::format("cannot watch {}: the root map is full or unusable", path));
    return Ok{};
  }

  Status add_guarded_tree(const GuardedTree& tree) {
    auto key = root_key_of(tree.path);
    if (!key) return key.error();
    auto rule = kernel_guard_rule(tree);
    if (!rule) return rule.error();
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.fst_guard_rules), &*key, &*rule, BPF_ANY) != 0)
      return Error::from_errno(fmt::format("cannot guard {}: the guard rule map is full or unusable", tree.path));
    return Ok{};
  }

  Status remove_root(const std::string& path) override {
    auto key = root_key_of(path);
    if (!key) return key.error();
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.fst_roots), &*key) != 0)
      return Error::from_errno(fmt::format("{} was not watched", path));
    return Ok{};
  }

  Status update_roots(const std::vector<std::string>& roots) override {
    for (const auto& root : roots_not_in(roots, roots_))
      if (Status s = add_root(root); !s) return s;
    for (const auto& root : roots_not_in(roots_, roots))
      if (Status s = remove_root(root); !s) return s;
    roots_ = roots;
    return Ok{};
  }

  Status poll(int timeout_ms, const EmitFn& emit) override {
    return consumer_->poll(timeout_ms, [&](Event&& e) { emit(std::move(e)); }, emit);
  }

  BackendStats stats() const override {
    BackendStats s;
    if (consumer_) s.lost = consumer_->stats().lost;
    return s;
  }

 private:
  Skeleton* skel_ = nullptr;
  std::vector<std::string> roots_;
  ProcfsPathResolver resolver_;
  std::unique_ptr<RingConsumer> consumer_;
};

}  // namespace fstrail::bpf
