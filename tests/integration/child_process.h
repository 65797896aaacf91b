// A child process (the fstrail binary under test) with its stdout and stderr read
// through pipes, stopped by signal with a bounded wait.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

namespace fstrail::testing {

using namespace std::chrono_literals;
// Generous: under software emulation (the VM tier) detaching fentry programs on exit
// alone can take several seconds.
inline constexpr auto kChildDeadline = std::chrono::seconds(30);

// FSTRAIL_TRACEPOINT_MODE=auto|kernel|strings: every command line that selects
// `--backend bpf-tracepoint` also gets `--tracepoint-mode` (the suites run in both modes).
inline std::vector<std::string> with_tracepoint_mode(std::vector<std::string> argv) {
  const char* mode = std::getenv("FSTRAIL_TRACEPOINT_MODE");
  if (!mode || !*mode) return argv;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == "--backend" && argv[i + 1] == "bpf-tracepoint") {
      argv.insert(argv.begin() + static_cast<long>(i) + 2, {"--tracepoint-mode", mode});
      break;
    }
  }
  return argv;
}

// A child process with its stdout and stderr read through pipes.
class Child {
 public:
  Child(const std::vector<std::string>& given_argv, bool stdin_pipe = false) {
    std::vector<std::string> argv = with_tracepoint_mode(given_argv);
    int out[2], err[2], in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || (stdin_pipe && pipe2(in, O_CLOEXEC))) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(err[1], 2);
      if (stdin_pipe) dup2(in[0], 0);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
    if (stdin_pipe) {
      close(in[0]);
      in_ = in[1];
    }
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    for (int fd : {out_, err_, in_})
      if (fd >= 0) close(fd);
  }
  pid_t pid() const { return pid_; }
  void close_stdin() {
    if (in_ >= 0) close(in_);
    in_ = -1;
  }

  // Reads whatever is available within `wait`; false once both pipes are at EOF.
  bool pump(std::chrono::milliseconds wait) {
    if (out_ < 0 && err_ < 0) return false;
    pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(wait.count()));
    if (n <= 0) return true;
    for (int i = 0; i < 2; ++i) {
      int& fd = i == 0 ? out_ : err_;
      if (fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t got = read(fd, buf, sizeof buf);
      if (got > 0) (i == 0 ? stdout_ : stderr_).append(buf, static_cast<size_t>(got));
      if (got == 0) {
        close(fd);
        fd = -1;
      }
    }
    return out_ >= 0 || err_ >= 0;
  }

  // Sends `sig` and waits (bounded) for the exit status; -1 if it did not exit.
  int stop(int sig) {
    if (exited_) return status_;
    kill(pid_, sig);
    auto until = std::chrono::steady_clock::now() + kChildDeadline;
    while (std::chrono::steady_clock::now() < until) {
      pump(50ms);
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        while (pump(50ms)) {
        }
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return status_;
      }
    }
    return -1;
  }
  int wait_exit() { return stop(0); }

  std::string stdout_, stderr_;

 private:
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1, in_ = -1;
  bool exited_ = false;
  int status_ = -1;
};

// Runs `script` with sh as uid/gid 65534; the shell stays alive until release() so that a
// backend reading /proc after the fact still finds it.
class OtherUser {
 public:
  explicit OtherUser(const std::string& script)
      : child_({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script + "; read _"},
               /*stdin_pipe=*/true) {}
  ~OtherUser() { release(); }
  void release() {
    child_.close_stdin();
    child_.wait_exit();
  }
  pid_t pid() const { return child_.pid(); }

 private:
  Child child_;
};

}  // namespace fstrail::testing
