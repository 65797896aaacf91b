#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/text.h"

namespace fstrail::cli {
namespace {

std::atomic<bool> g_stop{false};

void on_stop_signal(int) { g_stop.store(true); }

}  // namespace

void add_watch_options(CLI::App& app, WatchOptions& o) {
  app.add_option("PATH", o.paths, "Directory trees to watch (recursively, including directories created later)")
      ->required();
  app.add_option("--backend", o.backend,
                 "auto|bpf-lsm|bpf-fentry|bpf-tracepoint|fanotify|inotify (auto: the best that works "
                 "here; see `fstrail doctor`)")
      ->capture_default_str();
  app.add_option_function<std::string>(
      "--events",
      [&o](const std::string& v) {
        o.events = v;
        o.events_given = true;
      },
      "Only these kinds, comma-separated: create,mkdir,delete,rmdir,rename,modify,chmod,"
      "chown,truncate,link,symlink,xattr,open (open only when asked for)");
  app.add_option("--exclude", o.excludes,
                 "Skip paths matching GLOB (repeatable). Without '/': any path component (.git, "
                 "*.swp); with '/': the whole path")
      ->type_name("GLOB");
  app.add_option("--uid", o.user, "Only operations by this user (name or uid)")->type_name("UID|NAME");
  app.add_flag("--failed", o.failed, "Also report failed or denied operations, with their error (eBPF backends)");
}

Result<PreparedWatch> prepare_watch(const WatchOptions& o) {
  PreparedWatch p;
  for (const auto& path : o.paths) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
      return Error{fmt::format("cannot watch {}: {}{}", escape_for_terminal(path), std::strerror(errno),
                               errno == ENOENT ? " (create it first, or check the spelling)" : ""),
                   errno};
    }
    if (!S_ISDIR(st.st_mode))
      return Error{fmt::format("cannot watch {}: not a directory (watch the directory that contains it)",
                               escape_for_terminal(path))};
    char resolved[PATH_MAX];
    if (!::realpath(path.c_str(), resolved)) return Error::from_errno("cannot resolve " + escape_for_terminal(path));
    // The same directory named twice (dir, dir/, ./dir) is one root.
    if (std::find(p.spec.roots.begin(), p.spec.roots.end(), resolved) == p.spec.roots.end())
      p.spec.roots.emplace_back(resolved);
  }
  if (o.events_given) {
    auto kinds = parse_kinds(o.events);
    if (!kinds) return Error{"--events: " + kinds.error().message};
    p.filter.kinds = *kinds;
  }
  p.spec.kinds = p.filter.kinds;
  p.spec.report_failed = o.failed;
  p.filter.exclude_globs = o.excludes;
  if (!o.user.empty()) {
    auto uid = parse_user(o.user);
    if (!uid) return uid.error();
    p.filter.uid = *uid;
  }
  return p;
}

const std::atomic<bool>& install_stop_handlers() {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking wait returns EINTR and the loop sees the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return g_stop;
}

}  // namespace fstrail::cli
