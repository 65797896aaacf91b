// The spool reader on an arbitrary segment file (and the record parser on arbitrary bytes):
// every record it replays parses, the bad bytes it quarantines are bytes of the file, and it
// always reaches the end.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "store/record.h"
#include "store/spool/spool.h"

using namespace fstrail::store;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  EventRecordView view;
  StoredEvent row;
  if (parse_record(bytes, view) != decode_event(bytes, row)) std::abort();

  // tmpfs: the spool's fsyncs cost nothing there.
  static std::string dir = [] {
    char tmpl[] = "/dev/shm/fstrail-fuzz-spool-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    return std::string(tmpl);
  }();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  std::string seg = dir + "/00000000000000000001.seg";
  int fd = ::open(seg.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  ::close(fd);

  auto spool = Spool::open(dir, 1ull << 30);
  if (!spool) std::abort();
  for (int round = 0; !(*spool)->empty(); ++round) {
    if (round > 100000) std::abort();  // no progress
    SpoolPosition next;
    auto rows = (*spool)->peek(64, next);
    if (!rows) std::abort();
    for (size_t i = 0; i < rows->size(); ++i)
      if (!parse_record(rows->record(i), view)) std::abort();
    if (!(*spool)->commit(next)) std::abort();
  }
  if ((*spool)->quarantined_bytes() > size) std::abort();
  return 0;
}
