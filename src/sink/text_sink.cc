#include <pwd.h>
#include <string.h>

#include <unordered_map>

#include <fmt/format.h>

#include "core/clock.h"
#include "core/text.h"
#include "sink/sink.h"

namespace fstrail {
namespace {

std::string user_name(uint32_t uid) {
  static std::unordered_map<uint32_t, std::string> cache;
  auto it = cache.find(uid);
  if (it != cache.end()) return it->second;
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  std::string name = getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found ? pw.pw_name : "";
  return cache.emplace(uid, name).first->second;
}

// "EACCES (Permission denied)"; the number when the C library does not know it.
std::string error_name(int32_t error) {
  const char* name = strerrorname_np(error);
  if (!name) return fmt::format("errno {}", error);
  return fmt::format("{} ({})", name, strerrordesc_np(error));
}

const char* kind_color(EventKind kind) {
  switch (kind) {
    case EventKind::kCreate:
    case EventKind::kMkdir:
    case EventKind::kLink:
    case EventKind::kSymlink: return "\033[32m";
    case EventKind::kDelete:
    case EventKind::kRmdir: return "\033[31m";
    case EventKind::kChmod:
    case EventKind::kChown:
    case EventKind::kXattr: return "\033[35m";
    case EventKind::kLost: return "\033[1;31m";
    default: return "\033[33m";
  }
}

class TextSink final : public Sink {
 public:
  TextSink(FILE* out, bool color) : out_(out), color_(color) {}

  void write(const Event& e) override {
    std::string when = format_rfc3339(e.time_ns);
    when = when.substr(11, 12);  // HH:MM:SS.mmm (UTC)
    std::string who = "-";
    if (e.uid) {
      std::string name = user_name(*e.uid);
      who = name.empty() ? std::to_string(*e.uid) : fmt::format("{}({})", name, *e.uid);
      if (e.loginuid && *e.loginuid != *e.uid && *e.loginuid != 4294967295U) {
        std::string login = user_name(*e.loginuid);
        who += fmt::format(" by {}", login.empty() ? std::to_string(*e.loginuid) : login);
      }
    }
    std::string what = escape_for_terminal(e.path);
    if (e.old_path) what = escape_for_terminal(*e.old_path) + " -> " + what;
    if (e.kind == EventKind::kChmod && e.new_mode)
      what += fmt::format("  mode {:o}{}", *e.new_mode & 07777,
                          e.old_mode ? fmt::format(" (was {:o})", *e.old_mode & 07777) : "");
    if (e.kind == EventKind::kChown && (e.new_uid || e.new_gid))
      what += fmt::format("  owner {}:{}", e.new_uid ? std::to_string(*e.new_uid) : "-",
                          e.new_gid ? std::to_string(*e.new_gid) : "-");
    if (e.kind == EventKind::kLost)
      what += fmt::format("  {} events lost: {}", e.lost ? std::to_string(*e.lost) : "some",
                          loss_reason_name(e.lost_reason));
    if (e.denied)
      what += "  DENIED by fstrail guard";
    else if (e.error)
      what += fmt::format("  FAILED {}", error_name(*e.error));
    std::string proc = e.pid ? fmt::format("{} {}", *e.pid, e.comm ? escape_for_terminal(*e.comm) : "?") : "-";
    const char* c = color_ ? kind_color(e.kind) : "";
    const char* r = color_ ? "\033[0m" : "";
    fmt::print(out_, "{} {}{:<8}{} {:<16} {:<22} {}\n", when, c, kind_name(e.kind), r, who, proc, what);
  }

  void flush() override { fflush(out_); }

 private:
  FILE* out_;
  bool color_;
};

}  // namespace

std::unique_ptr<Sink> make_text_sink(FILE* out, bool color) { return std::make_unique<TextSink>(out, color); }

}  // namespace fstrail
