#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsmonitor/protocol.h"
#include "support/temp_dir.h"

namespace fstrail::fsmonitor {
namespace {

TEST(FsmonitorToken, RoundTripsAndRefusesForeignTokens) {
  Token t{0xdeadbeef12345678, 42};
  EXPECT_EQ(format_token(t), "fstrail:deadbeef12345678:2a");
  EXPECT_EQ(parse_token(format_token(t)), t);
  // git seeds the first query with a timestamp (ns since the epoch).
  EXPECT_FALSE(parse_token("1733612345123456789"));
  EXPECT_FALSE(parse_token(""));
  EXPECT_FALSE(parse_token("fstrail:"));
  EXPECT_FALSE(parse_token("fstrail:12"));
  EXPECT_FALSE(parse_token("fstrail:12:"));
  EXPECT_FALSE(parse_token("fstrail:12:3g"));
  EXPECT_FALSE(parse_token("fstrail:12:3:4"));
  EXPECT_FALSE(parse_token("fstrail:12345678901234567:1"));  // more than 64 bits
  EXPECT_FALSE(parse_token("fstrail:AB:1"));                 // we write lower case only
}

TEST(FsmonitorChangeLog, AnswersWhatChangedAfterAToken) {
  ChangeLog log(10);
  log.add("a", 11);
  log.add("b/", 12);
  log.add("a", 13);  // changed again: its last change counts
  EXPECT_EQ(log.changed_since(10), (std::vector<std::string>{"a", "b/"}));
  EXPECT_EQ(log.changed_since(12), (std::vector<std::string>{"a"}));
  EXPECT_EQ(log.changed_since(13), (std::vector<std::string>{}));
  EXPECT_FALSE(log.changed_since(9)) << "a token from before the watch began cannot be answered";
}

TEST(FsmonitorChangeLog, ALossMakesEveryOlderTokenUnanswerable) {
  ChangeLog log(1);
  log.add("a", 2);
  log.lose_track(3);
  log.add("b", 4);
  EXPECT_FALSE(log.changed_since(2));
  EXPECT_EQ(log.changed_since(3), (std::vector<std::string>{"b"}));
}

TEST(FsmonitorChangeLog, ItsMemoryIsBoundedAndTheBoundIsALoss) {
  ChangeLog log(0, 2);
  log.add("a", 1);
  log.add("b", 2);
  log.add("a", 3);  // known path: no growth
  EXPECT_EQ(log.size(), 2u);
  log.add("c", 4);  // over the bound
  EXPECT_FALSE(log.changed_since(3));
  EXPECT_EQ(log.changed_since(4), (std::vector<std::string>{}));
}

TEST(FsmonitorPaths, RelativeToTheWorktreeDirectoriesWithASlashGitsOwnLeftOut) {
  EXPECT_EQ(git_path("/w", "/w/a/b.c", false), "a/b.c");
  EXPECT_EQ(git_path("/w/", "/w/a", true), "a/");
  EXPECT_EQ(git_path("/", "/etc/x", false), "etc/x");
  EXPECT_EQ(git_path("/w", "/w/.gitignore", false), ".gitignore");
  EXPECT_EQ(git_path("/w", "/w/sub/.git/x", false), "sub/.git/x");  // a nested repository: git decides
  EXPECT_FALSE(git_path("/w", "/w", true));
  EXPECT_FALSE(git_path("/w", "/wx/a", false));
  EXPECT_FALSE(git_path("/w", "/other", false));
  EXPECT_FALSE(git_path("/w", "/w/.git", true));
  EXPECT_FALSE(git_path("/w", "/w/.git/index.lock", false));
}

TEST(FsmonitorPaths, CookiesInGitDirOrTheRootOnly) {
  EXPECT_EQ(cookie_name("/w", "/w/.git/.fstrail-cookie-1-2"), ".fstrail-cookie-1-2");
  EXPECT_EQ(cookie_name("/w", "/w/.fstrail-cookie-1-2"), ".fstrail-cookie-1-2");
  EXPECT_FALSE(cookie_name("/w", "/w/a/.fstrail-cookie-1-2"));
  EXPECT_FALSE(cookie_name("/w", "/w/.git/a/.fstrail-cookie-1-2"));
  EXPECT_FALSE(cookie_name("/w", "/w/.git/index"));
  EXPECT_FALSE(cookie_name("/w", "/wx/.fstrail-cookie-1-2"));
}

TEST(FsmonitorWire, RequestsRoundTripAndGarbageIsRefused) {
  Request q{'Q', "/w/t", "fstrail:1:2"};
  auto back = decode_request(encode_request(q));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->root, "/w/t");
  EXPECT_EQ(back->token, "fstrail:1:2");
  EXPECT_EQ(decode_request(encode_request(Request{'S', {}, {}}))->op, 'S');
  EXPECT_FALSE(decode_request(""));
  EXPECT_FALSE(decode_request("X"));
  EXPECT_FALSE(decode_request(std::string("Q/w\0t", 5)));       // no final NUL
  EXPECT_FALSE(decode_request(std::string("Q\0t\0", 4)));       // no root
  EXPECT_FALSE(decode_request(std::string("Q/w\0t\0x\0", 8)));  // one field too many
}

TEST(FsmonitorWire, HookOutputIsTokenNulPathsOrSlash) {
  Token t{1, 2};
  EXPECT_EQ(hook_output(t, std::vector<std::string>{"a", "d/"}), std::string("fstrail:1:2\0a\0d/\0", 17));
  EXPECT_EQ(hook_output(t, std::vector<std::string>{}), std::string("fstrail:1:2\0", 12));
  EXPECT_EQ(hook_output(t, std::nullopt), std::string("fstrail:1:2\0/\0", 14));
}

TEST(FsmonitorRuntimeDir, OnlyAPrivateDirectoryOfTheCallersIsUsed) {
  testing::TempDir tmp{"fsmonitor-dir"};
  std::string dir = tmp.path() + "/d";
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  EXPECT_TRUE(check_private_dir(dir));
  ASSERT_EQ(::chmod(dir.c_str(), 0750), 0);
  auto open = check_private_dir(dir);
  ASSERT_FALSE(open);
  EXPECT_NE(open.error().message.find("chmod 700"), std::string::npos) << open.error().message;
  std::string link = tmp.path() + "/link";
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(dir.c_str(), link.c_str()), 0);
  EXPECT_FALSE(check_private_dir(link));
  EXPECT_FALSE(check_private_dir(tmp.path() + "/missing"));

  ::setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
  auto made = private_runtime_dir();
  ASSERT_TRUE(made) << made.error().message;
  EXPECT_EQ(*made, dir + "/fstrail");
  struct stat st {};
  ASSERT_EQ(::stat(made->c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ::unsetenv("XDG_RUNTIME_DIR");
}

}  // namespace
}  // namespace fstrail::fsmonitor
