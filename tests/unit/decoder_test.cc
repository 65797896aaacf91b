#include "decode/decoder.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "fstrail/wire.h"

namespace fstrail {
namespace {

class FakeResolver final : public PathResolver {
 public:
  std::optional<std::string> resolve(pid_t pid, int dirfd, std::string_view path) override {
    last_pid = pid;
    last_dirfd = dirfd;
    if (pid == 999) return std::nullopt;
    return (dirfd == AT_FDCWD ? std::string("/home/alice") : std::string("/dirfd")) + "/" + std::string(path);
  }
  pid_t last_pid = 0;
  int last_dirfd = 0;
};

std::vector<uint8_t> record(fst_event w, std::string_view path, std::string_view old_path = {}) {
  w.hdr.type = FST_REC_EVENT;
  w.hdr.version = FST_WIRE_VERSION;
  w.path_len = static_cast<uint16_t>(path.size());
  w.old_path_len = static_cast<uint16_t>(old_path.size());
  w.hdr.size = static_cast<uint32_t>(sizeof w + path.size() + old_path.size());
  std::vector<uint8_t> bytes(w.hdr.size);
  std::memcpy(bytes.data(), &w, sizeof w);
  // std::copy, not memcpy: an empty string_view's data() may be null (UBSan).
  std::copy(path.begin(), path.end(), bytes.begin() + sizeof w);
  std::copy(old_path.begin(), old_path.end(), bytes.begin() + sizeof w + path.size());
  return bytes;
}

fst_event base_event(uint16_t op) {
  fst_event w{};
  w.op = op;
  w.hdr.ktime_ns = 1000;
  w.actor.pid = 10;
  w.actor.tid = 11;
  w.actor.uid = 1000;
  w.actor.euid = 0;
  w.actor.gid = 100;
  w.actor.egid = 0;
  std::strcpy(w.actor.comm, "sudo");
  return w;
}

class DecoderTest : public ::testing::Test {
 protected:
  BootClock clock;
  FakeResolver resolver;
  DecodeContext ctx{clock, "bpf-test", &resolver};

  Event decode(const std::vector<uint8_t>& bytes) {
    auto r = decode_record(bytes, ctx);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return std::get<Event>(r.value());
  }
};

// Found by fuzz/decoder_fuzz.cc: a huge boot time overflowed the conversion (UB).
TEST_F(DecoderTest, ABootTimeBeyondAnyUptimeIsAnErrorNotAnOverflow) {
  fst_event w = base_event(FST_OP_CREATE);
  w.path_enc = FST_PATH_ABSOLUTE;
  for (uint64_t ktime : {uint64_t{1} << 62, uint64_t{8574853691542850837u}, ~uint64_t{0}}) {
    w.hdr.ktime_ns = ktime;
    auto r = decode_record(record(w, "/srv/x"), ctx);
    ASSERT_FALSE(r.ok()) << ktime;
    EXPECT_NE(r.error().message.find("beyond any uptime"), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(clock.to_realtime(~uint64_t{0}), INT64_MAX);
  EXPECT_EQ(clock.to_realtime(uint64_t{INT64_MAX}), INT64_MAX);
}

// Found by fuzz/decoder_fuzz.cc: error = INT32_MIN was negated (UB).
TEST_F(DecoderTest, AnErrorThatIsNoErrnoIsRefused) {
  fst_event w = base_event(FST_OP_CREATE);
  w.path_enc = FST_PATH_ABSOLUTE;
  for (int32_t error : {INT32_MIN, -4096, 1, INT32_MAX}) {
    w.error = error;
    auto r = decode_record(record(w, "/srv/x"), ctx);
    ASSERT_FALSE(r.ok()) << error;
    EXPECT_NE(r.error().message.find("is not a negative errno"), std::string::npos) << r.error().message;
  }
  w.error = -4095;
  EXPECT_EQ(decode(record(w, "/srv/x")).error, 4095);
}

TEST_F(DecoderTest, AbsolutePathAndKernelActor) {
  fst_event w = base_event(FST_OP_CREATE);
  w.flags = FST_EF_HAS_INODE;
  w.dev = 2049;
  w.ino = 77;
  w.path_enc = FST_PATH_ABSOLUTE;
  w.actor.valid = FST_AF_PPID | FST_AF_LOGINUID;
  w.actor.ppid = 9;
  w.actor.loginuid = 1001;
  std::string path("/srv/app/x\0garbage", 18);  // bpf_d_path: NUL inside the length
  Event e = decode(record(w, path));
  EXPECT_EQ(e.kind, EventKind::kCreate);
  EXPECT_EQ(e.path, "/srv/app/x");
  EXPECT_EQ(e.actor_source, ActorSource::kKernel);
  EXPECT_EQ(e.pid, 10);
  EXPECT_EQ(e.tid, 11);
  EXPECT_EQ(e.ppid, 9);
  EXPECT_EQ(e.uid, 1000u);
  EXPECT_EQ(e.euid, 0u);
  EXPECT_EQ(e.loginuid, 1001u);
  EXPECT_FALSE(e.sessionid.has_value());  // not marked valid
  EXPECT_EQ(e.comm, "sudo");
  EXPECT_EQ(e.dev, 2049u);
  EXPECT_EQ(e.ino, 77u);
  EXPECT_EQ(e.is_dir, false);
  EXPECT_EQ(e.backend, "bpf-test");
  EXPECT_EQ(e.time_ns, clock.to_realtime(1000));
}

TEST_F(DecoderTest, UnsetLoginUidIsNull) {
  fst_event w = base_event(FST_OP_DELETE);
  w.path_enc = FST_PATH_ABSOLUTE;
  w.actor.valid = FST_AF_LOGINUID;
  w.actor.loginuid = 4294967295U;
  EXPECT_FALSE(decode(record(w, "/x")).loginuid.has_value());
}

TEST_F(DecoderTest, ReversedComponentsAndRenameOldPath) {
  fst_event w = base_event(FST_OP_RENAME);
  w.path_enc = FST_PATH_REVERSED_COMPONENTS;
  w.old_path_enc = FST_PATH_REVERSED_COMPONENTS;
  std::string path("new\0b\0a\0", 8), old_path("old\0a\0", 6);
  Event e = decode(record(w, path, old_path));
  EXPECT_EQ(e.path, "/a/b/new");
  EXPECT_EQ(e.old_path, "/a/old");
  w.path_enc = FST_PATH_REVERSED_COMPONENTS;
  w.old_path_enc = FST_PATH_NONE;
  EXPECT_EQ(decode(record(w, "")).path, "/");
}

TEST_F(DecoderTest, PathsAsPassedAreResolvedAgainstCwdOrDirfd) {
  fst_event w = base_event(FST_OP_MKDIR);
  w.path_enc = FST_PATH_AS_PASSED;
  w.dirfd = AT_FDCWD;
  w.flags = FST_EF_IS_DIR;
  Event e = decode(record(w, "sub/dir"));
  EXPECT_EQ(e.path, "/home/alice/sub/dir");
  EXPECT_EQ(e.is_dir, true);
  EXPECT_EQ(resolver.last_pid, 10);

  w.dirfd = 5;
  EXPECT_EQ(decode(record(w, "x")).path, "/dirfd/x");
  EXPECT_EQ(resolver.last_dirfd, 5);
  EXPECT_EQ(decode(record(w, "/abs/x")).path, "/abs/x");
}

TEST_F(DecoderTest, ChmodChownAndFailure) {
  fst_event w = base_event(FST_OP_CHOWN);
  w.path_enc = FST_PATH_ABSOLUTE;
  w.flags = FST_EF_HAS_OLD_OWNER | FST_EF_HAS_NEW_UID;
  w.old_uid = 1000;
  w.old_gid = 1000;
  w.new_uid = 0;
  w.new_gid = 55;  // not marked valid: chown(path, 0, -1)
  w.error = -1;
  Event e = decode(record(w, "/f"));
  EXPECT_EQ(e.old_uid, 1000u);
  EXPECT_EQ(e.new_uid, 0u);
  EXPECT_FALSE(e.new_gid.has_value());
  EXPECT_EQ(e.error, 1);
}

TEST_F(DecoderTest, MalformedRecordsAreErrorsNotCrashes) {
  fst_event w = base_event(FST_OP_CREATE);
  w.path_enc = FST_PATH_ABSOLUTE;
  auto good = record(w, "/abc");
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
    EXPECT_FALSE(decode_record(cut, ctx).ok()) << n;
  }
  auto bad = good;
  reinterpret_cast<fst_event*>(bad.data())->path_len = 60000;
  EXPECT_FALSE(decode_record(bad, ctx).ok());
  bad = good;
  reinterpret_cast<fst_event*>(bad.data())->hdr.version = 99;
  EXPECT_FALSE(decode_record(bad, ctx).ok());
  bad = good;
  reinterpret_cast<fst_event*>(bad.data())->op = 200;
  EXPECT_FALSE(decode_record(bad, ctx).ok());
  bad = good;
  reinterpret_cast<fst_event*>(bad.data())->path_enc = 77;
  EXPECT_FALSE(decode_record(bad, ctx).ok());

  w.path_enc = FST_PATH_AS_PASSED;
  w.actor.pid = 999;  // process gone: cannot resolve
  EXPECT_FALSE(decode_record(record(w, "rel"), ctx).ok());
}

TEST_F(DecoderTest, ExecRecord) {
  fst_exec x{};
  x.hdr.type = FST_REC_EXEC;
  x.hdr.version = FST_WIRE_VERSION;
  x.pid = 321;
  std::string name = "/usr/bin/chown";
  x.filename_len = static_cast<uint16_t>(name.size());
  x.hdr.size = static_cast<uint32_t>(sizeof x + name.size());
  std::vector<uint8_t> bytes(x.hdr.size);
  std::memcpy(bytes.data(), &x, sizeof x);
  std::memcpy(bytes.data() + sizeof x, name.data(), name.size());
  auto r = decode_record(bytes, ctx);
  ASSERT_TRUE(r.ok());
  auto& exec = std::get<ExecRecord>(r.value());
  EXPECT_EQ(exec.pid, 321);
  EXPECT_EQ(exec.filename, name);
}

}  // namespace
}  // namespace fstrail

namespace fstrail {
namespace {

TEST_F(DecoderTest, EffectiveIdsUnknownAreNull) {
  fst_event w = base_event(FST_OP_CHMOD);
  w.path_enc = FST_PATH_ABSOLUTE;
  w.actor.valid = FST_AF_NO_EFFECTIVE_IDS;  // a syscall tracepoint: real ids only
  Event e = decode(record(w, "/srv/x"));
  EXPECT_EQ(e.uid, 1000u);
  EXPECT_EQ(e.gid, 100u);
  EXPECT_FALSE(e.euid.has_value());
  EXPECT_FALSE(e.egid.has_value());
}

TEST(ProcfsPathResolverTest, EmptyPathNamesTheFdItself) {
  ProcfsPathResolver resolver;
  // Our own fd 0..2 may be anything; open a directory and resolve the fd with no path.
  int fd = ::open("/tmp", O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  auto resolved = resolver.resolve(::getpid(), fd, "");
  ::close(fd);
  ASSERT_TRUE(resolved.has_value());
  EXPECT_EQ(*resolved, "/tmp");
}

}  // namespace
}  // namespace fstrail

namespace fstrail {
namespace {

std::vector<uint8_t> dirfd_record(std::string_view path, uint16_t claimed_len) {
  fst_dirfd d{};
  d.hdr.type = FST_REC_DIRFD;
  d.hdr.version = FST_WIRE_VERSION;
  d.pid = 77;
  d.fd = 5;
  d.dirfd = AT_FDCWD;
  d.path_len = claimed_len;
  d.hdr.size = static_cast<uint32_t>(sizeof d + path.size());
  std::vector<uint8_t> bytes(d.hdr.size);
  std::memcpy(bytes.data(), &d, sizeof d);
  std::memcpy(bytes.data() + sizeof d, path.data(), path.size());
  return bytes;
}

TEST_F(DecoderTest, DirFdRecordIsLeftUnresolved) {
  auto r = decode_record(dirfd_record("src/lib", 7), ctx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto& d = std::get<DirFdRecord>(r.value());
  EXPECT_EQ(d.pid, 77);
  EXPECT_EQ(d.fd, 5);
  EXPECT_EQ(d.dirfd, AT_FDCWD);
  EXPECT_EQ(d.path, "src/lib");
}

TEST_F(DecoderTest, DirFdRecordPathPastItsEndIsAnError) {
  EXPECT_FALSE(decode_record(dirfd_record("src", 200), ctx).ok());
}


// Kernel-read mode: the argument as written, NUL, the start directory leaf first.
TEST_F(DecoderTest, ArgumentJoinedToItsStartDirectoryLexically) {
  fst_event w = base_event(FST_OP_MKDIR);
  w.path_enc = FST_PATH_ARG_AT_DIR;
  w.actor.valid = FST_AF_PPID;
  std::string path("../b/./c//d\0work\0srv\0", 21);
  Event e = decode(record(w, path));
  EXPECT_EQ(e.path, "/srv/b/c/d");
  EXPECT_EQ(resolver.last_pid, 0);  // no resolver, no /proc
}

TEST_F(DecoderTest, AbsoluteArgumentStartsFromTheProcessRoot) {
  fst_event w = base_event(FST_OP_RENAME);
  w.path_enc = FST_PATH_ARG_AT_DIR;
  w.old_path_enc = FST_PATH_ARG_AT_DIR;
  std::string path("/data/new\0jail\0srv\0", 19);    // chroot at /srv/jail
  std::string old_path("old\0d\0watched\0", 14);      // relative to the cwd /watched/d
  Event e = decode(record(w, path, old_path));
  EXPECT_EQ(e.path, "/srv/jail/data/new");
  EXPECT_EQ(e.old_path, "/watched/d/old");
}

TEST_F(DecoderTest, ArgumentUnderATruncatedDirectoryIsNeverNamed) {
  fst_event w = base_event(FST_OP_CREATE);
  w.path_enc = FST_PATH_ARG_AT_DIR;
  w.flags = FST_EF_PATH_TRUNCATED;
  EXPECT_FALSE(decode_record(record(w, std::string("x\0deep\0", 8)), ctx).ok());
}

TEST_F(DecoderTest, ArgumentWithoutItsDirectoryIsMalformed) {
  fst_event w = base_event(FST_OP_DELETE);
  w.path_enc = FST_PATH_ARG_AT_DIR;
  EXPECT_FALSE(decode_record(record(w, "x"), ctx).ok());
}

std::vector<uint8_t> exe_record(uint32_t pid, std::string_view path, uint8_t truncated = 0) {
  fst_exe x{};
  x.hdr.type = FST_REC_EXE;
  x.hdr.version = FST_WIRE_VERSION;
  x.hdr.size = static_cast<uint32_t>(sizeof x + path.size());
  x.pid = pid;
  x.path_enc = FST_PATH_REVERSED_COMPONENTS;
  x.truncated = truncated;
  x.path_len = static_cast<uint16_t>(path.size());
  std::vector<uint8_t> bytes(x.hdr.size);
  std::memcpy(bytes.data(), &x, sizeof x);
  std::copy(path.begin(), path.end(), bytes.begin() + sizeof x);
  return bytes;
}

TEST_F(DecoderTest, KernelExeRecordNamesTheFileItself) {
  auto r = decode_record(exe_record(42, std::string("dash\0bin\0usr\0", 13)), ctx);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& exec = std::get<ExecRecord>(r.value());
  EXPECT_EQ(exec.pid, 42);
  EXPECT_TRUE(exec.from_kernel);
  EXPECT_EQ(exec.filename, "/usr/bin/dash");
  // A truncated walk does not name the file: unknown.
  auto t = decode_record(exe_record(43, std::string("dash\0bin\0", 9), 1), ctx);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(std::get<ExecRecord>(t.value()).filename, "");
}

TEST(JoinLexicallyTest, NormalisesWithoutTheFilesystem) {
  EXPECT_EQ(join_lexically("/", "/etc/passwd"), "/etc/passwd");
  EXPECT_EQ(join_lexically("/w", ""), "/w");
  EXPECT_EQ(join_lexically("/w", "."), "/w");
  EXPECT_EQ(join_lexically("/w/d", "../../../x"), "/x");
  EXPECT_EQ(join_lexically("/w", "link/../y"), "/w/y");  // a link is taken as written
  EXPECT_EQ(join_lexically("/w", "a//b/./c/"), "/w/a/b/c");
  EXPECT_EQ(join_lexically("/", ".."), "/");
  EXPECT_EQ(join_lexically("/w", "..."), "/w/...");
}

}  // namespace
}  // namespace fstrail
