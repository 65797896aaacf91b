#include "backend/bpf/common/subtree_backend.h"

#include <bpf/btf.h>

namespace fstrail::bpf {

Result<RootKey> root_key_of(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return Error::from_errno(fmt::format("cannot watch {}", path));
  return RootKey{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

bool kernel_has_function(std::string_view name) {
  static btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  return btf__find_by_name_kind(vmlinux, std::string(name).c_str(), BTF_KIND_FUNC) > 0;
}

bool kernel_function_returns_pointer(std::string_view name) {
  static btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) return false;
  int id = btf__find_by_name_kind(vmlinux, std::string(name).c_str(), BTF_KIND_FUNC);
  if (id <= 0) return false;
  const btf_type* proto = btf__type_by_id(vmlinux, btf__type_by_id(vmlinux, id)->type);
  if (!proto) return false;
  const btf_type* ret = btf__type_by_id(vmlinux, proto->type);
  while (ret && (btf_is_mod(ret) || btf_is_typedef(ret))) ret = btf__type_by_id(vmlinux, ret->type);
  return ret && btf_is_ptr(ret);
}

uint32_t wanted_ops(const KindSet& kinds) {
  uint32_t ops = 0;
  for (int kind = static_cast<int>(EventKind::kCreate); kind <= static_cast<int>(EventKind::kOpen); ++kind)
    if (kinds.test(static_cast<size_t>(kind))) ops |= 1u << kind;
  return ops;
}

}  // namespace fstrail::bpf
