#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/text.h"
#include "core/unique_fd.h"
#include "store/store.h"

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
  app.add_option("--tracepoint-mode", o.tracepoint_mode,
                 "bpf-tracepoint only: kernel (paths and actors read from kernel objects; needs "
                 "lockdown other than confidentiality), strings (syscall arguments resolved in user "
                 "space, works everywhere), auto (kernel where it loads)")
      ->check(CLI::IsMember({"auto", "kernel", "strings"}))
      ->capture_default_str();
  app.add_flag("--failed", o.failed, "Also report failed or denied operations, with their error (eBPF backends)");
  add_sandbox_option(app, o.sandbox);
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
  p.spec.tracepoint_mode = o.tracepoint_mode;
  p.filter.exclude_globs = o.excludes;
  if (!o.user.empty()) {
    auto uid = parse_user(o.user);
    if (!uid) return uid.error();
    p.filter.uid = *uid;
  }
  return p;
}

Result<std::string> read_password_file(const std::string& file) {
  std::string shown = escape_for_terminal(file);
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd.valid()) return Error::from_errno("cannot read " + shown);
  struct stat st{};
  if (fstat(fd.get(), &st) != 0) return Error::from_errno("cannot read " + shown);
  if (!S_ISREG(st.st_mode) || st.st_size > 4096)
    return Error{fmt::format("{} must be a regular file of at most 4096 bytes holding the password", shown)};
  char buf[4097];
  ssize_t n = ::read(fd.get(), buf, sizeof buf);
  if (n < 0) return Error::from_errno("cannot read " + shown);
  std::string password(buf, static_cast<size_t>(n));
  explicit_bzero(buf, sizeof buf);
  password = password.substr(0, password.find('\n'));
  if (!password.empty() && password.back() == '\r') password.pop_back();
  if (password.empty()) return Error{fmt::format("{}: the first line is empty (it holds the password)", shown)};
  return password;
}

void add_db_password_file_option(CLI::App& app) {
  app.add_option_function<std::string>(
         "--db-password-file",
         [](const std::string& file) {
           auto password = read_password_file(file);
           if (!password) throw CLI::ValidationError("--db-password-file", password.error().message);
           store::set_postgres_password(std::move(*password));
         },
         "PostgreSQL: the password, from the first line of FILE (over one in --db; without it, libpq's "
         "PGPASSFILE, ~/.pgpass or PGPASSWORD). Never put a password on the command line: every user "
         "can read it (ps)")
      ->type_name("FILE");
}

int scrub_db_passwords(int argc, char** argv, FILE* err) {
  int scrubbed = 0;
  for (int i = 1; i < argc; ++i) {
    char* value = nullptr;
    if (std::strcmp(argv[i], "--db") == 0 && i + 1 < argc) value = argv[i + 1];
    else if (std::strncmp(argv[i], "--db=", 5) == 0) value = argv[i] + 5;
    if (!value) continue;
    std::string password = store::find_password(value);
    if (password.empty()) continue;
    size_t size = std::strlen(value);
    std::string redacted = store::redact_url(value);
    if (redacted.size() <= size) {
      std::memcpy(value, redacted.data(), redacted.size());
      std::memset(value + redacted.size(), 0, size - redacted.size());
    } else {  // a password shorter than "***": star it out in place
      for (char* hit; (hit = std::strstr(value, password.c_str())) != nullptr;)
        std::memset(hit, '*', password.size());
    }
    ++scrubbed;
  }
  if (scrubbed)
    fmt::print(err,
               "fstrail: warning: the password in --db was removed from the command line (every user can read a "
               "command line: ps, /proc/PID/cmdline); use --db-password-file FILE, PGPASSFILE or ~/.pgpass\n");
  return scrubbed;
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
