#include "devtools/ignore.h"

#include <dirent.h>
#include <fmt/format.h>
#include <ftw.h>
#include <git2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>

namespace fstrail::devtools {
namespace {

Error libgit2_error(std::string what) {
  const ::git_error* e = git_error_last();
  return Error{fmt::format("{}: {}", what, e && e->message ? e->message : "libgit2 error")};
}

void init_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    // Only ignore rules are read (no hooks, no filters, no fsmonitor): a repository owned
    // by another user (root watching a user's tree) is as safe to read here as any file.
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
  });
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

bool has_git_component(std::string_view rel) {
  for (size_t at = 0; at <= rel.size();) {
    size_t end = rel.find('/', at);
    if (end == std::string_view::npos) end = rel.size();
    if (rel.substr(at, end - at) == ".git") return true;
    at = end + 1;
  }
  return false;
}

}  // namespace

struct IgnoreRules::Repo {
  git_repository* repo = nullptr;
  ~Repo() { git_repository_free(repo); }
};

std::string rule_at_top_level(std::string_view line, std::string_view dir) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.empty() || line.front() == '#') return "";
  std::string negate;
  if (line.front() == '!') {
    negate = "!";
    line.remove_prefix(1);
    if (line.empty()) return "";
  }
  if (dir.empty()) return negate + std::string(line);
  std::string_view body = line;
  if (!body.empty() && body.back() == '/') body.remove_suffix(1);
  bool anchored = body.find('/') != std::string_view::npos;
  if (line.front() == '/') line.remove_prefix(1);
  return fmt::format("{}/{}{}{}", negate, dir, anchored ? "" : "**/", line);
}

bool IgnoreRules::is_ignore_file(std::string_view path) {
  std::string_view name = path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
  return name == ".ignore" || name == ".gitignore";
}

Result<std::unique_ptr<IgnoreRules>> IgnoreRules::open(const std::string& root,
                                                       const std::vector<std::string>& extra_patterns) {
  init_libgit2();
  std::unique_ptr<IgnoreRules> rules(new IgnoreRules);
  rules->root_ = root;
  rules->extra_patterns_ = extra_patterns;
  rules->repo_ = std::make_unique<Repo>();
  git_repository*& repo = rules->repo_->repo;
  int rc = git_repository_open_ext(&repo, root.c_str(), 0, nullptr);
  if (rc == 0 && git_repository_is_bare(repo)) {
    git_repository_free(repo);
    repo = nullptr;
    rc = GIT_ENOTFOUND;
  }
  if (rc == GIT_ENOTFOUND) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = fmt::format("{}/fstrail-ignore-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!::mkdtemp(dir.data()))
      return Error::from_errno("cannot create a directory for ignore rules in " + dir);
    rules->shadow_dir_ = dir;
    if (git_repository_init(&repo, dir.c_str(), 1) != 0) return libgit2_error("cannot create " + dir);
    if (git_repository_set_workdir(repo, root.c_str(), 0) != 0)
      return libgit2_error("cannot read ignore rules of " + root);
  } else if (rc != 0) {
    return libgit2_error("cannot open the git repository around " + root);
  }
  rules->worktree_ = git_repository_workdir(repo);
  if (rules->worktree_.empty() || rules->worktree_.back() != '/') rules->worktree_ += '/';
  if (Status s = rules->reload_ignore_files(); !s) return s.error();
  return rules;
}

IgnoreRules::~IgnoreRules() {
  repo_.reset();
  if (!shadow_dir_.empty()) ::nftw(shadow_dir_.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool IgnoreRules::ignored(std::string_view path, bool is_dir) const {
  std::string_view top(worktree_.data(), worktree_.size() - 1);
  if (path == top) return false;
  if (path.substr(0, worktree_.size()) != worktree_) return false;
  std::string rel(path.substr(worktree_.size()));
  if (has_git_component(rel)) return true;
  if (is_dir) rel += '/';
  int ignored = 0;
  if (git_ignore_path_is_ignored(&ignored, repo_->repo, rel.c_str()) != 0) return false;
  return ignored != 0;
}

// libgit2 1.5 consults a shallower .gitignore before a deeper one (a negation in sub/.gitignore
// loses to the root's pattern), so every per-directory file's rules go to libgit2 as one list
// of top-level rules, shallower files first: in one list the last matching rule wins, as git
// wants. Then come the `.ignore` files and --exclude, which win over .gitignore. libgit2 still
// applies .git/info/exclude and core.excludesFile, after this list, as git does.
Status IgnoreRules::reload_ignore_files() {
  git_repository* repo = repo_->repo;
  if (git_ignore_clear_internal_rules(repo) != 0) return libgit2_error("cannot reset ignore rules");
  std::vector<std::pair<std::string, std::string>> gitignores,
      ignores;  // (dir relative to the worktree, file)
  // The .gitignore files above the root, inside the worktree, count too.
  for (std::string dir = worktree_.substr(0, worktree_.size() - 1); dir.size() < root_.size();) {
    std::string rel = dir.size() + 1 > worktree_.size() ? dir.substr(worktree_.size()) + "/" : "";
    gitignores.emplace_back(rel, dir + "/.gitignore");
    size_t next = root_.find('/', dir.size() + 1);
    dir = next == std::string::npos ? root_ : root_.substr(0, next);
  }
  std::vector<std::string> dirs{root_};
  while (!dirs.empty()) {  // breadth first: shallower files first
    std::vector<std::string> next;
    for (const auto& dir : dirs) {
      std::string rel = dir.size() + 1 > worktree_.size() ? dir.substr(worktree_.size()) + "/" : "";
      DIR* d = ::opendir(dir.c_str());
      if (!d) continue;
      while (dirent* entry = ::readdir(d)) {
        std::string name = entry->d_name;
        if (name == "." || name == ".." || name == ".git") continue;
        std::string full = dir + "/" + name;
        if (entry->d_type != DT_DIR && name == ".gitignore") gitignores.emplace_back(rel, full);
        if (entry->d_type != DT_DIR && name == ".ignore") ignores.emplace_back(rel, full);
        if (entry->d_type == DT_DIR && !ignored(full, true)) next.push_back(full);
      }
      ::closedir(d);
    }
    dirs = std::move(next);
  }
  std::string text;
  for (const auto* files : {&gitignores, &ignores})
    for (const auto& [rel, file] : *files) {
      std::ifstream in(file);
      for (std::string line; std::getline(in, line);)
        if (auto rule = rule_at_top_level(line, rel); !rule.empty()) text += rule + "\n";
    }
  std::string root_rel = root_.size() + 1 > worktree_.size() ? root_.substr(worktree_.size()) + "/" : "";
  for (const auto& pattern : extra_patterns_)
    if (auto rule = rule_at_top_level(pattern, root_rel); !rule.empty()) text += rule + "\n";
  if (!text.empty() && git_ignore_add_rule(repo, text.c_str()) != 0) return libgit2_error("bad ignore rule");
  return Ok{};
}

bool IgnoreRules::git_operation_in_progress() const {
  if (!in_git_repository()) return false;
  struct stat st {};
  return ::stat((std::string(git_repository_path(repo_->repo)) + "index.lock").c_str(), &st) == 0;
}

}  // namespace fstrail::devtools
