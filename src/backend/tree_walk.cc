#include "backend/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>

#include <cstring>

#include <fmt/format.h>

namespace fstrail {

std::string join_path(const std::string& dir, std::string_view name) {
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out = dir;
  if (out.empty() || out.back() != '/') out += '/';
  out += name;
  return out;
}

bool path_is_under(std::string_view path, std::string_view root) {
  if (root == "/") return !path.empty() && path.front() == '/';
  return path.substr(0, root.size()) == root && (path.size() == root.size() || path[root.size()] == '/');
}

void walk_tree(const std::string& dir, const std::function<bool(const std::string&, const struct stat&)>& visit) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  int dfd = ::dirfd(d);
  std::vector<std::string> subdirs;
  while (dirent* ent = ::readdir(d)) {
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0) continue;
    struct stat st{};
    if (::fstatat(dfd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    std::string path = join_path(dir, ent->d_name);
    if (visit(path, st) && S_ISDIR(st.st_mode)) subdirs.push_back(std::move(path));
  }
  ::closedir(d);
  for (const auto& sub : subdirs) walk_tree(sub, visit);
}

void warn_root_removed(const std::string& root) {
  fmt::print(stderr, "fstrail: {} was removed: it is no longer watched (run fstrail again once it exists)\n", root);
}

void warn_root_moved(const std::string& from, const std::string& to) {
  fmt::print(stderr, "fstrail: {} was moved to {}: watched there now (a new {} is not watched)\n", from, to, from);
}

}  // namespace fstrail
