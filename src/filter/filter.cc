#include "filter/filter.h"

#include <fnmatch.h>
#include <pwd.h>

#include <charconv>

#include "core/text.h"

namespace fstrail {

KindSet default_kinds() {
  KindSet kinds;
  kinds.set();
  kinds.reset(0);
  kinds.reset(static_cast<size_t>(EventKind::kOpen));
  return kinds;
}

Result<KindSet> parse_kinds(const std::string& list) {
  KindSet kinds;
  kinds.set(static_cast<size_t>(EventKind::kLost));
  bool named = false;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string name = list.substr(start, comma - start);
    if (!name.empty()) {
      auto kind = kind_from_name(name);
      if (!kind) {
        return Error{"unknown event kind '" + escape_for_terminal(name) +
                     "'; valid kinds: create,mkdir,delete,rmdir,rename,modify,chmod,chown,"
                     "truncate,link,symlink,xattr,open"};
      }
      kinds.set(static_cast<size_t>(*kind));
      named = true;
    }
    start = comma + 1;
  }
  // An empty list must not quietly mean "every kind".
  if (!named)
    return Error{"names no event kind; give at least one of create,mkdir,delete,rmdir,rename,modify,chmod,chown,"
                 "truncate,link,symlink,xattr,open"};
  return kinds;
}

Result<uint32_t> parse_user(const std::string& text) {
  uint32_t uid = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), uid);
  if (ec == std::errc() && end == text.data() + text.size()) return uid;
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (getpwnam_r(text.c_str(), &pw, buf, sizeof buf, &found) == 0 && found) return pw.pw_uid;
  return Error{"unknown user '" + text + "': give a user name from /etc/passwd or a numeric uid"};
}

bool Filter::excluded(const std::string& path) const {
  for (const auto& glob : options_.exclude_globs) {
    if (glob.find('/') != std::string::npos) {
      if (fnmatch(glob.c_str(), path.c_str(), 0) == 0) return true;
      continue;
    }
    size_t start = 0;
    while (start < path.size()) {
      size_t slash = path.find('/', start);
      if (slash == std::string::npos) slash = path.size();
      if (slash > start && fnmatch(glob.c_str(), path.substr(start, slash - start).c_str(), 0) == 0)
        return true;
      start = slash + 1;
    }
  }
  return false;
}

bool Filter::accepts(const Event& e) const {
  if (e.kind == EventKind::kLost) return true;
  if (!options_.kinds.test(static_cast<size_t>(e.kind))) return false;
  if (options_.uid && e.uid != options_.uid) return false;
  if (excluded(e.path) && !(e.old_path && !excluded(*e.old_path))) return false;
  return true;
}

}  // namespace fstrail
