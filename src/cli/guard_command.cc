#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "cli/commands.h"
#include "guard/config.h"
#include "guard/engine.h"
#include "pipeline/pipeline.h"
#include "store/recorder.h"

namespace fstrail::cli {
namespace {

struct GuardCommand {
  std::string config_file = guard::kDefaultConfigPath;
  std::string backend = "auto";
  std::string tracepoint_mode = "auto";
  bool json = false;
  bool dry_run = false;
  bool check_config = false;
  std::string db;  // when given, every file event under the trees is stored there too
  std::string spool_dir;
  std::string spool_max = "1G";
  int remediate_rate = guard::Remediator::kDefaultRate;
  std::string sandbox = "on";

  harden::SandboxRequest sandbox_request(const guard::GuardConfig& config, std::string_view backend_name) const {
    harden::SandboxRequest request;
    request.command = "guard";
    request.backend = backend_name;
    request.scans_trees = true;
    for (const auto& rule : config.rules) request.remediates |= rule.remediate && !dry_run;
    if (!db.empty()) request.write_dirs = store_dirs(db, spool_dir);
    return request;
  }

  int run() {
    auto config = guard::load_config(config_file);
    if (!config) {
      fmt::print(stderr, "fstrail: {}\n", config.error().message);
      return kExitUsage;
    }
    if (Status paths = guard::check_paths(*config); !paths) {
      fmt::print(stderr, "fstrail: {}\n", paths.error().message);
      return kExitUsage;
    }
    if (check_config) {
      fmt::print("{}: {} guard(s), ok\n", config->file, config->rules.size());
      return kExitOk;
    }
    const guard::GuardRule* enforcing = nullptr;
    for (const auto& rule : config->rules)
      if (rule.enforce && !enforcing) enforcing = &rule;
    if (enforcing) {
      // Only BPF LSM hooks can refuse an operation before it happens.
      std::string why;
      if (backend != "auto" && backend != "bpf-lsm") {
        why = fmt::format("--backend {} cannot deny operations", backend);
      } else if (const BackendInfo* lsm = find_backend("bpf-lsm"); !lsm) {
        why = "this build has no bpf-lsm backend";
      } else if (Availability a = lsm->probe(); !a.usable) {
        why = fmt::format("bpf-lsm cannot run here: {}", a.detail);
      }
      if (!why.empty()) {
        fmt::print(stderr,
                   "fstrail: {}:{}: guard '{}' sets enforce = true, which needs the bpf-lsm backend; {} "
                   "(run `fstrail doctor`; or set enforce = false: alerts and remediation work on every backend)\n",
                   config->file, enforcing->line, enforcing->name, why);
        return kExitUsage;
      }
      backend = "bpf-lsm";
    }

    WatchSpec spec;
    FilterOptions filter;
    // Alone, guard needs only the kinds that can break a rule; with a store it records the
    // whole history of the trees (the engine still checks only those kinds).
    if (db.empty()) filter.kinds = *parse_kinds("create,mkdir,chmod,chown,rename,link,symlink");
    spec.kinds = filter.kinds;
    spec.tracepoint_mode = tracepoint_mode;
    for (const auto& rule : config->rules) spec.roots.push_back(rule.path);
    if (enforcing)
      for (const auto& rule : config->rules) spec.guarded_trees.push_back(guard::guarded_tree_of(rule));

    const auto& stop = install_stop_handlers();
    guard::Policy policy(config->rules);
    auto output = guard::make_alert_output(stdout, json);
    guard::Remediator remediator(dry_run, remediate_rate);
    auto max_bytes = parse_size(spool_max);
    if (!max_bytes) {
      fmt::print(stderr, "fstrail: --spool-max: {}\n", max_bytes.error().message);
      return kExitUsage;
    }
    if (!db.empty() && spool_dir.empty()) spool_dir = store::default_state_dir() + "/guard-spool";

    // Watches first, then the scan: nothing that changes during the scan is missed.
    auto selection = start_backend(backend, spec);
    if (!selection) {
      fmt::print(stderr, "fstrail: {}\n", selection.error().message);
      return kExitUsage;
    }
    // Before the recorder starts its writer threads: they inherit the lowered capabilities.
    if (!enter_sandbox(sandbox, sandbox_request(*config, selection->backend->name()))) return kExitFailure;
    std::unique_ptr<store::Recorder> recorder;
    if (!db.empty()) {
      auto started = store::start_recorder(db, spool_dir, *max_bytes, {});
      if (!started) {
        fmt::print(stderr, "fstrail: {}\n", started.error().message);
        return kExitUsage;
      }
      recorder = std::move(*started);
    }
    std::vector<Sink*> event_sinks;
    if (recorder) event_sinks.push_back(recorder.get());
    auto engine_owner = std::make_unique<guard::GuardEngine>(policy, *output, &remediator, event_sinks);
    guard::GuardEngine& engine = *engine_owner;
    uint64_t existing = engine.scan_existing();
    fmt::print(stderr, "fstrail: guarding {} tree(s) with {}{}; {} existing violation(s){}\n", config->rules.size(),
               selection->backend->name(), enforcing ? " (enforcing: violating operations are denied)" : "",
               existing, dry_run ? " (dry run: nothing is changed)" : "");
    if (recorder)
      fmt::print(stderr, "fstrail: recording the trees' events into {} (spool {})\n", store::redact_url(db),
                 spool_dir);

    std::vector<std::unique_ptr<Sink>> sinks;
    sinks.push_back(std::move(engine_owner));
    Pipeline pipeline(Filter(filter), std::move(sinks));
    Status s = run_until_stopped(*selection->backend, pipeline, stop);
    engine.finish();
    const auto& c = engine.counts();
    std::string reasons;
    for (const auto& [reason, n] : c.not_fixed_reasons)
      reasons += fmt::format("{}{}: {}", reasons.empty() ? " (" : ", ", reason, n);
    if (!reasons.empty()) reasons += ")";
    fmt::print(stderr,
               "fstrail: {} violation(s), {} alert(s), {} summary alert(s), {} fixed, {} not fixed, {} remediation "
               "failure(s){}, {} gone or right again before their turn, {} denied\n",
               c.violations, c.alerts, c.summaries, c.fixed, c.not_fixed, c.remediation_failures, reasons, c.moot,
               c.denied);
    for (const auto& line : c.not_fixed_first) fmt::print(stderr, "fstrail: not fixed: {}\n", line);
    if (uint64_t listed = c.not_fixed_first.size(); c.not_fixed + c.remediation_failures > listed)
      fmt::print(stderr, "fstrail: ... and {} more not fixed (counted above)\n",
                 c.not_fixed + c.remediation_failures - listed);
    if (recorder) {
      recorder->close();
      store::print_recorder_summary(stderr, recorder->stats());
    }
    if (!s) {
      fmt::print(stderr, "fstrail: {}\n", s.error().message);
      return kExitFailure;
    }
    return kExitOk;
  }
};

}  // namespace

RunFn add_guard_command(CLI::App& app) {
  auto cmd = std::make_shared<GuardCommand>();
  CLI::App* sub = app.add_subcommand(
      "guard", "Keep directory trees owned by their service user: alert on (and optionally undo) violations");
  sub->add_option("--config", cmd->config_file, "TOML file with [[guard]] blocks")->capture_default_str();
  sub->add_option("--backend", cmd->backend, "Event source, as for `watch`")->capture_default_str();
  sub->add_option("--tracepoint-mode", cmd->tracepoint_mode,
                  "auto|kernel|strings: bpf-tracepoint's mode, as for `watch`")
      ->check(CLI::IsMember({"auto", "kernel", "strings"}))
      ->capture_default_str();
  sub->add_flag("--json", cmd->json, "One JSON object per alert");
  sub->add_flag("--dry-run", cmd->dry_run, "Show what remediation would do, change nothing");
  sub->add_option("--remediate-rate", cmd->remediate_rate,
                  "With remediate = true: at most this many fixes a second; a longer burst waits in a queue and "
                  "is worked off at this rate, each object checked again when its turn comes")
      ->type_name("N")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  sub->add_flag("--check-config", cmd->check_config, "Validate the configuration and exit");
  add_sandbox_option(*sub, cmd->sandbox);
  add_db_password_file_option(*sub);
  sub->add_option("--db", cmd->db,
                  "Also store every file event under the guarded trees, as `fstrail record` does (same URL "
                  "forms; e.g. " + store::default_db_url() + "), so `fstrail query` finds the per-file records "
                  "behind an alert. Alerts themselves go to stdout only")
      ->type_name("URL");
  sub->add_option("--spool", cmd->spool_dir,
                  "With --db: where events wait while the database is unavailable (default: " +
                      store::default_state_dir() + "/guard-spool; one per process)")
      ->type_name("DIR");
  sub->add_option("--spool-max", cmd->spool_max, "With --db: spool size limit")->type_name("SIZE")->capture_default_str();
  sub->footer(
      "Configuration (/etc/fstrail/fstrail.toml):\n"
      "  [[guard]]\n"
      "  name = \"app\"\n"
      "  path = \"/srv/app\"          # the whole subtree; nested guards: the innermost wins\n"
      "  owner = \"svc\"              # user name or uid\n"
      "  group = \"svc\"              # group name or gid (default: the owner's primary group)\n"
      "  mode_max = \"0750\"          # permission bits beyond these are a violation (dirs: +x where r)\n"
      "  remediate = false          # chown/chmod back (never through a symlink, never a file with\n"
      "                             # several hard links; at most --remediate-rate a second, the rest queued)\n"
      "  exempt_users = [\"svc\"]     # actors never alerted on nor denied (real uid or login uid; at most 8)\n"
      "  enforce = false            # bpf-lsm only: deny violating operations with EPERM (alert \"denied\")\n"
      "A path must be a real directory: \"/\" and paths through a symbolic link are refused.\n"
      "At start every guarded tree is scanned and existing violations are reported.");
  return [cmd] { return cmd->run(); };
}

}  // namespace fstrail::cli
