// fstrail-fsmonitor: git's core.fsmonitor hook alone. The same as `fstrail fsmonitor`, in
// an executable that loads no more than libc and fmt, since git waits for it on every command.
#include <cstdio>
#include <cstring>
#include <string>

#include "fsmonitor/client.h"

int main(int argc, char** argv) {
  if (argc == 3 && std::strncmp(argv[1], "-", 1) != 0)
    return fstrail::fsmonitor::run_fsmonitor_hook(argv[1], argv[2], stdout);
  std::fprintf(
      argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) ? stdout : stderr,
      "Usage: fstrail-fsmonitor VERSION TOKEN\n"
      "git's core.fsmonitor hook (protocol version 2), as `fstrail fsmonitor`; set it up with\n"
      "  git config core.fsmonitor fstrail-fsmonitor\n"
      "  git config core.untrackedCache true\n"
      "See `fstrail fsmonitor --help`.\n");
  return argc == 2 ? 0 : 2;
}
