// git's fsmonitor hook (protocol version 2) on top of `fstrail watchd`: the parts both
// sides share and unit tests reach directly: tokens, the per-worktree change log, how a
// watched path becomes what git expects, where the socket lives, and the wire format
// between the hook and the watcher.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/result.h"

namespace fstrail::fsmonitor {

// "fstrail:<instance>:<sequence>", both hexadecimal. The instance is random per watcher
// start, so a token from before a restart (or git's seed, a timestamp) is foreign.
struct Token {
  uint64_t instance = 0;
  uint64_t sequence = 0;
  bool operator==(const Token&) const = default;
};
std::string format_token(Token token);
std::optional<Token> parse_token(std::string_view text);

// The paths changed in one worktree, each with the sequence number of its last change.
// Tokens older than floor() cannot be answered (the watch began later, or events were
// lost): the answer is "/", everything may have changed.
class ChangeLog {
 public:
  explicit ChangeLog(uint64_t floor, size_t max_paths = 1u << 20) : floor_(floor), max_paths_(max_paths) {}
  void add(std::string path, uint64_t sequence);
  // Everything may have changed up to `sequence` (a loss): older tokens get "/".
  void lose_track(uint64_t sequence);
  // Paths changed after `since`, sorted; nullopt when `since` is older than floor().
  std::optional<std::vector<std::string>> changed_since(uint64_t since) const;
  uint64_t floor() const { return floor_; }
  size_t size() const { return last_change_.size(); }

 private:
  uint64_t floor_;
  size_t max_paths_;
  std::unordered_map<std::string, uint64_t> last_change_;
};

// What git is told for a changed absolute `path` under worktree `root`: relative, a
// directory ending in '/'. Nothing (nullopt) for the root itself, for paths outside it
// and for git's own directory (`.git/...`), which git never asks about.
std::optional<std::string> git_path(std::string_view root, std::string_view path, bool is_dir);

// The sync cookies the watcher creates to know it has seen every earlier event.
inline constexpr std::string_view kCookiePrefix = ".fstrail-cookie-";
// The cookie's name when `path` is one under `root` (in .git/ or, for a worktree whose
// .git is a file, the root itself).
std::optional<std::string> cookie_name(std::string_view root, std::string_view path);

// The caller's private directory for the socket: $XDG_RUNTIME_DIR/fstrail, else
// /tmp/fstrail-UID; created 0700 when missing, refused when it is not a directory
// (a symbolic link, say), not the caller's, or open to others.
Result<std::string> private_runtime_dir();
Status check_private_dir(const std::string& dir);

// hook -> watchd: "Q" root NUL token NUL, or "S" (stop). watchd -> hook: "0" then the
// hook's output (token NUL path NUL ...), or "E" and a message.
struct Request {
  char op = 0;  // 'Q' or 'S'
  std::string root, token;
};
std::string encode_request(const Request& request);
std::optional<Request> decode_request(std::string_view bytes);

// The hook's output: the token, NUL, then each path and NUL ("/" alone when unsure).
std::string hook_output(Token token, const std::optional<std::vector<std::string>>& paths);

}  // namespace fstrail::fsmonitor
