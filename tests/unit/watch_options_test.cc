#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "cli/commands.h"
#include "support/temp_dir.h"

namespace fstrail::cli {
namespace {

class PrepareWatchTest : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::create_directory(dir_ + "/sub"); }
  testing::TempDir tmp_{"watch-options"};
  const std::string dir_ = tmp_.path();
};

TEST_F(PrepareWatchTest, TheSameDirectoryNamedTwiceIsOneRoot) {
  WatchOptions o;
  o.paths = {dir_, dir_ + "/", dir_ + "/.", dir_ + "/sub/..", dir_ + "/sub"};
  auto p = prepare_watch(o);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->spec.roots, (std::vector<std::string>{dir_, dir_ + "/sub"}));
}

TEST_F(PrepareWatchTest, AMissingPathOrAFileIsAnErrorThatSaysWhatToDo) {
  WatchOptions missing;
  missing.paths = {dir_ + "/nope"};
  auto p = prepare_watch(missing);
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("create it first"), std::string::npos) << p.error().message;

  std::string file = dir_ + "/file";
  ::close(::creat(file.c_str(), 0644));
  WatchOptions not_dir;
  not_dir.paths = {file};
  auto q = prepare_watch(not_dir);
  ASSERT_FALSE(q);
  EXPECT_NE(q.error().message.find("not a directory"), std::string::npos) << q.error().message;
}

}  // namespace
}  // namespace fstrail::cli
