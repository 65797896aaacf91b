// `fstrail fsmonitor` (git's core.fsmonitor hook) and `fstrail watchd` (the watcher behind it).
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "fsmonitor/client.h"
#include "fsmonitor/watchd.h"

namespace fstrail::cli {

RunFn add_fsmonitor_command(CLI::App& app) {
  struct Args {
    std::string version, token;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("fsmonitor", "git's core.fsmonitor hook: tells git which files changed");
  sub->add_option("VERSION", args->version, "Hook protocol version (git passes 2)")->required();
  sub->add_option("TOKEN", args->token, "What this hook answered last time (git passes it)")->required();
  sub->footer(
      "Set it up once per repository:\n"
      "  git config core.fsmonitor 'fstrail fsmonitor'\n"
      "  git config core.untrackedCache true      # lets git skip unchanged directories too\n"
      "git then runs `fstrail fsmonitor 2 TOKEN` in the worktree before it looks at files, and\n"
      "only checks what the hook names. The first call starts a watcher for your user\n"
      "(`fstrail watchd`, no root needed) and answers \"everything may have changed\"; from\n"
      "then on git gets the paths changed since its previous call. When the watcher cannot be\n"
      "sure (restarted, events lost) it says so and git checks everything: never a stale answer.\n"
      "Faster: `fstrail-fsmonitor` (installed beside fstrail) is the same hook without the\n"
      "libraries fstrail loads at start (databases, BPF): git config core.fsmonitor fstrail-fsmonitor\n"
      "Turn it off: git config --unset core.fsmonitor; stop the watcher: fstrail watchd --stop");
  return [args] { return fsmonitor::run_fsmonitor_hook(args->version, args->token, stdout); };
}

RunFn add_watchd_command(CLI::App& app) {
  struct Args {
    fsmonitor::WatchdOptions options;
    bool stop = false;
  };
  auto args = std::make_shared<Args>();
  if (const char* idle = std::getenv("FSTRAIL_WATCHD_IDLE_TIMEOUT"))
    args->options.idle_timeout_s = std::atoi(idle);
  CLI::App* sub =
      app.add_subcommand("watchd", "The per-user watcher behind `fstrail fsmonitor` (started on demand)");
  sub->add_flag("--stop", args->stop, "Stop your running watcher");
  sub->add_option("--idle-timeout", args->options.idle_timeout_s,
                  "Forget a worktree git has not asked about for SEC seconds, and exit when none is left "
                  "(0: never; default from FSTRAIL_WATCHD_IDLE_TIMEOUT, else 3600)")
      ->type_name("SEC")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--backend", args->options.backend,
                  "inotify, fanotify, or auto (fanotify as root, else inotify)")
      ->check(CLI::IsMember({"auto", "inotify", "fanotify"}));
  sub->footer(
      "You rarely run it yourself: `fstrail fsmonitor` starts it, detached, the first time git\n"
      "asks. It listens on $XDG_RUNTIME_DIR/fstrail/watchd.sock (or /tmp/fstrail-UID/ when\n"
      "XDG_RUNTIME_DIR is unset; the directory must be yours and mode 0700), logs to\n"
      "watchd.log there, and watches each worktree from the first time git asks about it.\n"
      "Examples:\n"
      "  fstrail watchd --stop                 # stop your watcher (the next git command restarts it)\n"
      "  fstrail watchd --idle-timeout 600     # run in the foreground, forget worktrees after 10 min");
  return [args] { return args->stop ? fsmonitor::stop_watchd() : fsmonitor::run_watchd(args->options); };
}

}  // namespace fstrail::cli
