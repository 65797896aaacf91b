#include "backend/fanotify/mount_table.h"

#include <charconv>

namespace fstrail {

std::string unescape_mountinfo(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    auto octal = [&](size_t at) { return at < field.size() && field[at] >= '0' && field[at] <= '7'; };
    if (field[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

// "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw": the mount id,
// the mount point (5th field) and, after the optional fields and "-", the type.
std::vector<MountEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountEntry> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    std::vector<std::string_view> fields;
    for (size_t at = 0; at < line.size();) {
      size_t sp = line.find(' ', at);
      if (sp == std::string_view::npos) sp = line.size();
      if (sp > at) fields.push_back(line.substr(at, sp - at));
      at = sp + 1;
    }
    if (fields.size() < 8) continue;
    MountEntry e;
    auto [end, ec] = std::from_chars(fields[0].data(), fields[0].data() + fields[0].size(), e.id);
    if (ec != std::errc() || end != fields[0].data() + fields[0].size()) continue;
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (dash + 1 >= fields.size()) continue;
    e.mount_point = unescape_mountinfo(fields[4]);
    e.fs_type = std::string(fields[dash + 1]);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace fstrail
