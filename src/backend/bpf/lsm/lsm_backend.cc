#include "backend/bpf/lsm/lsm_backend.h"

#include "backend/bpf/common/bpf_probes.h"
#include "backend/bpf/common/subtree_backend.h"
#include "lsm.skel.h"

namespace fstrail {
namespace {

struct LsmTraits {
  using Skeleton = ::lsm;
  static constexpr bool kCanEnforce = true;  // guard enforcement: LSM hooks can deny
  static constexpr std::string_view kName = "bpf-lsm";
  static ::lsm* open() { return lsm__open(); }
  static int load(::lsm* s) { return lsm__load(s); }
  static int attach(::lsm* s) { return lsm__attach(s); }
  static void destroy(::lsm* s) { lsm__destroy(s); }
  static void choose_programs(::lsm* s) {
    // file_truncate: 6.2+ (ftruncate used path_truncate before). file_release: 6.8+,
    // runs before the file's dentry is put; older kernels release at file_free_security.
    bpf_program__set_autoload(s->progs.fst_lsm_file_truncate, bpf::kernel_has_function("bpf_lsm_file_truncate"));
    bool has_release = bpf::kernel_has_function("bpf_lsm_file_release");
    bpf_program__set_autoload(s->progs.fst_lsm_file_release, has_release);
    bpf_program__set_autoload(s->progs.fst_lsm_file_free_security, !has_release);
  }
};

}  // namespace

Availability probe_bpf_lsm() { return bpf::probe_lsm_programs(); }

std::unique_ptr<Backend> create_bpf_lsm_backend() {
  return std::make_unique<bpf::SubtreeBpfBackend<LsmTraits>>();
}

}  // namespace fstrail
