#include "filter/filter.h"

#include <gtest/gtest.h>

namespace fstrail {
namespace {

Event at(std::string path, EventKind kind = EventKind::kCreate) {
  Event e;
  e.path = std::move(path);
  e.kind = kind;
  return e;
}

TEST(Kinds, DefaultIsEverythingButOpen) {
  Filter f{FilterOptions{}};
  EXPECT_TRUE(f.accepts(at("/a", EventKind::kModify)));
  EXPECT_TRUE(f.accepts(at("/a", EventKind::kXattr)));
  EXPECT_FALSE(f.accepts(at("/a", EventKind::kOpen)));
}

TEST(Kinds, ParsesListAndAlwaysKeepsLoss) {
  auto kinds = parse_kinds("create,chown");
  ASSERT_TRUE(kinds.ok());
  FilterOptions o;
  o.kinds = *kinds;
  Filter f{o};
  EXPECT_TRUE(f.accepts(at("/a", EventKind::kChown)));
  EXPECT_FALSE(f.accepts(at("/a", EventKind::kModify)));
  EXPECT_TRUE(f.accepts(at("/a", EventKind::kLost)));
}

TEST(Kinds, UnknownNameSaysWhatIsValid) {
  auto kinds = parse_kinds("create,wrote");
  ASSERT_FALSE(kinds.ok());
  EXPECT_NE(kinds.error().message.find("'wrote'"), std::string::npos);
  EXPECT_NE(kinds.error().message.find("modify"), std::string::npos);
}

TEST(Kinds, AListNamingNoKindIsAnError) {
  for (const char* list : {"", ",", ",,"}) {
    auto kinds = parse_kinds(list);
    ASSERT_FALSE(kinds.ok()) << "'" << list << "' must not mean every kind";
    EXPECT_NE(kinds.error().message.find("names no event kind"), std::string::npos);
  }
  auto kinds = parse_kinds("create,\nx");
  ASSERT_FALSE(kinds.ok());
  EXPECT_NE(kinds.error().message.find("unknown event kind '\\nx'"), std::string::npos) << kinds.error().message;
}

TEST(Exclude, ComponentAndFullPathGlobs) {
  FilterOptions o;
  o.exclude_globs = {".git", "*.swp", "/srv/app/cache/*"};
  Filter f{o};
  EXPECT_FALSE(f.accepts(at("/src/.git/index")));
  EXPECT_FALSE(f.accepts(at("/src/.git")));
  EXPECT_FALSE(f.accepts(at("/src/.main.c.swp")));
  EXPECT_FALSE(f.accepts(at("/srv/app/cache/a/b")));
  EXPECT_TRUE(f.accepts(at("/src/main.c")));
  EXPECT_TRUE(f.accepts(at("/src/.github/x")));
}

TEST(Exclude, RenameOutOfExcludedPathIsKept) {
  FilterOptions o;
  o.exclude_globs = {"*.tmp"};
  Filter f{o};
  Event e = at("/d/file", EventKind::kRename);
  e.old_path = "/d/file.tmp";
  EXPECT_TRUE(f.accepts(e));
}

TEST(User, FiltersOnRealUidAndParsesNames) {
  FilterOptions o;
  o.uid = 1000;
  Filter f{o};
  Event e = at("/a");
  EXPECT_FALSE(f.accepts(e));  // unknown uid never matches
  e.uid = 1000;
  EXPECT_TRUE(f.accepts(e));
  e.uid = 0;
  EXPECT_FALSE(f.accepts(e));

  EXPECT_EQ(*parse_user("0"), 0u);
  EXPECT_EQ(*parse_user("root"), 0u);
  EXPECT_FALSE(parse_user("no-such-user-xyz").ok());
}

}  // namespace
}  // namespace fstrail
