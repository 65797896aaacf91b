// The wire decoder on arbitrary ring-buffer records: an error or an event, never a crash,
// and a decoded path is never longer than the record that carried it.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "decode/decoder.h"

namespace {

class FuzzResolver final : public fstrail::PathResolver {
 public:
  std::optional<std::string> resolve(pid_t, int dirfd, std::string_view path) override {
    if (dirfd == -1) return std::nullopt;  // "cannot resolve" must be handled too
    return "/cwd/" + std::string(path);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fstrail::BootClock clock;
  static FuzzResolver resolver;
  fstrail::DecodeContext ctx{clock, "bpf-fuzz", &resolver};
  auto record = fstrail::decode_record(std::span<const uint8_t>(data, size), ctx);
  if (!record) return 0;
  if (auto* event = std::get_if<fstrail::Event>(&record.value())) {
    // The resolver adds at most "/cwd/" to a path; the rest must come from the record.
    if (event->path.size() > size + 5) std::abort();
    if (event->old_path && event->old_path->size() > size + 5) std::abort();
  }
  return 0;
}
