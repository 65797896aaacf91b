#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "pipeline/pipeline.h"

namespace fstrail::cli {
namespace {

struct WatchCommand {
  WatchOptions watch;
  bool json = false;
  std::string output;

  int run() {
    auto prepared = prepare_watch(watch);
    if (!prepared) {
      fmt::print(stderr, "fstrail: {}\n", prepared.error().message);
      return kExitUsage;
    }
    FILE* out = stdout;
    if (!output.empty()) {
      out = std::fopen(output.c_str(), "w");
      if (!out) {
        fmt::print(stderr, "fstrail: cannot write {}: {}\n", output, std::strerror(errno));
        return kExitUsage;
      }
    }
    static char buffer[1 << 16];
    setvbuf(out, buffer, _IOFBF, sizeof buffer);
    const auto& stop = install_stop_handlers();

    auto selection = start_backend(watch.backend, prepared->spec);
    if (!selection) {
      fmt::print(stderr, "fstrail: {}\n", selection.error().message);
      return kExitUsage;
    }
    Backend& backend = *selection->backend;
    if (prepared->filter.uid && backend.name() == "inotify") {
      fmt::print(stderr, "fstrail: --uid needs attribution, which the inotify backend cannot give "
                         "(run as root for fanotify or an eBPF backend)\n");
      return kExitUsage;
    }
    harden::SandboxRequest request;
    request.command = "watch";
    request.backend = backend.name();
    if (!enter_sandbox(watch.sandbox, request)) return kExitFailure;
    std::vector<std::unique_ptr<Sink>> sinks;
    if (json)
      sinks.push_back(std::make_unique<JsonLinesSink>(out));
    else
      sinks.push_back(make_text_sink(out, output.empty() && isatty(fileno(out))));
    Pipeline pipeline(Filter(prepared->filter), std::move(sinks));

    if (watch.backend == "auto") fmt::print(stderr, "fstrail: {}\n", selection->why);
    fmt::print(stderr, "fstrail: watching {} path(s) with {}\n", prepared->spec.roots.size(), backend.name());
    Status s = run_until_stopped(backend, pipeline, stop);
    print_summary(stderr, pipeline.counts(), backend.stats());
    if (out != stdout) std::fclose(out);
    if (!s) {
      fmt::print(stderr, "fstrail: {}\n", s.error().message);
      return kExitFailure;
    }
    return kExitOk;
  }
};

}  // namespace

RunFn add_watch_command(CLI::App& app) {
  auto cmd = std::make_shared<WatchCommand>();
  CLI::App* sub = app.add_subcommand("watch", "Print every file change under PATH..., attributed to process and user");
  add_watch_options(*sub, cmd->watch);
  sub->add_flag("--json", cmd->json, "One JSON object per line (fields: docs/events.md)");
  sub->add_option("-o,--output", cmd->output, "Write events to FILE instead of stdout")->type_name("FILE");
  sub->footer(
      "Examples:\n"
      "  sudo fstrail watch /srv/app                 # readable lines: time, kind, user, pid comm, path\n"
      "  sudo fstrail watch --json /etc /srv | jq .  # JSON lines\n"
      "  fstrail watch --events create,delete ~/src  # unprivileged: inotify, no attribution\n"
      "Stop with Ctrl-C: a summary of events per kind and events lost goes to stderr.");
  return [cmd] { return cmd->run(); };
}

}  // namespace fstrail::cli
