// bpf-tracepoint: old mode and owner are not in a chmod/chown syscall. They come from
// the last state seen, kept per inode from a scan at start and then from every event in
// order. The state after a chmod/chown is the syscall's arguments, not the file now,
// which may have changed again since.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/event.h"

namespace fstrail::bpf {

class InodeOwners {
 public:
  // Bounded, so watching a huge tree (or "/") does not stall the start: beyond the
  // bound, old values of files not seen since start are null.
  void scan(const std::vector<std::string>& roots);
  // Fills the event's old mode/owner from the state seen, then records its new state
  // (`x`: the file at the event's path now).
  void track(Event& event, const struct statx& x);
  void forget(const struct statx& x);

 private:
  struct Owner {
    uint32_t mode, uid, gid;
  };
  struct InodeKey {
    uint64_t dev, ino;
    bool operator==(const InodeKey&) const = default;
  };
  struct InodeKeyHash {
    size_t operator()(const InodeKey& k) const { return k.ino * 0x9E3779B97F4A7C15ULL ^ k.dev; }
  };

  void remember(uint64_t dev, uint64_t ino, Owner owner);

  std::unordered_map<InodeKey, Owner, InodeKeyHash> attrs_;
};

}  // namespace fstrail::bpf
