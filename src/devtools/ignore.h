// Ignore rules with git's semantics, for developer tools (`fstrail run`, the fsmonitor hook):
// nested .gitignore files, .git/info/exclude and core.excludesFile through libgit2, plus
// `.ignore` files (ripgrep's and fd's: same syntax, they win over .gitignore) and extra
// patterns given on the command line. Anything inside a `.git` directory is always ignored.
//
// Outside a git repository the same rules apply: a private, empty bare repository in a
// temporary directory is given the tree as its working directory (libgit2 needs a
// repository to read ignore files; nothing is written into the tree).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace fstrail::devtools {

class IgnoreRules {
 public:
  // `root`: an absolute, canonical directory. `extra_patterns`: gitignore lines that
  // apply as if written in a `.ignore` file at `root` (they win over every file).
  static Result<std::unique_ptr<IgnoreRules>> open(const std::string& root,
                                                   const std::vector<std::string>& extra_patterns);
  ~IgnoreRules();
  IgnoreRules(const IgnoreRules&) = delete;
  IgnoreRules& operator=(const IgnoreRules&) = delete;

  // `path`: absolute. A path outside the root's working tree is not ignored.
  // `is_dir` is needed for a path that no longer exists (a pattern ending in '/').
  bool ignored(std::string_view path, bool is_dir) const;

  // Re-reads the `.gitignore` and `.ignore` files under the root (call when one was
  // created, changed or removed).
  Status reload_ignore_files();

  // Whether `path` is a file whose change calls for reload_ignore_files().
  static bool is_ignore_file(std::string_view path);

  // Whether git is in the middle of an operation on this repository (.git/index.lock
  // exists: a checkout, a merge, a commit): its writes come in one burst with pauses.
  bool git_operation_in_progress() const;

  // The working tree whose rules apply (the repository's, or the root itself).
  const std::string& worktree() const { return worktree_; }
  bool in_git_repository() const { return shadow_dir_.empty(); }

 private:
  IgnoreRules() = default;
  struct Repo;
  std::unique_ptr<Repo> repo_;
  std::string root_;
  std::string worktree_;    // with a trailing '/'
  std::string shadow_dir_;  // the private repository outside git (removed at destruction)
  std::vector<std::string> extra_patterns_;
};

// One gitignore line of a file in directory `dir` (relative to the working tree, "" or
// ending in '/') rewritten as a rule of the working tree's top level, with git's scoping:
// a pattern with a '/' before its end is relative to `dir`, one without matches at any
// depth below it. Comments and blank lines give "".
std::string rule_at_top_level(std::string_view line, std::string_view dir);

}  // namespace fstrail::devtools
