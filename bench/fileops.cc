// Times file operations in a directory, to measure what a running fstrail costs
// the processes it watches: bench/bpf_tracepoint_cost.sh runs it without fstrail,
// with fstrail watching another tree, and with fstrail watching this one.
// Usage: fstrail_bench_fileops DIR ITERATIONS
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

template <typename Fn>
double ns_per_op(int iterations, Fn&& fn) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) fn(i);
  auto elapsed = std::chrono::steady_clock::now() - start;
  return std::chrono::duration<double, std::nano>(elapsed).count() / iterations;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DIR ITERATIONS\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  int iterations = std::atoi(argv[2]);
  std::string file = dir + "/bench.dat";
  char byte = 'x';

  double create_write_close_unlink = ns_per_op(iterations, [&](int) {
    int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || ::write(fd, &byte, 1) != 1) std::abort();
    ::close(fd);
    ::unlink(file.c_str());
  });
  int keep = ::open(file.c_str(), O_CREAT | O_WRONLY, 0644);
  ::close(keep);
  double open_read_close = ns_per_op(iterations, [&](int) {
    int fd = ::open(file.c_str(), O_RDONLY);
    if (fd < 0) std::abort();
    ::close(fd);
  });
  double chmod_op = ns_per_op(iterations, [&](int i) { ::chmod(file.c_str(), i % 2 ? 0644 : 0600); });
  double mkdir_rmdir = ns_per_op(iterations, [&](int) {
    std::string sub = dir + "/bench.d";
    ::mkdir(sub.c_str(), 0755);
    ::rmdir(sub.c_str());
  });
  int fd = ::open(file.c_str(), O_WRONLY);
  double write_op = ns_per_op(iterations, [&](int) {
    if (::pwrite(fd, &byte, 1, 0) != 1) std::abort();
  });
  ::close(fd);
  ::unlink(file.c_str());
  std::printf("create+write+close+unlink %8.0f ns\n", create_write_close_unlink);
  std::printf("open(O_RDONLY)+close      %8.0f ns\n", open_read_close);
  std::printf("chmod                     %8.0f ns\n", chmod_op);
  std::printf("mkdir+rmdir               %8.0f ns\n", mkdir_rmdir);
  std::printf("pwrite (1 byte)           %8.0f ns\n", write_op);
  return 0;
}
