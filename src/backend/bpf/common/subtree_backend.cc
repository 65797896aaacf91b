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

Result<fst_guard_rule> kernel_guard_rule(const GuardedTree& tree) {
  if (tree.exempt_users.size() > FST_GUARD_MAX_EXEMPT)
    return Error{fmt::format("guarded tree {}: {} exempt users, the kernel rule holds at most {}", tree.path,
                             tree.exempt_users.size(), FST_GUARD_MAX_EXEMPT)};
  fst_guard_rule rule{};
  rule.owner = tree.owner;
  rule.group = tree.group;
  rule.file_mode = tree.file_mode & 07777;
  rule.dir_mode = tree.dir_mode & 07777;
  rule.enforce = tree.enforce ? 1 : 0;
  rule.exempt_count = static_cast<uint32_t>(tree.exempt_users.size());
  for (size_t i = 0; i < tree.exempt_users.size(); ++i) rule.exempt[i] = tree.exempt_users[i];
  return rule;
}

uint32_t wanted_ops(const KindSet& kinds) {
  uint32_t ops = 0;
  for (int kind = static_cast<int>(EventKind::kCreate); kind <= static_cast<int>(EventKind::kOpen); ++kind)
    if (kinds.test(static_cast<size_t>(kind))) ops |= 1u << kind;
  return ops;
}

}  // namespace fstrail::bpf
