#include "store/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>

#include <fmt/format.h>

#include "core/clock.h"
#include "store/postgres/postgres_store.h"
#include "store/record.h"
#include "store/sqlite/sqlite_store.h"

namespace fstrail::store {

std::string_view intern_backend_name(std::string_view name) {
  static std::mutex mutex;
  static std::set<std::string, std::less<>> names;
  std::lock_guard lock(mutex);
  auto it = names.find(name);
  if (it == names.end()) it = names.emplace(name).first;
  return *it;
}

namespace {

// RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
constexpr const char* kSchemeChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.";

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool is_postgres_url(std::string_view url) {
  return starts_with(url, "postgresql://") || starts_with(url, "postgres://") ||
         url.find('=') != std::string_view::npos;
}

}  // namespace

// The password of a URL (user:PASS@) or of a keyword string (password=PASS).
std::string find_password(std::string_view url) {
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://")) {
    size_t scheme_end = url.find("://") + 3;
    size_t at = url.find('@', scheme_end);
    size_t colon = url.find(':', scheme_end);
    std::string pw;
    if (at != std::string_view::npos && colon != std::string_view::npos && colon < at)
      pw = std::string(url.substr(colon + 1, at - colon - 1));
    size_t q = url.find("password=");
    if (pw.empty() && q != std::string_view::npos) {
      size_t end = url.find('&', q);
      pw = std::string(url.substr(q + 9, end == std::string_view::npos ? std::string_view::npos : end - q - 9));
    }
    return pw;
  }
  size_t q = url.find("password");
  if (q == std::string_view::npos) return {};
  size_t eq = url.find('=', q);
  if (eq == std::string_view::npos) return {};
  size_t start = url.find_first_not_of(' ', eq + 1);
  if (start == std::string_view::npos) return {};
  if (url[start] == '\'') {
    size_t end = url.find('\'', start + 1);
    return std::string(url.substr(start + 1, end == std::string_view::npos ? std::string_view::npos : end - start - 1));
  }
  size_t end = url.find(' ', start);
  return std::string(url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
}

namespace {

std::string replace_all(std::string_view text, std::string_view needle, std::string_view with) {
  std::string out;
  if (needle.empty()) return std::string(text);
  size_t pos = 0;
  for (size_t hit; (hit = text.find(needle, pos)) != std::string_view::npos; pos = hit + needle.size()) {
    out.append(text.substr(pos, hit - pos));
    out.append(with);
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace

std::optional<InsertError> EventStore::insert(std::span<const StoredEvent> batch) {
  RecordBatch records;
  for (const auto& row : batch) records.add(row.event, row.host, row.event_id);
  auto views = records.views();
  return insert_records(views);
}

std::string redact_url(std::string_view url) { return redact_message(url, url); }

std::string redact_message(std::string_view message, std::string_view url) {
  return replace_all(message, find_password(url), "***");
}

Result<std::optional<std::string>> sqlite_file(const std::string& url) {
  if (is_postgres_url(url)) return std::optional<std::string>();
  std::string path = url;
  if (starts_with(url, "sqlite://")) {
    path = url.substr(9);
  } else if (size_t end = url.find("://"); end != std::string::npos && end == url.find_first_not_of(kSchemeChars)) {
    return Error{fmt::format(
        "unknown database scheme '{}://': use sqlite:///path/file.db, postgresql://[user@]host/dbname "
        "(or a libpq 'key=value' string), or a plain file path for SQLite",
        url.substr(0, end))};
  }
  if (path.empty()) return Error{"empty SQLite path: use --db sqlite:///path/file.db"};
  return std::optional<std::string>(std::move(path));
}

Result<std::unique_ptr<EventStore>> open_store(const std::string& url, bool allow_offline) {
  auto file = sqlite_file(url);
  if (!file) return file.error();
  if (!*file) return open_postgres_store(url, allow_offline);
  return open_sqlite_store(**file);
}

std::string default_state_dir() {
  if (geteuid() == 0) return "/var/lib/fstrail";
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg && *xdg == '/') return std::string(xdg) + "/fstrail";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/fstrail";
}

std::string default_db_url() { return "sqlite://" + default_state_dir() + "/events.db"; }

namespace {
// Persist the high-water mark once a minute of ids.
constexpr int64_t kReservationUnits = 60'000'000'000 >> EventIdAllocator::kSlotBits;

int64_t read_mark(int fd, off_t offset) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, offset);
  int64_t mark = 0;
  if (n > 0) std::from_chars(buf, buf + n, mark);
  return mark;
}
}  // namespace

EventIdAllocator::EventIdAllocator(std::string state_file) : state_file_(std::move(state_file)) {
  if (state_file_.empty()) return;
  int fd = ::open(state_file_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  last_units_ = read_mark(fd, 0) >> kSlotBits;
  ::close(fd);
}

EventIdAllocator::~EventIdAllocator() {
  if (slot_fd_ >= 0) ::close(slot_fd_);
}

Result<std::unique_ptr<EventIdAllocator>> EventIdAllocator::open(std::string state_file, const std::string& slot_file) {
  auto ids = std::make_unique<EventIdAllocator>(std::move(state_file));
  int fd = ::open(slot_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Error::from_errno("cannot open the event-id slot file " + slot_file);
  for (int slot = 0; slot < kSlots; ++slot) {
    struct flock lock{};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = slot * 24;
    lock.l_len = 24;
    if (::fcntl(fd, F_OFD_SETLK, &lock) == 0) {
      ids->slot_fd_ = fd;
      ids->slot_ = slot;
      ids->last_units_ = std::max(ids->last_units_, read_mark(fd, slot * 24) >> kSlotBits);
      return ids;
    }
    if (errno != EAGAIN && errno != EACCES) {
      int err = errno;
      ::close(fd);
      return Error{fmt::format("cannot lock the event-id slot file {}: {}", slot_file, std::strerror(err)), err};
    }
  }
  ::close(fd);
  return Error{fmt::format("{} fstrail processes already write this database from this host (slot file {})", kSlots,
                           slot_file),
               EBUSY};
}

int64_t EventIdAllocator::next() {
  std::lock_guard lock(mutex_);
  int64_t units = std::max(realtime_now_ns() >> kSlotBits, last_units_ + 1);
  last_units_ = units;
  if ((!state_file_.empty() || slot_fd_ >= 0) && units >= reserved_until_units_) {
    reserved_until_units_ = units + kReservationUnits;
    persist_locked();
  }
  return (units << kSlotBits) | slot_;
}

void EventIdAllocator::persist() {
  std::lock_guard lock(mutex_);
  persist_locked();
}

void EventIdAllocator::persist_locked() {
  // A mark above every id handed out (ids are units << kSlotBits | slot).
  int64_t mark = (std::max(reserved_until_units_, last_units_) + 1) << kSlotBits;
  if (slot_fd_ >= 0) {
    // The slot's record: the mark as 22 decimal digits and a newline, in its 24 bytes.
    std::string text = fmt::format("{:022}\n", mark);
    if (::pwrite(slot_fd_, text.data(), text.size(), slot_ * 24) == static_cast<ssize_t>(text.size()))
      ::fdatasync(slot_fd_);
  }
  if (state_file_.empty()) return;
  std::string tmp = state_file_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  std::string text = fmt::format("{}\n", mark);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (ok) ::rename(tmp.c_str(), state_file_.c_str());
}

std::string local_host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

Result<int64_t> parse_duration(std::string_view text) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view unit(end, text.data() + text.size() - end);
  if (ec != std::errc() || value < 0 || end == text.data())
    return Error{fmt::format("bad duration '{}': use a number and a unit, e.g. 30m, 1h, 2d", text)};
  int64_t scale = 0;
  if (unit == "s") scale = 1;
  else if (unit == "m" || unit == "min") scale = 60;
  else if (unit == "h") scale = 3600;
  else if (unit == "d") scale = 86400;
  else if (unit == "w") scale = 7 * 86400;
  else return Error{fmt::format("bad duration '{}': the unit must be s, m, h, d or w", text)};
  int64_t ns;
  if (__builtin_mul_overflow(value, scale * 1'000'000'000, &ns))
    return Error{fmt::format("bad duration '{}': longer than the 292 years a time can span", text)};
  return ns;
}

Result<int64_t> parse_time_arg(std::string_view text, int64_t now_ns) {
  if (text.find('-') == std::string_view::npos) {
    auto d = parse_duration(text);
    if (!d) return d.error();
    return now_ns - *d;
  }
  // RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  std::string s(text);
  struct tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) rest = strptime(s.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (!rest) {
    rest = strptime(s.c_str(), "%Y-%m-%d", &tm);
    if (!rest || *rest) return Error{fmt::format("bad time '{}': use RFC 3339 (2026-11-23T16:00:00Z) or a duration (1h)", text)};
  }
  int64_t frac_ns = 0;
  if (*rest == '.') {
    int64_t scale = 100'000'000;
    for (++rest; *rest >= '0' && *rest <= '9'; ++rest, scale /= 10) frac_ns += (*rest - '0') * scale;
  }
  int64_t offset_s = 0;
  if (*rest == '+' || *rest == '-') {
    int sign = *rest == '-' ? -1 : 1;
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (!digit(rest[1]) || !digit(rest[2]) || rest[3] != ':' || !digit(rest[4]) || !digit(rest[5]))
      return Error{fmt::format("bad time '{}': the offset must be +HH:MM", text)};
    int hh = (rest[1] - '0') * 10 + (rest[2] - '0'), mm = (rest[4] - '0') * 10 + (rest[5] - '0');
    offset_s = sign * (hh * 3600 + mm * 60);
    rest += 6;
  } else if (*rest == 'Z' || *rest == 'z') {
    ++rest;
  }
  if (*rest) return Error{fmt::format("bad time '{}': unexpected '{}'", text, rest)};
  int64_t seconds = timegm(&tm) - offset_s;
  int64_t ns;
  if (__builtin_mul_overflow(seconds, int64_t{1'000'000'000}, &ns) || __builtin_add_overflow(ns, frac_ns, &ns))
    return Error{fmt::format("bad time '{}': outside the years 1678 to 2262 that nanoseconds can hold", text)};
  return ns;
}

}  // namespace fstrail::store
