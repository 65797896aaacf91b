// The watch benchmark's workload: per iteration, in DIR/a/b/c/d/e (depth 5):
// create + 4 KiB write + close, chmod, rename, unlink, mkdir, rmdir — 7 operations,
// 7 events in fstrail's terms. Prints the elapsed wall time in nanoseconds.
//   fstrail_watch_workload DIR OPS
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR OPS\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  long ops = std::atol(argv[2]);
  for (const char* part : {"/a", "/b", "/c", "/d", "/e"}) {
    dir += part;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      std::perror(dir.c_str());
      return 1;
    }
  }
  char block[4096];
  std::memset(block, 'x', sizeof block);
  const long iterations = (ops + 6) / 7;
  // Fresh names each iteration: fanotify coalesces identical events (same process,
  // directory, name and kind) still queued, which a loop over one name would measure.
  std::string file, moved, sub;
  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iterations; ++i) {
    file = dir + "/file" + std::to_string(i), moved = dir + "/moved" + std::to_string(i);
    sub = dir + "/sub" + std::to_string(i);
    int fd = open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, block, sizeof block) != sizeof block || close(fd) != 0 ||
        chmod(file.c_str(), 0600) != 0 || rename(file.c_str(), moved.c_str()) != 0 || unlink(moved.c_str()) != 0 ||
        mkdir(sub.c_str(), 0755) != 0 || rmdir(sub.c_str()) != 0) {
      std::perror("workload");
      return 1;
    }
  }
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  std::printf("%lld %ld\n", static_cast<long long>(ns), iterations * 7);
  return 0;
}
