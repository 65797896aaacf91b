// The guard benchmark: start-up scan time and memory on a tree of N files, alert
// latency (violating syscall -> alert line read) and remediation latency
// (violating syscall -> owner restored), as medians and p99 over many violations.
//   fstrail_guard_bench FSTRAIL BACKEND [FILES] [VIOLATIONS]    (root)
// Each violation is made by its own short-lived process, as a person would, so the
// guard's burst summaries do not swallow the alerts being timed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace {

constexpr uid_t kService = 65534;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5))];
}

long status_kib(pid_t pid, const char* key) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  return -1;
}

struct Guard {
  pid_t pid = -1;
  int out = -1, err = -1;
  std::string stdout_buf, stderr_buf;

  // Reads what is there within `ms`.
  void pump(int ms) {
    pollfd fds[2] = {{out, POLLIN, 0}, {err, POLLIN, 0}};
    if (::poll(fds, 2, ms) <= 0) return;
    char buf[65536];
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & POLLIN)) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) (i ? stderr_buf : stdout_buf).append(buf, static_cast<size_t>(n));
    }
  }
};

Guard start_guard(const std::string& fstrail, const std::string& backend, const std::string& config) {
  int out[2], err[2];
  if (pipe(out) || pipe(err)) std::exit(1);
  Guard g;
  g.pid = fork();
  if (g.pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    execl(fstrail.c_str(), fstrail.c_str(), "guard", "--json", "--backend", backend.c_str(), "--config",
          config.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  g.out = out[0];
  g.err = err[0];
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || geteuid() != 0) {
    fmt::print(stderr, "usage (root): {} FSTRAIL BACKEND [FILES] [VIOLATIONS]\n", argv[0]);
    return 2;
  }
  std::string fstrail = argv[1], backend = argv[2];
  int files = argc > 3 ? std::atoi(argv[3]) : 100000;
  int violations = argc > 4 ? std::atoi(argv[4]) : 300;

  char tmpl[] = "/var/tmp/fstrail-guard-bench-XXXXXX";
  if (!mkdtemp(tmpl)) return 1;
  std::string base = tmpl, tree = base + "/srv";
  mkdir(tree.c_str(), 0750);
  chown(tree.c_str(), kService, kService);
  const int dirs = (files + 999) / 1000;
  for (int d = 0; d < dirs; ++d) {
    std::string dir = fmt::format("{}/d{}", tree, d);
    mkdir(dir.c_str(), 0750);
    chown(dir.c_str(), kService, kService);
    for (int f = 0; f < 1000 && d * 1000 + f < files; ++f) {
      std::string path = fmt::format("{}/f{}", dir, f);
      int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0640);
      fchown(fd, kService, kService);
      close(fd);
    }
  }
  std::string config = base + "/fstrail.toml";
  std::ofstream(config) << fmt::format(
      "[[guard]]\nname = \"bench\"\npath = \"{}\"\nowner = {}\ngroup = {}\nmode_max = \"0750\"\nremediate = true\n",
      tree, kService, kService);
  sync();

  auto t0 = Clock::now();
  Guard g = start_guard(fstrail, backend, config);
  while (g.stderr_buf.find("fstrail: guarding") == std::string::npos) {
    g.pump(5);
    if (ms_since(t0) > 300000) {
      fmt::print(stderr, "guard did not start: {}\n", g.stderr_buf);
      return 1;
    }
  }
  double startup_ms = ms_since(t0);
  long startup_rss = status_kib(g.pid, "VmHWM:");

  // A shared page for the child's pre-syscall timestamp.
  auto* shared = static_cast<Clock::time_point*>(
      mmap(nullptr, sizeof(Clock::time_point), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  std::vector<double> alert_ms, fix_ms;
  int missed = 0;
  for (int i = 0; i < violations; ++i) {
    // Paced below the remediation rate limit (200 fixes/s), which would otherwise decide
    // the remediation numbers.
    usleep(10000);
    std::string path = fmt::format("{}/d{}/f{}", tree, i % dirs, (i / dirs) % 1000);
    std::string quoted = "\"path\":\"" + path + "\"";
    pid_t child = fork();
    if (child == 0) {
      *shared = Clock::now();
      _exit(chown(path.c_str(), 0, 0) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fmt::print(stderr, "chown {} failed\n", path);
      return 1;
    }
    Clock::time_point start = *shared;
    bool alerted = false, fixed = false;
    while (!(alerted && fixed)) {
      if (!fixed) {
        struct stat st{};
        if (lstat(path.c_str(), &st) == 0 && st.st_uid == kService) {
          fixed = true;
          fix_ms.push_back(ms_since(start));
        }
      }
      if (!alerted) {
        g.pump(fixed ? 5 : 0);
        size_t at = g.stdout_buf.find(quoted);
        if (at != std::string::npos) {
          alerted = true;
          alert_ms.push_back(ms_since(start));
          g.stdout_buf.erase(0, g.stdout_buf.find('\n', at) + 1);
        }
      }
      if (ms_since(start) > 5000) {
        ++missed;
        fmt::print(stderr, "missed: {} (alerted {}, fixed {})\n", path, alerted, fixed);
        break;
      }
    }
  }
  long steady_rss = status_kib(g.pid, "VmHWM:");
  kill(g.pid, SIGTERM);
  waitpid(g.pid, nullptr, 0);
  std::filesystem::remove_all(base);

  fmt::print("| {} | {} | {:.0f} | {:.1f} | {:.1f} | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {} |\n", backend, files,
             startup_ms, startup_rss / 1024.0, steady_rss / 1024.0, percentile(alert_ms, 0.5),
             percentile(alert_ms, 0.99), percentile(fix_ms, 0.5), percentile(fix_ms, 0.99), missed);
  return 0;  // misses are in the table
}
