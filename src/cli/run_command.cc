#include <charconv>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "devtools/run_loop.h"
#include "devtools/runner.h"

namespace fstrail::cli {
namespace {

// COMMAND [ARG...]: what follows the first "--" after `run` (CLI11 would mix it with PATH...).
std::vector<std::string>& command_after_dashes() {
  static std::vector<std::string> command;
  return command;
}

// "50ms", "2s", "1.5s", "300" (ms) → ns.
Result<int64_t> parse_millis(const std::string& option, const std::string& text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view unit(end, text.data() + text.size() - end);
  double scale = unit == "ms" || unit.empty() ? 1e6 : unit == "s" ? 1e9 : unit == "m" ? 60e9 : 0;
  if (ec != std::errc() || end == text.data() || value < 0 || scale == 0 || value * scale > 86400e9)
    return Error{fmt::format("{}: bad duration '{}': use e.g. 50ms, 2s, 1.5s (at most a day)", option, text)};
  return static_cast<int64_t>(value * scale);
}

struct RunCommand {
  WatchOptions watch;
  std::string debounce = "50ms", settle_max = "2s", stop_timeout = "5s", on_busy = "queue", signal = "TERM";
  devtools::RunOptions run;

  int exec() {
    run.command = command_after_dashes();
    if (run.command.empty()) {
      fmt::print(stderr, "fstrail: run: no COMMAND: write it after `--`, e.g. fstrail run src -- make\n");
      return kExitUsage;
    }
    auto prepared = prepare_watch(watch);
    if (!prepared) {
      fmt::print(stderr, "fstrail: {}\n", prepared.error().message);
      return kExitUsage;
    }
    run.spec = prepared->spec;
    run.backend = watch.backend;
    auto debounce_ns = parse_millis("--debounce", debounce);
    auto settle_ns = parse_millis("--settle-max", settle_max);
    auto stop_ns = parse_millis("--stop-timeout", stop_timeout);
    auto sig = devtools::parse_signal(signal);
    for (const Error* e : {debounce_ns ? nullptr : &debounce_ns.error(), settle_ns ? nullptr : &settle_ns.error(),
                           stop_ns ? nullptr : &stop_ns.error(), sig ? nullptr : &sig.error()})
      if (e) {
        fmt::print(stderr, "fstrail: {}\n", e->message);
        return kExitUsage;
      }
    run.timing = {*debounce_ns, *settle_ns};
    run.stop_timeout_ms = static_cast<int>(*stop_ns / 1'000'000);
    run.signal = *sig;
    run.on_busy = on_busy == "restart"  ? devtools::OnBusy::kRestart
                  : on_busy == "signal" ? devtools::OnBusy::kSignal
                  : on_busy == "do-nothing" ? devtools::OnBusy::kDoNothing
                                            : devtools::OnBusy::kQueue;
    const auto& stop = install_stop_handlers();
    return devtools::run_on_changes(run, stop);
  }
};

constexpr const char* kRunHelp =
    "COMMAND runs at start, then after each burst of changes under PATH...: a burst ends when no\n"
    "change came for --debounce (a `git checkout` of 10 000 files is one run); while a file is still\n"
    "being written (opened for writing, not closed: inotify and fanotify can tell, the eBPF backends\n"
    "cannot) the run waits, at most --settle-max after the last change.\n"
    "\n"
    "Ignored, as git does: .gitignore files (nested), .git/info/exclude, core.excludesFile, and\n"
    "also `.ignore` files (they win over .gitignore) and --exclude; nothing in .git/ ever triggers.\n"
    "Outside a git repository .gitignore and .ignore files still apply.\n"
    "\n"
    "COMMAND gets, for each run:\n"
    "  FSTRAIL_EVENTS_FILE  a JSON file {\"rescan\":false,\"lost\":0,\"changes\":[EVENT...]}: one EVENT\n"
    "                       (docs/events.md: kind, path, and pid/uid/comm where the backend knows)\n"
    "                       per changed path. An editor's atomic save (temp file renamed over the\n"
    "                       target) is one `modify` of the target.\n"
    "  FSTRAIL_RESCAN       1 when changes may be missing (the first run, or events were lost:\n"
    "                       a kernel queue overflow...): look at everything. 0 otherwise.\n"
    "  stdin                with --paths-to-stdin, the changed paths, each ended by a NUL byte.\n"
    "COMMAND runs in its own process group; stopping it stops the whole group (SIGTERM, then\n"
    "SIGKILL after --stop-timeout). It gets no privileges fstrail does not already pass on; run\n"
    "as root, COMMAND runs as root.\n"
    "\n"
    "Examples:\n"
    "  fstrail run src -- make                              # rebuild on every change\n"
    "  fstrail run --on-busy restart . -- ./server --port 8080   # restart a server\n"
    "  fstrail run --postpone --paths-to-stdin src -- xargs -0 -r clang-format -i\n"
    "  fstrail run --exclude '*.log' --exclude 'tmp/' . -- npm test\n"
    "  sudo fstrail run --ignore-self . -- sh -c 'make && ./gen-docs'   # its own writes never re-trigger\n"
    "  fstrail run --once --postpone . -- true             # wait for one change, exit 0\n"
    "  fstrail run . -- sh -c 'jq -r \".changes[].path\" \"$FSTRAIL_EVENTS_FILE\"'\n"
    "Stop with Ctrl-C (COMMAND's group is stopped too). Exit status: 0, or with --once COMMAND's.";

}  // namespace

int split_run_command_line(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "run") != 0) return argc;
  for (int i = 2; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      command_after_dashes().assign(argv + i + 1, argv + argc);
      return i;
    }
  return argc;
}

RunFn add_run_command(CLI::App& app) {
  auto cmd = std::make_shared<RunCommand>();
  CLI::App* sub = app.add_subcommand("run", "Run a command after changes under PATH... (debounced, git ignore rules)");
  sub->add_option("PATH", cmd->watch.paths, "Directory trees to watch, recursively")->required();
  sub->add_option("--backend", cmd->watch.backend,
                  "auto|bpf-lsm|bpf-fentry|bpf-tracepoint|fanotify|inotify (auto: the best that works here; "
                  "an ordinary user gets inotify)")
      ->capture_default_str();
  sub->add_option("--exclude", cmd->run.excludes,
                  "Ignore what matches this gitignore pattern, relative to each PATH (repeatable): '*.log', "
                  "'build/', '/out', '!keep.log'")
      ->type_name("PATTERN");
  sub->add_option("--debounce", cmd->debounce, "Quiet time that ends a burst of changes (ms, s)")->capture_default_str();
  sub->add_option("--settle-max", cmd->settle_max, "Longest wait for a file still being written")->capture_default_str();
  sub->add_option("--on-busy", cmd->on_busy,
                  "Changes while COMMAND runs: queue (run again when it exits), restart (stop its process "
                  "group, run again), signal (send --signal to its group), do-nothing")
      ->check(CLI::IsMember({"queue", "restart", "signal", "do-nothing"}))
      ->capture_default_str();
  sub->add_option("--signal", cmd->signal, "The signal of --on-busy signal (TERM, HUP, USR1, 10...)")->capture_default_str();
  sub->add_option("--stop-timeout", cmd->stop_timeout, "After SIGTERM, how long before SIGKILL")->capture_default_str();
  sub->add_flag("--postpone", cmd->run.postpone, "Do not run COMMAND at start: wait for the first change");
  sub->add_flag("--ignore-self", cmd->run.ignore_self,
                "Changes made by COMMAND or anything it starts never trigger a run (needs a backend that knows "
                "the process: root's bpf-* or fanotify; inotify cannot)");
  sub->add_flag("--paths-to-stdin", cmd->run.paths_to_stdin, "COMMAND's stdin: the changed paths, NUL-separated");
  sub->add_flag("--clear", cmd->run.clear, "Clear the screen before each run");
  sub->add_flag("--once", cmd->run.once, "Run COMMAND once (with --postpone: after the first change) and exit with its status");
  sub->footer(kRunHelp);
  return [cmd] { return cmd->exec(); };
}

}  // namespace fstrail::cli
