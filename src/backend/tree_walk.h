// Recursive directory listing and root bookkeeping shared by the fanotify and inotify backends.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>

namespace fstrail {

// Calls visit(path, lstat) for every entry below `dir` (not `dir` itself), a
// directory before its contents; descends into a directory only when visit returns
// true. Symbolic links are not followed. Entries that vanish meanwhile are skipped.
void walk_tree(const std::string& dir, const std::function<bool(const std::string&, const struct stat&)>& visit);

// "/a/b" + "c" -> "/a/b/c" ("/" + "c" -> "/c").
std::string join_path(const std::string& dir, std::string_view name);

// True when `path` is `root` or below it.
bool path_is_under(std::string_view path, std::string_view root);

// Tells the user (stderr) that a watched root itself was removed: these backends watch
// directories by inode, so a new directory made at that path is not watched.
void warn_root_removed(const std::string& root);

// Tells the user (stderr) that a watched root was renamed: it is followed to its new
// path, and a directory made under the old name is not watched.
void warn_root_moved(const std::string& from, const std::string& to);

}  // namespace fstrail
