// Git's ignore rules through libgit2, in and outside a repository, plus .ignore files.
#include "devtools/ignore.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "support/temp_dir.h"

namespace fstrail::devtools {
namespace {

void write(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

TEST(RuleAtTopLevel, KeepsGitScoping) {
  EXPECT_EQ(rule_at_top_level("*.log", ""), "*.log");
  EXPECT_EQ(rule_at_top_level("*.log", "sub/"), "/sub/**/*.log");
  EXPECT_EQ(rule_at_top_level("build/", "sub/"), "/sub/**/build/");
  EXPECT_EQ(rule_at_top_level("/out", "sub/"), "/sub/out");
  EXPECT_EQ(rule_at_top_level("a/b", "sub/"), "/sub/a/b");
  EXPECT_EQ(rule_at_top_level("!keep.log", "sub/"), "!/sub/**/keep.log");
  EXPECT_EQ(rule_at_top_level("# comment", "sub/"), "");
  EXPECT_EQ(rule_at_top_level("", "sub/"), "");
  EXPECT_EQ(rule_at_top_level("!", "sub/"), "");
  EXPECT_EQ(rule_at_top_level("x\r", ""), "x");
}

class IgnoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    root = dir.path() + "/tree";
    std::filesystem::create_directories(root);
    if (GetParam()) {
      ASSERT_EQ(std::system(("git init -q " + root).c_str()), 0);
    }
  }
  std::unique_ptr<IgnoreRules> open(std::vector<std::string> extra = {}) {
    auto rules = IgnoreRules::open(root, extra);
    EXPECT_TRUE(rules) << (rules ? "" : rules.error().message);
    return rules ? std::move(*rules) : nullptr;
  }
  fstrail::testing::TempDir dir{"ignore"};
  std::string root;
};

TEST_P(IgnoreTest, NestedGitignoreWithNegation) {
  write(root + "/.gitignore", "*.log\nbuild/\n");
  write(root + "/sub/.gitignore", "!keep.log\n*.tmp\n");
  auto rules = open();
  ASSERT_TRUE(rules);
  EXPECT_EQ(rules->in_git_repository(), GetParam());
  EXPECT_TRUE(rules->ignored(root + "/a.log", false));
  EXPECT_TRUE(rules->ignored(root + "/sub/a.log", false));
  EXPECT_FALSE(rules->ignored(root + "/sub/keep.log", false));
  EXPECT_TRUE(rules->ignored(root + "/keep.log", false));  // the negation is sub/'s only
  EXPECT_TRUE(rules->ignored(root + "/sub/x.tmp", false));
  EXPECT_FALSE(rules->ignored(root + "/x.tmp", false));
  EXPECT_TRUE(rules->ignored(root + "/build", true));
  EXPECT_TRUE(rules->ignored(root + "/build/deep/x.o", false));
  EXPECT_FALSE(rules->ignored(root + "/src/main.c", false));
  EXPECT_FALSE(rules->ignored(root, true));
  EXPECT_FALSE(rules->ignored("/elsewhere/a.log", false));
}

TEST_P(IgnoreTest, GitInternalsAreAlwaysIgnored) {
  auto rules = open();
  ASSERT_TRUE(rules);
  EXPECT_TRUE(rules->ignored(root + "/.git/index", false));
  EXPECT_TRUE(rules->ignored(root + "/.git/objects/ab/cdef", false));
  EXPECT_TRUE(rules->ignored(root + "/sub/.git", true));
  EXPECT_FALSE(rules->ignored(root + "/.gitignore", false));
}

TEST_P(IgnoreTest, DotIgnoreFilesNestAndWinOverGitignore) {
  write(root + "/.gitignore", "!*.gen\n");
  write(root + "/.ignore", "*.gen\n");
  write(root + "/a/.ignore", "!keep.gen\n/local\n");
  auto rules = open();
  ASSERT_TRUE(rules);
  EXPECT_TRUE(rules->ignored(root + "/x.gen", false));
  EXPECT_TRUE(rules->ignored(root + "/a/b/x.gen", false));
  EXPECT_FALSE(rules->ignored(root + "/a/b/keep.gen", false));
  EXPECT_TRUE(rules->ignored(root + "/keep.gen", false));
  EXPECT_TRUE(rules->ignored(root + "/a/local", false));
  EXPECT_FALSE(rules->ignored(root + "/a/b/local", false));
  // A changed .ignore counts after a reload.
  write(root + "/a/.ignore", "");
  ASSERT_TRUE(rules->reload_ignore_files());
  EXPECT_TRUE(rules->ignored(root + "/a/b/keep.gen", false));
  EXPECT_FALSE(rules->ignored(root + "/a/local", false));
}

TEST_P(IgnoreTest, ExtraPatternsApplyAtTheRoot) {
  auto rules = open({"*.swp", "/out/", "!important.swp"});
  ASSERT_TRUE(rules);
  EXPECT_TRUE(rules->ignored(root + "/d/e/.x.swp", false));
  EXPECT_FALSE(rules->ignored(root + "/important.swp", false));
  EXPECT_TRUE(rules->ignored(root + "/out", true));
  EXPECT_FALSE(rules->ignored(root + "/d/out", true));
}

TEST(IgnoreInRepository, InfoExcludeAndASubdirectoryRoot) {
  fstrail::testing::TempDir dir{"ignore-repo"};
  std::string repo = dir.path() + "/repo";
  ASSERT_EQ(std::system(("git init -q " + repo).c_str()), 0);
  write(repo + "/.git/info/exclude", "*.secret\n");
  write(repo + "/.gitignore", "/sub/gen/\n");
  write(dir.path() + "/global-excludes", "*.bak\n");
  ASSERT_EQ(std::system(
                ("git -C " + repo + " config core.excludesFile " + dir.path() + "/global-excludes").c_str()),
            0);
  std::filesystem::create_directories(repo + "/sub/gen");
  auto rules = IgnoreRules::open(repo + "/sub", {"local.txt"});
  ASSERT_TRUE(rules) << rules.error().message;
  EXPECT_TRUE((*rules)->in_git_repository());
  EXPECT_EQ((*rules)->worktree(), repo + "/");
  EXPECT_TRUE((*rules)->ignored(repo + "/sub/a.secret", false));
  EXPECT_TRUE((*rules)->ignored(repo + "/sub/gen/x", false));
  EXPECT_TRUE((*rules)->ignored(repo + "/sub/deep/old.bak", false));  // core.excludesFile
  EXPECT_TRUE((*rules)->ignored(repo + "/sub/x/local.txt", false));
  EXPECT_FALSE((*rules)->ignored(repo + "/local.txt", false));  // --exclude is relative to the root
}

INSTANTIATE_TEST_SUITE_P(InAndOutsideGit, IgnoreTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "repository" : "plain"; });

}  // namespace
}  // namespace fstrail::devtools
