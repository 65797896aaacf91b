#include "core/event.h"

namespace fstrail {
namespace {

constexpr std::array<std::string_view, kEventKindCount> kKindNames = {
    "?",        "create",  "mkdir", "delete", "rmdir",   "rename", "modify", "chmod",
    "chown",    "truncate", "link", "symlink", "xattr",  "open",   "lost",
};

}  // namespace

std::string_view kind_name(EventKind kind) {
  auto i = static_cast<size_t>(kind);
  return i < kKindNames.size() ? kKindNames[i] : "?";
}

std::optional<EventKind> kind_from_name(std::string_view name) {
  for (size_t i = 1; i < kKindNames.size(); ++i)
    if (kKindNames[i] == name) return static_cast<EventKind>(i);
  return std::nullopt;
}

std::string_view actor_source_name(ActorSource source) {
  switch (source) {
    case ActorSource::kKernel: return "kernel";
    case ActorSource::kProcfs: return "procfs";
    case ActorSource::kNone: break;
  }
  return "none";
}

}  // namespace fstrail
