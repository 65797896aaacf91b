#include "agent/router.h"

#include <algorithm>

#include "core/text.h"

namespace fstrail::agent {
namespace {

bool under(std::string_view path, std::string_view root) {
  if (root == "/") return !path.empty() && path.front() == '/';
  return path.size() >= root.size() && path.compare(0, root.size(), root) == 0 &&
         (path.size() == root.size() || path[root.size()] == '/');
}

}  // namespace

Routes routes_of(const AgentConfig& config) {
  Routes routes;
  for (const auto& w : config.watches) {
    FilterOptions options;
    options.kinds = w.kinds;
    options.exclude_globs = w.exclude;
    routes.watches.push_back({w.path, Filter(std::move(options))});
  }
  std::stable_sort(
      routes.watches.begin(), routes.watches.end(),
      [](const Routes::Watch& a, const Routes::Watch& b) { return a.root.size() > b.root.size(); });
  for (const auto& rule : config.guard.rules) routes.guarded.push_back(rule.path);
  return routes;
}

Router::Router(Routes routes, Sink& recorder, Sink* guard)
    : routes_(std::move(routes)), recorder_(recorder), guard_(guard) {}

const Routes::Watch* Router::watch_of(const std::string& path) const {
  for (const auto& w : routes_.watches)
    if (under(path, w.root)) return &w;
  return nullptr;
}

bool Router::guarded(const Event& event) const {
  for (const auto& root : routes_.guarded)
    if (under(event.path, root) || (event.old_path && under(*event.old_path, root))) return true;
  return false;
}

void Router::write(const Event& event) {
  if (event.kind == EventKind::kLost) {  // losses are always kept, wherever they happened
    ++counts_.stored_by_kind[static_cast<size_t>(event.kind)];
    recorder_.write(event);
    if (guard_) guard_->write(event);
    return;
  }
  const Routes::Watch* watch = watch_of(event.path);
  if (!watch && event.old_path) watch = watch_of(*event.old_path);  // moved out of a watched tree
  const bool in_guarded = guarded(event);
  if (!watch && !in_guarded) {
    ++counts_.outside;
    return;
  }
  // A guarded tree's history is kept whole: its events are stored even where a [[watch]]
  // over it would leave them out.
  if (in_guarded || watch->filter.accepts(event)) {
    ++counts_.stored_by_kind[static_cast<size_t>(event.kind)];
    recorder_.write(event);
  } else {
    ++counts_.excluded;
  }
  if (in_guarded && guard_) guard_->write(event);
}

void Router::flush() {
  recorder_.flush();
  if (guard_) guard_->flush();
}

}  // namespace fstrail::agent
