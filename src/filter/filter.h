// User-space filters: event kinds, excluded paths, the acting user.
#pragma once

#include <bitset>
#include <optional>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/result.h"

namespace fstrail {

using KindSet = std::bitset<kEventKindCount>;

// Every kind but `open`, which is reported only when asked for; `lost` always is.
KindSet default_kinds();
// "create,modify" -> that set (plus `lost`); an unknown name is an error naming the valid ones.
Result<KindSet> parse_kinds(const std::string& list);

struct FilterOptions {
  KindSet kinds = default_kinds();
  // A glob without '/' matches any one path component (".git", "*.swp");
  // with '/', the whole absolute path (fnmatch, '*' crosses '/').
  std::vector<std::string> exclude_globs;
  std::optional<uint32_t> uid;  // the acting real uid
};

class Filter {
 public:
  explicit Filter(FilterOptions options) : options_(std::move(options)) {}
  bool accepts(const Event& event) const;
  const FilterOptions& options() const { return options_; }

 private:
  bool excluded(const std::string& path) const;
  FilterOptions options_;
};

// "1000" or "alice" -> uid.
Result<uint32_t> parse_user(const std::string& text);

}  // namespace fstrail
