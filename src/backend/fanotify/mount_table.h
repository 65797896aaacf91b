// The mount table of fstrail's mount namespace (/proc/self/mountinfo), parsed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fstrail {

struct MountEntry {
  int id = 0;
  std::string mount_point;  // absolute, unescaped
  std::string fs_type;
};

// One entry per well-formed line; malformed lines are skipped.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

// "a\040b" -> "a b": mountinfo escapes space, tab, newline and backslash as octal.
std::string unescape_mountinfo(std::string_view field);

}  // namespace fstrail
