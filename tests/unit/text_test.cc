#include "core/text.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "sink/sink.h"

#include <gtest/gtest.h>

namespace fstrail {
namespace {

TEST(Utf8, AcceptsValidRejectsInvalid) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain/ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("bad\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated sequence
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // beyond U+10FFFF
}

TEST(Base64, RoundTripsEveryLength) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 7) EXPECT_EQ(base64_decode(base64_encode(all.substr(0, n))), all.substr(0, n));
}

TEST(TerminalEscape, KeepsOneLine) {
  EXPECT_EQ(escape_for_terminal("a\nb\tc"), "a\\nb\\tc");
  EXPECT_EQ(escape_for_terminal("x\xff" "y"), "x\\xffy");
  EXPECT_EQ(escape_for_terminal("\x1b[31m"), "\\x1b[31m");
  EXPECT_EQ(escape_for_terminal("caf\xc3\xa9"), "caf\xc3\xa9");
}

// The text sink's line for a failed and for a denied operation names what happened.
std::string text_line(const Event& e) {
  char* buf = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&buf, &size);
  auto sink = make_text_sink(out, false);
  sink->write(e);
  sink->flush();
  fclose(out);
  std::string line(buf, size);
  free(buf);
  return line;
}

TEST(TextSink, NamesFailedAndDeniedOperations) {
  Event e;
  e.kind = EventKind::kDelete;
  e.path = "/srv/app/config";
  e.error = ENOENT;
  std::string failed = text_line(e);
  EXPECT_NE(failed.find("/srv/app/config  FAILED ENOENT (No such file or directory)"), std::string::npos) << failed;

  e.kind = EventKind::kChmod;
  e.error = EPERM;
  e.denied = true;
  std::string denied = text_line(e);
  EXPECT_NE(denied.find("DENIED by fstrail guard"), std::string::npos) << denied;
  EXPECT_EQ(denied.find("FAILED"), std::string::npos) << denied;
}

}  // namespace
}  // namespace fstrail
