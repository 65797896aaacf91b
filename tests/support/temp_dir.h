// A directory of one test's own under /tmp, removed with everything in it when the test is done
// (also when an assertion ended the test early).
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fstrail::testing {

class TempDir {
 public:
  // /tmp/fstrail-NAME-XXXXXX, mode 0700. A failure throws: the test reports it and fails.
  explicit TempDir(std::string_view name) {
    std::string tmpl = "/tmp/fstrail-" + std::string(name) + "-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("cannot create a temporary directory " + tmpl + ": " + std::strerror(errno));
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace fstrail::testing
