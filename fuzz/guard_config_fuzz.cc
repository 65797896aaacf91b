// The guard config parser (only its public API) on arbitrary text: a config or an error
// that names the file, never a crash; every accepted rule guards an absolute path.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "guard/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto config = fstrail::guard::parse_config(text, "fuzz.toml");
  if (!config) {
    if (config.error().message.find("fuzz.toml") == std::string::npos) std::abort();
    return 0;
  }
  for (const auto& rule : config->rules) {
    if (rule.path.empty() || rule.path[0] != '/') std::abort();
    (void)fstrail::guard::allowed_mode(rule, true);
    (void)fstrail::guard::allowed_mode(rule, false);
  }
  return 0;
}
