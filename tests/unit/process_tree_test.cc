// --ignore-self's process tree, against a fake /proc (the connector needs root: host test).
#include "devtools/process_tree.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace fstrail::devtools {
namespace {

class ProcessTreeTest : public ::testing::Test {
 protected:
  void SetUp() override { tree.set_proc_root(proc.path()); }
  // /proc/PID/stat with a comm that holds ") " to check the parse.
  void process(int pid, int ppid, int pgrp) {
    std::filesystem::create_directories(proc.path() + "/" + std::to_string(pid));
    std::ofstream(proc.path() + "/" + std::to_string(pid) + "/stat")
        << pid << " (odd) name) S " << ppid << " " << pgrp << " 1 0 -1\n";
  }
  Event by(std::optional<int> pid, std::optional<int> ppid = std::nullopt) {
    Event e;
    e.pid = pid;
    e.ppid = ppid;
    return e;
  }
  fstrail::testing::TempDir proc{"proc"};
  ProcessTree tree;
};

TEST_F(ProcessTreeTest, TheCommandAndChildrenByPpid) {
  tree.new_command(100);
  EXPECT_TRUE(tree.made_by_command(by(100)));
  EXPECT_TRUE(tree.made_by_command(by(101, 100)));  // ppid known: no /proc needed
  EXPECT_TRUE(tree.made_by_command(by(102, 101)));  // and its child
  EXPECT_FALSE(tree.made_by_command(by(200, 1)));
  EXPECT_FALSE(tree.made_by_command(by(std::nullopt)));  // unknown actor: not the command's
}

TEST_F(ProcessTreeTest, AncestryFromProc) {
  process(300, 250, 250);
  process(250, 100, 100);
  tree.new_command(100);
  EXPECT_TRUE(tree.made_by_command(by(300)));  // 300 -> 250 -> 100
  process(400, 1, 100);                        // reparented to init, still in the group
  EXPECT_TRUE(tree.made_by_command(by(400)));
  process(500, 1, 500);
  EXPECT_FALSE(tree.made_by_command(by(500)));
  EXPECT_FALSE(tree.made_by_command(by(600)));  // gone: unknown, so not the command's
}

TEST_F(ProcessTreeTest, ThePreviousRunCountsOneRunMore) {
  tree.new_command(100);
  EXPECT_TRUE(tree.made_by_command(by(101, 100)));
  tree.new_command(200);
  EXPECT_TRUE(tree.made_by_command(by(101)));  // a late event of the previous run
  tree.new_command(300);
  EXPECT_FALSE(tree.made_by_command(by(101)));
}

}  // namespace
}  // namespace fstrail::devtools
