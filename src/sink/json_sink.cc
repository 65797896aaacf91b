#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <type_traits>

#include "core/clock.h"
#include "core/text.h"
#include "sink/sink.h"

// A direct writer rather than nlohmann::ordered_json: building a JSON object per event
// was ~40% of fstrail's CPU under a burst. The output is byte-for-byte what
// ordered_json::dump(-1, ' ', false, error_handler_t::replace) printed (tests/unit/json_test.cc
// compares the two over many events).
namespace fstrail {
namespace {

void append_number(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}
void append_number(std::string& out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

// Length of the valid UTF-8 sequence at s[i], or -(length of its maximal invalid
// prefix, at least 1): each such prefix becomes one U+FFFD, as nlohmann's replace does.
int utf8_sequence(std::string_view s, size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  int need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 2;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 3;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -k;
    auto c = static_cast<unsigned char>(s[i + k]);
    if (c < lo || c > hi) return -k;
    lo = 0x80, hi = 0xBF;
  }
  return need + 1;
}

void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0x20 && b < 0x80 && b != '"' && b != '\\') {
      size_t run = i + 1;
      while (run < s.size()) {
        auto c = static_cast<unsigned char>(s[run]);
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
        ++run;
      }
      out.append(s.data() + i, run - i);
      i = run;
      continue;
    }
    if (b < 0x80) {
      switch (b) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          out += "\\u00";
          out += kHex[b >> 4];
          out += kHex[b & 0xF];
      }
      ++i;
      continue;
    }
    int n = utf8_sequence(s, i);
    if (n > 0) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += -n;
    }
  }
  out += '"';
}

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) { out_ += '{'; }
  void key(std::string_view k) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += '"';
    out_ += k;  // keys are ASCII identifiers: nothing to escape
    out_ += "\":";
  }
  void string(std::string_view k, std::string_view v) { key(k), append_string(out_, v); }
  void null(std::string_view k) { key(k), out_ += "null"; }
  template <typename T>
  void field(std::string_view k, const std::optional<T>& v) {
    key(k);
    if (!v) {
      out_ += "null";
    } else if constexpr (std::is_same_v<T, bool>) {
      out_ += *v ? "true" : "false";
    } else if constexpr (std::is_same_v<T, std::string>) {
      append_string(out_, *v);
    } else if constexpr (std::is_signed_v<T>) {
      append_number(out_, static_cast<int64_t>(*v));
    } else {
      append_number(out_, static_cast<uint64_t>(*v));
    }
  }
  // Paths are bytes: invalid UTF-8 is replaced by U+FFFD in `k` and kept exactly, base64, in `k_b64`.
  void path(std::string_view k, const std::string* p) {
    if (!p) return null(k);
    string(k, *p);
    if (!is_valid_utf8(*p)) {
      key(std::string(k) + "_b64");
      append_string(out_, base64_encode(*p));
    }
  }
  void close() { out_ += '}'; }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace

void append_event_json(std::string& out, const Event& e) {
  thread_local Rfc3339Formatter time_format;
  Writer w(out);
  w.key("time");
  out += '"';
  time_format.append(out, e.time_ns);  // digits, '-', ':', '.', 'T', 'Z': nothing to escape
  out += '"';
  w.string("kind", kind_name(e.kind));
  w.path("path", &e.path);
  w.path("old_path", e.old_path ? &*e.old_path : nullptr);
  w.field("is_dir", e.is_dir);
  w.field("dev", e.dev);
  w.field("ino", e.ino);
  w.field("pid", e.pid);
  w.field("tid", e.tid);
  w.field("ppid", e.ppid);
  w.field("uid", e.uid);
  w.field("gid", e.gid);
  w.field("euid", e.euid);
  w.field("egid", e.egid);
  w.field("loginuid", e.loginuid);
  w.field("sessionid", e.sessionid);
  w.field("comm", e.comm);
  w.field("exe", e.exe);
  w.field("cgroup", e.cgroup);
  w.string("backend", e.backend);
  w.string("actor_source", actor_source_name(e.actor_source));
  if (e.kind == EventKind::kChmod) {
    w.field("old_mode", e.old_mode);
    w.field("new_mode", e.new_mode);
  }
  if (e.kind == EventKind::kChown) {
    w.field("old_uid", e.old_uid);
    w.field("new_uid", e.new_uid);
    w.field("old_gid", e.old_gid);
    w.field("new_gid", e.new_gid);
  }
  if (e.error) w.field("error", e.error);
  if (e.denied) w.field("denied", std::optional<bool>(true));
  if (e.kind == EventKind::kLost) w.field("lost", e.lost);
  w.close();
}

std::string event_to_json(const Event& e) {
  std::string out;
  append_event_json(out, e);
  return out;
}

void JsonLinesSink::write(const Event& event) {
  append_event_json(pending_, event);
  pending_ += '\n';
  if (pending_.size() >= kMaxPending) flush();
}

// One write() per batch of events: what the stream buffer would have split into
// buffer-sized writes (and copied once more) goes out in one piece.
void JsonLinesSink::flush() {
  if (pending_.empty()) return;
  fflush(out_);  // anything written to the stream by other means goes first
  int fd = fileno(out_);
  size_t done = 0;
  while (done < pending_.size()) {
    ssize_t n = ::write(fd, pending_.data() + done, pending_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a closed pipe or a full disk: what cannot be written is dropped, as by fwrite
    done += static_cast<size_t>(n);
  }
  pending_.clear();  // keeps its capacity: no allocation per batch once grown
}

}  // namespace fstrail
