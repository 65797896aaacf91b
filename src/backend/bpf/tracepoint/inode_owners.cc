#include "backend/bpf/tracepoint/inode_owners.h"

#include <sys/sysmacros.h>

#include "backend/tree_walk.h"

namespace fstrail::bpf {

void InodeOwners::remember(uint64_t dev, uint64_t ino, Owner owner) {
  if (attrs_.size() >= 1'000'000 && !attrs_.contains({dev, ino})) attrs_.clear();
  attrs_[{dev, ino}] = owner;
}

void InodeOwners::track(Event& event, const struct statx& x) {
  InodeKey key{makedev(x.stx_dev_major, x.stx_dev_minor), x.stx_ino};
  switch (event.kind) {
    case EventKind::kCreate:
    case EventKind::kMkdir:
    case EventKind::kSymlink:
      remember(key.dev, key.ino, {x.stx_mode, x.stx_uid, x.stx_gid});
      break;
    case EventKind::kChmod:
    case EventKind::kChown: {
      auto it = attrs_.find(key);
      if (it == attrs_.end()) break;  // never seen: old values stay null
      Owner& owner = it->second;
      if (event.kind == EventKind::kChmod && event.new_mode) {
        // A create's state is read when its event is handled, maybe after this very
        // chmod: a remembered mode equal to the new one may be this chmod's own, so
        // the old mode is then unknown.
        if (!event.old_mode && (owner.mode & 07777) != (*event.new_mode & 07777)) event.old_mode = owner.mode;
        owner.mode = (owner.mode & S_IFMT) | (*event.new_mode & 07777);
      } else if (event.kind == EventKind::kChown) {
        if (!event.old_uid) {  // the kernel's, when it read them (fchown)
          event.old_uid = owner.uid;
          event.old_gid = owner.gid;
        }
        if (event.new_uid) owner.uid = *event.new_uid;
        if (event.new_gid) owner.gid = *event.new_gid;
      }
      break;
    }
    default:
      break;
  }
}

void InodeOwners::forget(const struct statx& x) { attrs_.erase({makedev(x.stx_dev_major, x.stx_dev_minor), x.stx_ino}); }

void InodeOwners::scan(const std::vector<std::string>& roots) {
  constexpr size_t kMaxScanned = 200'000;
  size_t scanned = 0;
  auto seen = [&](const struct stat& st) {
    remember(st.st_dev, st.st_ino, {st.st_mode, st.st_uid, st.st_gid});
    return ++scanned < kMaxScanned;
  };
  for (const auto& root : roots) {
    struct stat st{};
    if (::lstat(root.c_str(), &st) == 0) seen(st);
    walk_tree(root, [&](const std::string&, const struct stat& entry) { return seen(entry); });
  }
}

}  // namespace fstrail::bpf
