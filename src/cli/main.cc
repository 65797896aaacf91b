// fstrail: who changed what, where, and when.
#include <cstdio>
#include <map>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace fstrail::cli;
  CLI::App app{
      "fstrail: who changed what, where, and when. Reports every create, write, delete, rename,\n"
      "chmod and chown under the directory trees you watch, with the process and user behind it."};
  app.require_subcommand(1);
  app.footer("Examples:\n  sudo fstrail watch /srv/app\n  sudo fstrail watch --json --events chown,chmod /srv/app\n"
             "  sudo fstrail record --db postgresql://fstrail@db/fstrail /srv/app\n"
             "  fstrail query --path /srv/app/ --since 1h\n  fstrail run src -- make\n  fstrail doctor\n"
             "  sudo fstrail agent --config /etc/fstrail/fstrail.toml   # the service: record, guard, keep alerts\n"
             "  git config core.fsmonitor 'fstrail fsmonitor'   # faster git status\nRun `fstrail COMMAND --help` for a command's options.");
  std::map<CLI::App*, RunFn> commands;
  for (auto add : {add_watch_command, add_record_command, add_query_command, add_guard_command, add_agent_command, add_run_command,
                    add_doctor_command, add_fsmonitor_command, add_watchd_command}) {
    size_t before = app.get_subcommands({}).size();
    RunFn run = add(app);
    commands[app.get_subcommands({}).at(before)] = std::move(run);
  }
  int parsed_argc = split_run_command_line(argc, argv);
  try {
    app.parse(parsed_argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  // CLI11 holds its own copies of the values now: argv's bytes may change.
  scrub_db_passwords(argc, argv, stderr);
  for (auto& [sub, run] : commands)
    if (sub->parsed()) return run();
  return kExitUsage;
}
