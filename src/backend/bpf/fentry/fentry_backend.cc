#include "backend/bpf/fentry/fentry_backend.h"

#include "backend/bpf/common/bpf_probes.h"
#include "backend/bpf/common/subtree_backend.h"
#include "fentry.skel.h"

namespace fstrail {
namespace {

struct FentryTraits {
  using Skeleton = ::fentry;
  static constexpr bool kCanEnforce = false;  // guard enforcement: LSM hooks can deny
  static constexpr std::string_view kName = "bpf-fentry";
  static ::fentry* open() { return fentry__open(); }
  static int load(::fentry* s) { return fentry__load(s); }
  static int attach(::fentry* s) { return fentry__attach(s); }
  static void destroy(::fentry* s) { fentry__destroy(s); }
  static void choose_programs(::fentry* s) {
    // ftruncate(2) goes through security_file_truncate since 6.2, security_path_truncate before.
    bpf_program__set_autoload(s->progs.fst_fentry_file_truncate,
                              bpf::kernel_has_function("security_file_truncate"));
    s->rodata->fst_vfs_mkdir_returns_dentry = bpf::kernel_function_returns_pointer("vfs_mkdir") ? 1 : 0;
  }
};

}  // namespace

Availability probe_bpf_fentry() { return bpf::probe_fentry_programs(); }

std::unique_ptr<Backend> create_bpf_fentry_backend() {
  return std::make_unique<bpf::SubtreeBpfBackend<FentryTraits>>();
}

}  // namespace fstrail
