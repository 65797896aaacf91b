// The watch benchmark's workload (bench/run.sh), two modes:
//
//   fstrail_watch_workload DIR OPS [PROCESSES]
//     Per iteration, in DIR/a/b/c/d/e (depth 5): create + 4 KiB write + close, chmod,
//     rename, unlink, mkdir, rmdir: 7 operations, 7 events in fstrail's terms. With
//     PROCESSES > 1, that many processes share the OPS, at once. Prints the elapsed
//     wall time in nanoseconds and the number of operations made.
//
//   fstrail_watch_workload latency DIR SAMPLES   (a monitor's output on stdin)
//     Event -> output latency: creates DIR/lat-N, then reads stdin until a line names
//     it; one sample every 2 ms. Prints p50 and p99 in microseconds, samples seen, and
//     samples never seen within 2 s.
//
//   fstrail_watch_workload ops DIR ITERATIONS
//     ns per operation, each kind timed alone (bench/vm_bench.sh): create+write+close+
//     unlink, open(O_RDONLY)+close, chmod, mkdir+rmdir, pwrite, and getppid (a syscall no
//     monitor cares about: what a raw_syscalls dispatcher costs everyone).
//
//   fstrail_watch_workload spawn COUNT
//     ns per process started and ended (fork, exec of /bin/true, exit, wait), which a
//     monitor that follows processes pays for in the kernel (docs/backends.md).
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int run_iterations(const std::string& dir, long iterations, const std::string& tag) {
  char block[4096];
  std::memset(block, 'x', sizeof block);
  // Fresh names each iteration: fanotify coalesces identical events (same process,
  // directory, name and kind) still queued, which a loop over one name would measure.
  std::string file, moved, sub;
  for (long i = 0; i < iterations; ++i) {
    std::string n = tag + std::to_string(i);
    file = dir + "/file" + n, moved = dir + "/moved" + n, sub = dir + "/sub" + n;
    int fd = open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, block, sizeof block) != sizeof block || close(fd) != 0 ||
        chmod(file.c_str(), 0600) != 0 || rename(file.c_str(), moved.c_str()) != 0 || unlink(moved.c_str()) != 0 ||
        mkdir(sub.c_str(), 0755) != 0 || rmdir(sub.c_str()) != 0) {
      std::perror("workload");
      return 1;
    }
  }
  return 0;
}

int workload(std::string dir, long ops, int processes) {
  for (const char* part : {"/a", "/b", "/c", "/d", "/e"}) {
    dir += part;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      std::perror(dir.c_str());
      return 1;
    }
  }
  const long iterations = (ops + 7L * processes - 1) / (7L * processes);  // per process
  auto start = Clock::now();
  int failed = 0;
  if (processes == 1) {
    failed = run_iterations(dir, iterations, "");
  } else {
    std::vector<pid_t> children;
    for (int p = 0; p < processes; ++p) {
      pid_t pid = fork();
      if (pid < 0) return std::perror("fork"), 1;
      if (pid == 0) _exit(run_iterations(dir, iterations, "p" + std::to_string(p) + "-"));
      children.push_back(pid);
    }
    for (pid_t pid : children) {
      int status = 0;
      if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
  }
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
  if (failed) return 1;
  std::printf("%lld %ld\n", static_cast<long long>(ns), iterations * 7 * processes);
  return 0;
}

// Lines of stdin, read without stdio buffering so that poll() sees what is pending.
class LineReader {
 public:
  // The next line within `deadline`; false on timeout or end of input.
  bool next(std::string& line, Clock::time_point deadline) {
    for (;;) {
      if (auto nl = pending_.find('\n'); nl != std::string::npos) {
        line.assign(pending_, 0, nl);
        pending_.erase(0, nl + 1);
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd pfd{0, POLLIN, 0};
      if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
      char buf[65536];
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) return false;
      pending_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  std::string pending_;
};

int latency(const std::string& dir, int samples) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return std::perror(dir.c_str()), 1;
  LineReader in;
  std::string line;
  auto probe = [&](const std::string& name, std::chrono::milliseconds wait) -> long {
    std::string path = dir + "/" + name;
    auto start = Clock::now();
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return std::perror(path.c_str()), -2;
    close(fd);
    std::string needle = "/" + name + "\"";  // JSON: the path ends with the name
    long us = -1;
    while (in.next(line, start + wait)) {
      if (line.find(needle) != std::string::npos) {
        us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
        break;
      }
    }
    unlink(path.c_str());
    return us;
  };
  // Until the monitor reports anything at all: it is then watching.
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) ready = probe("ready-" + std::to_string(i), std::chrono::milliseconds(100)) >= 0;
  if (!ready) return std::fprintf(stderr, "latency: the monitor reported nothing\n"), 1;
  std::vector<long> seen;
  int missed = 0;
  for (int i = 0; i < samples; ++i) {
    long us = probe("lat-" + std::to_string(i), std::chrono::seconds(2));
    if (us == -2) return 1;
    if (us < 0) ++missed;
    else seen.push_back(us);
    usleep(2000);
  }
  if (seen.empty()) return std::fprintf(stderr, "latency: no sample seen\n"), 1;
  std::sort(seen.begin(), seen.end());
  auto pct = [&](double p) { return seen[std::min(seen.size() - 1, static_cast<size_t>(p * seen.size()))]; };
  std::printf("%ld %ld %zu %d\n", pct(0.50), pct(0.99), seen.size(), missed);
  return 0;
}

template <typename Fn>
double ns_per_op(int iterations, Fn&& fn) {
  auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) fn(i);
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / iterations;
}

int per_operation(const std::string& dir, int iterations) {
  std::string file = dir + "/bench.dat", sub = dir + "/bench.d";
  char byte = 'x';
  double create_write_close_unlink = ns_per_op(iterations, [&](int) {
    int fd = open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, &byte, 1) != 1) std::abort();
    close(fd);
    unlink(file.c_str());
  });
  close(open(file.c_str(), O_CREAT | O_WRONLY, 0644));
  double open_read_close = ns_per_op(iterations, [&](int) {
    int fd = open(file.c_str(), O_RDONLY);
    if (fd < 0) std::abort();
    close(fd);
  });
  double chmod_op = ns_per_op(iterations, [&](int i) { chmod(file.c_str(), i % 2 ? 0644 : 0600); });
  double mkdir_rmdir = ns_per_op(iterations, [&](int) {
    mkdir(sub.c_str(), 0755);
    rmdir(sub.c_str());
  });
  int fd = open(file.c_str(), O_WRONLY);
  double write_op = ns_per_op(iterations, [&](int) {
    if (pwrite(fd, &byte, 1, 0) != 1) std::abort();
  });
  close(fd);
  unlink(file.c_str());
  double getppid_op = ns_per_op(iterations, [&](int) { (void)syscall(SYS_getppid); });
  std::printf("create+write+close+unlink %8.0f ns\n", create_write_close_unlink);
  std::printf("open(O_RDONLY)+close      %8.0f ns\n", open_read_close);
  std::printf("chmod                     %8.0f ns\n", chmod_op);
  std::printf("mkdir+rmdir               %8.0f ns\n", mkdir_rmdir);
  std::printf("pwrite (1 byte)           %8.0f ns\n", write_op);
  std::printf("getppid                   %8.0f ns\n", getppid_op);
  return 0;
}

int per_process(int count) {
  double ns = ns_per_op(count, [&](int) {
    pid_t pid = fork();
    if (pid < 0) std::abort();
    if (pid == 0) {
      execl("/bin/true", "true", static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
  });
  std::printf("fork+exec+exit /bin/true  %8.0f ns\n", ns);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "latency") == 0) return latency(argv[2], std::atoi(argv[3]));
  if (argc == 4 && std::strcmp(argv[1], "ops") == 0) return per_operation(argv[2], std::atoi(argv[3]));
  const bool spawn = argc == 3 && std::strcmp(argv[1], "spawn") == 0;
  if (spawn && std::atoi(argv[2]) > 0) return per_process(std::atoi(argv[2]));
  if (spawn || (argc != 3 && argc != 4)) {
    std::fprintf(stderr,
                 "usage: %s DIR OPS [PROCESSES] | %s latency DIR SAMPLES | %s ops DIR ITERATIONS"
                 " | %s spawn COUNT\n",
                 argv[0], argv[0], argv[0], argv[0]);
    return 2;
  }
  return workload(argv[1], std::atol(argv[2]), argc == 4 ? std::atoi(argv[3]) : 1);
}
