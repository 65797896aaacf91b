#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>

#include "cli/commands.h"
#include "pipeline/pipeline.h"
#include "store/recorder.h"

namespace fstrail::cli {

Result<uint64_t> parse_size(const std::string& text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string unit(end, text.data() + text.size());
  uint64_t scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "k" || unit == "K" || unit == "KiB") scale = 1ull << 10;
  else if (unit == "M" || unit == "MiB") scale = 1ull << 20;
  else if (unit == "G" || unit == "GiB") scale = 1ull << 30;
  else if (unit == "T" || unit == "TiB") scale = 1ull << 40;
  if (ec != std::errc() || end == text.data() || scale == 0)
    return Error{fmt::format("bad size '{}': use a number with K, M, G or T (e.g. 1G)", text)};
  return value * scale;
}

std::vector<std::string> store_dirs(const std::string& db, const std::string& spool_dir) {
  std::vector<std::string> dirs{spool_dir};
  if (auto file = store::sqlite_file(db); file && *file)
    dirs.push_back(std::filesystem::path(**file).parent_path().string().empty()
                       ? std::string(".")
                       : std::filesystem::path(**file).parent_path().string());
  return dirs;
}

namespace {

struct RecordCommand {
  WatchOptions watch;
  std::string db;
  std::string spool_dir;
  std::string spool_max = "1G";
  std::string retention;
  bool also_print = false;
  bool json = false;

  int run() {
    auto prepared = prepare_watch(watch);
    if (!prepared) {
      fmt::print(stderr, "fstrail: {}\n", prepared.error().message);
      return kExitUsage;
    }
    auto max_bytes = parse_size(spool_max);
    if (!max_bytes) {
      fmt::print(stderr, "fstrail: --spool-max: {}\n", max_bytes.error().message);
      return kExitUsage;
    }
    store::RecorderOptions options;
    if (!retention.empty()) {
      auto keep = store::parse_duration(retention);
      if (!keep) {
        fmt::print(stderr, "fstrail: --retention: {}\n", keep.error().message);
        return kExitUsage;
      }
      options.retention_ns = *keep;
    }
    if (db.empty()) db = store::default_db_url();
    if (spool_dir.empty()) spool_dir = store::default_state_dir() + "/spool";
    const auto& stop = install_stop_handlers();

    auto selection = start_backend(watch.backend, prepared->spec);
    if (!selection) {
      fmt::print(stderr, "fstrail: {}\n", selection.error().message);
      return kExitUsage;
    }
    Backend& backend = *selection->backend;
    // Before the recorder starts its writer threads: they inherit the lowered capabilities.
    harden::SandboxRequest request;
    request.command = "record";
    request.backend = backend.name();
    request.write_dirs = store_dirs(db, spool_dir);
    if (!enter_sandbox(watch.sandbox, request)) return kExitFailure;
    auto recorder = store::start_recorder(db, spool_dir, *max_bytes, options);
    if (!recorder) {
      fmt::print(stderr, "fstrail: {}\n", recorder.error().message);
      return kExitUsage;
    }
    store::Recorder* recorder_ptr = recorder->get();
    std::vector<std::unique_ptr<Sink>> sinks;
    sinks.push_back(std::move(*recorder));
    if (also_print) {
      if (json) sinks.push_back(std::make_unique<JsonLinesSink>(stdout));
      else sinks.push_back(make_text_sink(stdout, isatty(STDOUT_FILENO)));
    }
    Pipeline pipeline(Filter(prepared->filter), std::move(sinks));
    if (watch.backend == "auto") fmt::print(stderr, "fstrail: {}\n", selection->why);
    fmt::print(stderr, "fstrail: recording {} path(s) with {} into {} (spool {})\n", prepared->spec.roots.size(),
               backend.name(), store::redact_url(db), spool_dir);
    Status s = run_until_stopped(backend, pipeline, stop);
    recorder_ptr->close();
    print_summary(stderr, pipeline.counts(), backend.stats());
    store::print_recorder_summary(stderr, recorder_ptr->stats());
    if (!s) {
      fmt::print(stderr, "fstrail: {}\n", s.error().message);
      return kExitFailure;
    }
    return kExitOk;
  }
};

}  // namespace

RunFn add_record_command(CLI::App& app) {
  auto cmd = std::make_shared<RecordCommand>();
  CLI::App* sub = app.add_subcommand("record", "Record every file change under PATH... into SQLite or PostgreSQL");
  add_watch_options(*sub, cmd->watch);
  add_db_password_file_option(*sub);
  sub->add_option("--db", cmd->db,
                  "sqlite:///path/file.db or postgresql://user@host/db (any libpq connection string; the "
                  "password comes from PGPASSFILE, ~/.pgpass or PGPASSWORD). Default: " +
                      store::default_db_url())
      ->type_name("URL");
  sub->add_option("--spool", cmd->spool_dir,
                  "Where events wait while the database is unavailable (default: " + store::default_state_dir() +
                      "/spool)")
      ->type_name("DIR");
  sub->add_option("--spool-max", cmd->spool_max, "Spool size limit; events beyond it are dropped and counted")
      ->type_name("SIZE")
      ->capture_default_str();
  sub->add_option("--retention", cmd->retention, "Drop whole days older than this (e.g. 30d)")->type_name("AGE");
  sub->add_flag("--also-print", cmd->also_print, "Also print events on stdout, like `fstrail watch`");
  sub->add_flag("--json", cmd->json, "With --also-print: JSON lines");
  sub->footer(
      "Examples:\n"
      "  sudo fstrail record /srv/app                                   # SQLite in /var/lib/fstrail\n"
      "  sudo fstrail record --db 'host=db dbname=fstrail user=fstrail' --retention 30d /srv /etc\n"
      "  fstrail query --path /srv/app/ --since 1h                      # then ask who did what");
  return [cmd] { return cmd->run(); };
}

}  // namespace fstrail::cli
