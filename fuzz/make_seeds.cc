// Writes the structured seeds of fuzz/corpus (wire records, a spool segment) from the real
// encoders; the rest of the corpus is text, checked in as is. Built against the main build:
//   g++ -std=c++20 -I src -I include -I tests fuzz/make_seeds.cc build/src/libfstrail_store.a \
//     build/src/libfstrail_core.a -lfmt -lsqlite3 -lpq -lz -o /tmp/make_seeds && /tmp/make_seeds fuzz/corpus
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "fstrail/wire.h"
#include "store/spool/spool.h"
#include "store/test_events.h"

namespace {

void write(const std::string& path, const void* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(data, 1, size, f);
  std::fclose(f);
}

std::vector<uint8_t> event_record(uint16_t op, uint8_t enc, std::string_view path, std::string_view old_path,
                                  uint16_t flags) {
  fst_event w{};
  w.hdr.type = FST_REC_EVENT;
  w.hdr.version = FST_WIRE_VERSION;
  w.hdr.ktime_ns = 123456789;
  w.op = op;
  w.flags = flags;
  w.actor.pid = 42;
  w.actor.tid = 42;
  w.actor.uid = 1000;
  w.actor.valid = FST_AF_PPID | FST_AF_LOGINUID | FST_AF_CGROUP;
  std::strcpy(w.actor.comm, "vim");
  w.dirfd = -100;
  w.old_dirfd = 3;
  w.path_enc = enc;
  w.old_path_enc = old_path.empty() ? FST_PATH_NONE : enc;
  w.path_len = static_cast<uint16_t>(path.size());
  w.old_path_len = static_cast<uint16_t>(old_path.size());
  w.hdr.size = static_cast<uint32_t>(sizeof w + path.size() + old_path.size());
  std::vector<uint8_t> bytes(w.hdr.size);
  std::memcpy(bytes.data(), &w, sizeof w);
  std::copy(path.begin(), path.end(), bytes.begin() + sizeof w);
  std::copy(old_path.begin(), old_path.end(), bytes.begin() + static_cast<long>(sizeof w + path.size()));
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out = argc > 1 ? argv[1] : "fuzz/corpus";
  std::string dec = out + "/decoder";
  std::filesystem::create_directories(dec);
  int n = 0;
  auto put = [&](const std::vector<uint8_t>& r) { write(fmt::format("{}/seed-{}", dec, n++), r.data(), r.size()); };
  put(event_record(FST_OP_CREATE, FST_PATH_ABSOLUTE, "/srv/app/x", "", FST_EF_HAS_INODE));
  put(event_record(FST_OP_RENAME, FST_PATH_ABSOLUTE, "/srv/app/new", "/srv/app/old", 0));
  put(event_record(FST_OP_RENAME, FST_PATH_AS_PASSED, "new", "old", 0));
  put(event_record(FST_OP_MKDIR, FST_PATH_REVERSED_COMPONENTS, std::string("x\0app\0srv\0", 10), "", FST_EF_IS_DIR));
  put(event_record(FST_OP_CHMOD, FST_PATH_ABSOLUTE, "/etc/passwd", "", FST_EF_HAS_OLD_MODE | FST_EF_HAS_NEW_MODE));
  put(event_record(FST_OP_CHOWN, FST_PATH_ABSOLUTE, "/etc/shadow", "",
                   FST_EF_HAS_OLD_OWNER | FST_EF_HAS_NEW_UID | FST_EF_HAS_NEW_GID | FST_EF_DENIED));
  {
    fst_exec w{};
    w.hdr = {FST_REC_EXEC, FST_WIRE_VERSION, static_cast<uint32_t>(sizeof w + 8), 1};
    w.pid = 7;
    w.filename_len = 8;
    std::vector<uint8_t> r(w.hdr.size);
    std::memcpy(r.data(), &w, sizeof w);
    std::memcpy(r.data() + sizeof w, "/bin/ls\0", 8);
    put(r);
  }
  {
    fst_dirfd w{};
    w.hdr = {FST_REC_DIRFD, FST_WIRE_VERSION, static_cast<uint32_t>(sizeof w + 4), 1};
    w.pid = 7;
    w.fd = 5;
    w.dirfd = -100;
    w.path_len = 4;
    std::vector<uint8_t> r(w.hdr.size);
    std::memcpy(r.data(), &w, sizeof w);
    std::memcpy(r.data() + sizeof w, "/srv", 4);
    put(r);
  }

  // A spool segment of every kind of event, written by the spool itself.
  std::string tmp = out + "/.spool-tmp";
  std::filesystem::remove_all(tmp);
  {
    auto spool = fstrail::store::Spool::open(tmp, 1ull << 30);
    auto rows = fstrail::store::fixtures::every_kind_events("h");
    rows.resize(std::min<size_t>(rows.size(), 12));
    (void)(*spool)->append(rows);
  }
  std::filesystem::create_directories(out + "/spool_reader");
  for (const auto& entry : std::filesystem::directory_iterator(tmp))
    if (entry.path().extension() == ".seg") std::filesystem::copy_file(entry.path(), out + "/spool_reader/segment-12-events");
  std::filesystem::remove_all(tmp);
  return 0;
}
