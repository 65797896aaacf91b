#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>

#include "core/clock.h"
#include "core/text.h"
#include "sink/sink.h"

// A direct writer rather than nlohmann::ordered_json: building a JSON object per event
// was ~40% of fstrail's CPU under a burst. The output is byte-for-byte what
// ordered_json::dump(-1, ' ', false, error_handler_t::replace) printed (tests/unit/json_test.cc
// compares the two over many events). An event is written with plain stores into room
// reserved once for its worst case (event_json_bound): no capacity check per piece, keys
// and the punctuation around them as constants, strings copied 8 bytes at a time while
// they need no escape, and a path's UTF-8 checked by the same pass that escapes it.
namespace fstrail {
namespace {

// Keys are ASCII identifiers and arrive with their quotes, colon and leading comma.
template <size_t N>
char* put(char* p, const char (&literal)[N]) {
  std::memcpy(p, literal, N - 1);
  return p + N - 1;
}
char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

constexpr size_t kMaxNumber = 20;  // digits of UINT64_MAX, or a sign and 19 digits
template <typename T>
char* put_number(char* p, T v) {
  return std::to_chars(p, p + kMaxNumber, v).ptr;
}

// Worst case of put_string for n bytes: quotes and \u00XX per byte (an invalid
// sequence of k bytes becomes one 3-byte U+FFFD).
constexpr size_t string_bound(size_t n) { return 2 + 6 * n; }
// Worst case of a path: the string, then ,"KEY_b64":"BASE64" (key at most 12 bytes).
constexpr size_t path_bound(size_t n) { return string_bound(n) + 20 + 4 * ((n + 2) / 3); }

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

// Whether any of the 8 bytes needs more than a copy: a control character, '"', '\\',
// or a byte of a multi-byte sequence.
inline bool needs_escape(uint64_t w) {
  constexpr uint64_t k01 = 0x0101010101010101ULL, k80 = 0x8080808080808080ULL;
  auto has_zero = [](uint64_t x) { return (x - k01) & ~x & k80; };
  uint64_t below_space = (w - k01 * 0x20) & ~w & k80;
  return ((w & k80) | below_space | has_zero(w ^ (k01 * '"')) | has_zero(w ^ (k01 * '\\'))) != 0;
}

inline bool plain(unsigned char b) { return b >= 0x20 && b < 0x80 && b != '"' && b != '\\'; }

// Writes s as a JSON string; `valid`, if given, is cleared when s is not valid UTF-8
// (some of it was replaced by U+FFFD).
char* put_string(char* p, std::string_view s, bool* valid = nullptr) {
  static constexpr char kHex[] = "0123456789abcdef";
  *p++ = '"';
  const char* in = s.data();
  size_t n = s.size(), i = 0;
  while (i < n) {
    // While 8 bytes at a time need no escape: copied as they are (string_bound leaves
    // room for 6 bytes per input byte, so 8 fit whenever 8 are left).
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, in + i, 8);
      if (needs_escape(w)) break;
      std::memcpy(p, &w, 8);
      p += 8, i += 8;
    }
    if (i >= n) break;
    auto b = static_cast<unsigned char>(in[i]);
    if (plain(b)) {
      *p++ = static_cast<char>(b);
      ++i;
      continue;
    }
    if (b < 0x80) {
      *p++ = '\\';
      switch (b) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
          p = put(p, "u00");
          *p++ = kHex[b >> 4];
          *p++ = kHex[b & 0xF];
      }
      ++i;
      continue;
    }
    int len = utf8_sequence(s, i);
    if (len > 0) {
      std::memcpy(p, in + i, static_cast<size_t>(len));
      p += len, i += static_cast<size_t>(len);
    } else {
      p = put(p, "\xEF\xBF\xBD");
      i += static_cast<size_t>(-len);
      if (valid) *valid = false;
    }
  }
  *p++ = '"';
  return p;
}

char* put_base64(char* p, std::string_view s) {
  std::string b64 = base64_encode(s);  // rare: paths that are not UTF-8
  *p++ = '"';
  p = put(p, b64);  // the base64 alphabet needs no escape
  *p++ = '"';
  return p;
}

// `key` is ,"KEY": ; `b64_key` is ,"KEY_b64": . Invalid UTF-8 is replaced by U+FFFD in
// KEY and kept exactly, base64, in KEY_b64.
template <size_t N, size_t M>
char* put_path(char* p, const char (&key)[N], const char (&b64_key)[M], const std::string* path) {
  p = put(p, key);
  if (!path) return put(p, "null");
  bool valid = true;
  p = put_string(p, *path, &valid);
  if (!valid) p = put_base64(put(p, b64_key), *path);
  return p;
}

template <size_t N, typename T>
char* put_field(char* p, const char (&key)[N], const std::optional<T>& v) {
  p = put(p, key);
  if (!v) return put(p, "null");
  if constexpr (std::is_same_v<T, bool>)
    return *v ? put(p, "true") : put(p, "false");
  else if constexpr (std::is_same_v<T, std::string>)
    return put_string(p, *v);
  else
    return put_number(p, *v);
}

size_t optional_size(const std::optional<std::string>& s) { return s ? s->size() : 0; }

// Room enough for any event: every key, number and literal at its longest (well under
// 1 KiB) plus each string at its worst.
size_t event_json_bound(const Event& e) {
  constexpr size_t kFixed = 1024;
  return kFixed + path_bound(e.path.size()) + path_bound(optional_size(e.old_path)) +
         string_bound(optional_size(e.comm)) + string_bound(optional_size(e.exe)) +
         string_bound(optional_size(e.cgroup)) + string_bound(e.backend.size()) + string_bound(kind_name(e.kind).size()) +
         string_bound(actor_source_name(e.actor_source).size()) + string_bound(loss_reason_name(e.lost_reason).size());
}

char* write_event_json(char* p, const Event& e) {
  thread_local Rfc3339Formatter time_format;
  p = put(p, "{\"time\":\"");
  p = time_format.write(p, e.time_ns);  // digits, '-', ':', '.', 'T', 'Z': nothing to escape
  p = put(p, "\",\"kind\":");
  p = put_string(p, kind_name(e.kind));
  p = put_path(p, ",\"path\":", ",\"path_b64\":", &e.path);
  p = put_path(p, ",\"old_path\":", ",\"old_path_b64\":", e.old_path ? &*e.old_path : nullptr);
  p = put_field(p, ",\"is_dir\":", e.is_dir);
  p = put_field(p, ",\"dev\":", e.dev);
  p = put_field(p, ",\"ino\":", e.ino);
  p = put_field(p, ",\"pid\":", e.pid);
  p = put_field(p, ",\"tid\":", e.tid);
  p = put_field(p, ",\"ppid\":", e.ppid);
  p = put_field(p, ",\"uid\":", e.uid);
  p = put_field(p, ",\"gid\":", e.gid);
  p = put_field(p, ",\"euid\":", e.euid);
  p = put_field(p, ",\"egid\":", e.egid);
  p = put_field(p, ",\"loginuid\":", e.loginuid);
  p = put_field(p, ",\"sessionid\":", e.sessionid);
  p = put_field(p, ",\"comm\":", e.comm);
  p = put_field(p, ",\"exe\":", e.exe);
  p = put_field(p, ",\"cgroup\":", e.cgroup);
  p = put(p, ",\"backend\":");
  p = put_string(p, e.backend);
  p = put(p, ",\"actor_source\":");
  p = put_string(p, actor_source_name(e.actor_source));
  if (e.kind == EventKind::kChmod) {
    p = put_field(p, ",\"old_mode\":", e.old_mode);
    p = put_field(p, ",\"new_mode\":", e.new_mode);
  }
  if (e.kind == EventKind::kChown) {
    p = put_field(p, ",\"old_uid\":", e.old_uid);
    p = put_field(p, ",\"new_uid\":", e.new_uid);
    p = put_field(p, ",\"old_gid\":", e.old_gid);
    p = put_field(p, ",\"new_gid\":", e.new_gid);
  }
  if (e.error) p = put_field(p, ",\"error\":", e.error);
  if (e.denied) p = put(p, ",\"denied\":true");
  if (e.kind == EventKind::kLost) {
    p = put_field(p, ",\"lost\":", e.lost);
    p = put(p, ",\"reason\":");
    p = put_string(p, loss_reason_name(e.lost_reason));
  }
  *p++ = '}';
  return p;
}

}  // namespace

void append_event_json(std::string& out, const Event& e) {
  size_t at = out.size();
  out.resize(at + event_json_bound(e));
  char* end = write_event_json(out.data() + at, e);
  out.resize(static_cast<size_t>(end - out.data()));
}

std::string event_to_json(const Event& e) {
  std::string out;
  append_event_json(out, e);
  return out;
}

void JsonLinesSink::write(const Event& event) {
  size_t bound = event_json_bound(event) + 1;
  if (pending_size_ + bound > pending_capacity_) {
    // Grows to hold this event (the first, or one past kMaxPending after a flush).
    size_t capacity = std::max(pending_size_ + bound, kMaxPending + 64 * 1024);
    auto grown = std::make_unique_for_overwrite<char[]>(capacity);
    if (pending_size_) std::memcpy(grown.get(), pending_.get(), pending_size_);
    pending_ = std::move(grown);
    pending_capacity_ = capacity;
  }
  char* end = write_event_json(pending_.get() + pending_size_, event);
  *end++ = '\n';
  pending_size_ = static_cast<size_t>(end - pending_.get());
  if (pending_size_ >= kMaxPending) flush();
}

// One write() per batch of events: what the stream buffer would have split into
// buffer-sized writes (and copied once more) goes out in one piece.
void JsonLinesSink::flush() {
  if (pending_size_ == 0) return;
  fflush(out_);  // anything written to the stream by other means goes first
  int fd = fileno(out_);
  size_t done = 0;
  while (done < pending_size_) {
    ssize_t n = ::write(fd, pending_.get() + done, pending_size_ - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a closed pipe or a full disk: what cannot be written is dropped, as by fwrite
    done += static_cast<size_t>(n);
  }
  pending_size_ = 0;  // the buffer stays: no allocation per batch
}

}  // namespace fstrail
