#include "devtools/runner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

extern char** environ;

namespace fstrail::devtools {
namespace {

int status_of(int wstatus) {
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
  return 1;
}

bool group_exists(pid_t pgid) { return ::kill(-pgid, 0) == 0 || errno == EPERM; }

void sleep_ms(int ms) {
  struct timespec ts {
    ms / 1000, (ms % 1000) * 1'000'000L
  };
  ::nanosleep(&ts, nullptr);
}

}  // namespace

CommandRunner::~CommandRunner() {
  if (running()) stop(1000);
}

Status CommandRunner::start(const Launch& launch) {
  std::vector<std::string> env_storage;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    bool overridden = false;
    for (const auto& extra : launch.extra_env)
      if (entry.substr(0, entry.find('=') + 1) == std::string_view(extra).substr(0, extra.find('=') + 1))
        overridden = true;
    if (!overridden) env_storage.emplace_back(entry);
  }
  for (const auto& extra : launch.extra_env) env_storage.push_back(extra);
  std::vector<char*> envp, argv;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = launch.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_init(&actions);
  // Its own process group (pgid = its pid), default signal dispositions and an empty mask
  // (fstrail's SIGINT/SIGTERM handlers are not the command's).
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (!launch.stdin_file.empty())
    posix_spawn_file_actions_addopen(&actions, 0, launch.stdin_file.c_str(), O_RDONLY, 0);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Error::from_errno(fmt::format("cannot run {}", launch.argv[0]), rc);
  pid_ = pid;
  status_.reset();
  return Ok{};
}

void CommandRunner::poll_exit() {
  if (!running()) return;
  int wstatus = 0;
  pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
  if (r == pid_) {
    status_ = status_of(wstatus);
    pid_ = -1;
  }
}

void CommandRunner::signal_group(int sig) const {
  if (running()) ::kill(-pid_, sig);
}

void CommandRunner::stop(int timeout_ms) {
  if (!running()) return;
  pid_t pgid = pid_;
  ::kill(-pgid, SIGTERM);
  // The whole group gets the timeout: a child that outlives the command is waited for too.
  for (int waited = 0; waited < timeout_ms; waited += 5) {
    poll_exit();
    if (!running() && !group_exists(pgid)) return;
    sleep_ms(5);
  }
  // The command is gone (or is killed now): whatever else of its group is left goes too.
  if (group_exists(pgid)) ::kill(-pgid, SIGKILL);
  if (running()) {
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, 0) == pid_) status_ = status_of(wstatus);
    pid_ = -1;
  }
}

Result<int> parse_signal(const std::string& name) {
  std::string n = name;
  if (n.rfind("SIG", 0) == 0) n = n.substr(3);
  if (!n.empty() && std::all_of(n.begin(), n.end(), ::isdigit)) {
    int v = std::stoi(n);
    if (v > 0 && v < NSIG) return v;
  }
  for (int s = 1; s < NSIG; ++s)
    if (const char* abbrev = sigabbrev_np(s); abbrev && n == abbrev) return s;
  return Error{fmt::format("unknown signal '{}' (e.g. TERM, INT, HUP, USR1, KILL, or a number)", name)};
}

}  // namespace fstrail::devtools
