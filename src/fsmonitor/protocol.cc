#include "fsmonitor/protocol.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace fstrail::fsmonitor {

std::string format_token(Token token) {
  return fmt::format("fstrail:{:x}:{:x}", token.instance, token.sequence);
}

namespace {

std::optional<uint64_t> parse_hex(std::string_view text) {
  if (text.empty() || text.size() > 16) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return std::nullopt;
    value = value << 4 | static_cast<uint64_t>(digit);
  }
  return value;
}

}  // namespace

std::optional<Token> parse_token(std::string_view text) {
  constexpr std::string_view kPrefix = "fstrail:";
  if (!text.starts_with(kPrefix)) return std::nullopt;
  text.remove_prefix(kPrefix.size());
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto instance = parse_hex(text.substr(0, colon));
  auto sequence = parse_hex(text.substr(colon + 1));
  if (!instance || !sequence) return std::nullopt;
  return Token{*instance, *sequence};
}

void ChangeLog::add(std::string path, uint64_t sequence) {
  if (last_change_.size() >= max_paths_ && !last_change_.contains(path)) {
    // Bounded memory: past the limit, the paths go and older tokens get "/".
    lose_track(sequence);
    return;
  }
  last_change_[std::move(path)] = sequence;
}

void ChangeLog::lose_track(uint64_t sequence) {
  floor_ = std::max(floor_, sequence);
  last_change_.clear();
}

std::optional<std::vector<std::string>> ChangeLog::changed_since(uint64_t since) const {
  if (since < floor_) return std::nullopt;
  std::vector<std::string> paths;
  for (const auto& [path, sequence] : last_change_)
    if (sequence > since) paths.push_back(path);
  std::sort(paths.begin(), paths.end());
  return paths;
}

std::optional<std::string> git_path(std::string_view root, std::string_view path, bool is_dir) {
  if (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  std::string_view prefix = root == "/" ? std::string_view{} : root;
  if (path.size() <= prefix.size() + 1 || !path.starts_with(prefix) || path[prefix.size()] != '/')
    return std::nullopt;
  std::string_view rel = path.substr(prefix.size() + 1);
  if (rel == ".git" || rel.starts_with(".git/")) return std::nullopt;
  std::string out(rel);
  if (is_dir) out += '/';
  return out;
}

std::optional<std::string> cookie_name(std::string_view root, std::string_view path) {
  if (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  std::string_view prefix = root == "/" ? std::string_view{} : root;
  if (!path.starts_with(prefix)) return std::nullopt;
  std::string_view rel = path.substr(prefix.size());
  if (rel.starts_with("/.git/")) rel.remove_prefix(5);
  if (!rel.starts_with('/') || rel.find('/', 1) != std::string_view::npos) return std::nullopt;
  rel.remove_prefix(1);
  if (!rel.starts_with(kCookiePrefix)) return std::nullopt;
  return std::string(rel);
}

Status check_private_dir(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return Error::from_errno("lstat " + dir);
  if (!S_ISDIR(st.st_mode))
    return Error{fmt::format(
        "{} is not a directory (a symbolic link?): refusing to put the watcher's socket there", dir)};
  if (st.st_uid != ::geteuid())
    return Error{fmt::format("{} belongs to uid {}, not to you (uid {}): refusing to use it", dir, st.st_uid,
                             ::geteuid())};
  if (st.st_mode & 077)
    return Error{fmt::format("{} is open to other users (mode {:04o}); make it private: chmod 700 {}", dir,
                             st.st_mode & 07777, dir)};
  return Ok{};
}

Result<std::string> private_runtime_dir() {
  const char* xdg = std::getenv("XDG_RUNTIME_DIR");
  std::string dir = xdg && *xdg ? std::string(xdg) + "/fstrail" : fmt::format("/tmp/fstrail-{}", ::geteuid());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Error::from_errno("mkdir " + dir);
  if (Status s = check_private_dir(dir); !s) return s.error();
  return dir;
}

std::string encode_request(const Request& request) {
  std::string out(1, request.op);
  if (request.op == 'Q') {
    out += request.root;
    out += '\0';
    out += request.token;
    out += '\0';
  }
  return out;
}

std::optional<Request> decode_request(std::string_view bytes) {
  if (bytes == "S") return Request{'S', {}, {}};
  if (bytes.size() < 3 || bytes[0] != 'Q' || bytes.back() != '\0') return std::nullopt;
  bytes.remove_prefix(1);
  bytes.remove_suffix(1);
  size_t nul = bytes.find('\0');
  if (nul == std::string_view::npos || nul == 0) return std::nullopt;
  std::string_view token = bytes.substr(nul + 1);
  if (token.find('\0') != std::string_view::npos) return std::nullopt;
  return Request{'Q', std::string(bytes.substr(0, nul)), std::string(token)};
}

std::string hook_output(Token token, const std::optional<std::vector<std::string>>& paths) {
  std::string out = format_token(token);
  out += '\0';
  if (!paths) {
    out += "/";
    out += '\0';
    return out;
  }
  for (const auto& path : *paths) {
    out += path;
    out += '\0';
  }
  return out;
}

}  // namespace fstrail::fsmonitor
