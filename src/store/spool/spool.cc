#include "store/spool/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include <fmt/format.h>

namespace fstrail::store {
namespace {

constexpr uint64_t kSegmentBytes = 64ull << 20;
constexpr size_t kReadChunk = 8u << 20;
constexpr uint32_t kMaxRecord = 16u << 20;

// Segment header, written twice at the start of the segment and rewritten after every append:
// u32 magic, u32 version, u64 segment number, u64 records written, u32 crc32 of the 24 bytes
// before it, u32 zero. The second copy survives damage to the first.
constexpr uint32_t kSegmentMagic = 0x32535346;  // "FSS2"
constexpr uint32_t kSegmentVersion = 2;
constexpr size_t kHeaderCopy = 32;
constexpr uint64_t kSegmentHeader = 2 * kHeaderCopy;

// Record frame: u32 magic, u32 payload length, u64 record number in the segment, u32 crc32 of
// length, number and payload; then the payload (store/record.h).
constexpr uint32_t kRecordMagic = 0x52545346;  // "FSTR"
constexpr size_t kRecordHeader = 20;

uint32_t load32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

uint32_t crc(uint32_t seed, std::string_view bytes) {
  return static_cast<uint32_t>(
      crc32(seed, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

uint32_t record_crc(const char* header, std::string_view payload) {
  return crc(crc(0, std::string_view(header + 4, 12)), payload);
}

void put_header(char* out, uint64_t segment, uint64_t records) {
  char copy[kHeaderCopy] = {};
  std::memcpy(copy, &kSegmentMagic, 4);
  std::memcpy(copy + 4, &kSegmentVersion, 4);
  std::memcpy(copy + 8, &segment, 8);
  std::memcpy(copy + 16, &records, 8);
  uint32_t sum = crc(0, std::string_view(copy, 24));
  std::memcpy(copy + 24, &sum, 4);
  std::memcpy(out, copy, kHeaderCopy);
  std::memcpy(out + kHeaderCopy, copy, kHeaderCopy);
}

// The record count of a segment's header, from whichever copy checks (nullopt: neither does).
std::optional<uint64_t> read_header(int fd, uint64_t segment) {
  char buf[kSegmentHeader];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  std::optional<uint64_t> records;
  for (size_t c = 0; c < 2; ++c) {
    if (n < static_cast<ssize_t>((c + 1) * kHeaderCopy)) break;
    const char* copy = buf + c * kHeaderCopy;
    if (load32(copy) != kSegmentMagic || load32(copy + 4) != kSegmentVersion || load64(copy + 8) != segment ||
        load32(copy + 24) != crc(0, std::string_view(copy, 24)))
      continue;
    records = std::max(records.value_or(0), load64(copy + 16));
  }
  return records;
}

Status write_all_at(int fd, std::string_view bytes, uint64_t offset, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("cannot write spool " + path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Ok{};
}

void fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

Status make_private_dirs(const std::string& dir) {
  if (dir.empty()) return Ok{};
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string part = dir.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return Error{fmt::format("cannot create spool directory {}: {} (choose another with --spool DIR)", part,
                               std::strerror(errno)),
                   errno};
  }
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Error{fmt::format("cannot use spool directory {}: not a directory (choose another with --spool DIR)", dir),
                 ENOTDIR};
  return Ok{};
}

Result<std::unique_ptr<Spool>> Spool::open(std::string dir, uint64_t max_bytes) {
  if (Status s = make_private_dirs(dir); !s) return s.error();
  std::unique_ptr<Spool> spool(new Spool(std::move(dir), max_bytes));
  if (Status s = spool->recover(); !s) return s.error();
  return spool;
}

Spool::~Spool() {
  if (tail_fd_ >= 0) ::close(tail_fd_);
}

std::string Spool::segment_path(uint64_t segment) const { return fmt::format("{}/{:020}.seg", dir_, segment); }

std::vector<uint64_t> Spool::segments() const {
  std::vector<uint64_t> out;
  if (DIR* d = opendir(dir_.c_str())) {
    while (dirent* ent = readdir(d)) {
      std::string_view name = ent->d_name;
      if (name.size() == 24 && name.substr(20) == ".seg" &&
          name.substr(0, 20).find_first_not_of("0123456789") == std::string_view::npos)
        out.push_back(std::stoull(std::string(name.substr(0, 20))));
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status Spool::recover() {
  std::lock_guard lock(mutex_);
  if (FILE* f = std::fopen((dir_ + "/cursor").c_str(), "r")) {
    unsigned long long seg = 0, off = 0, rec = 0;
    long long lost_id = 0, lost_time = 0;
    int n = std::fscanf(f, "%llu %llu %llu %lld %lld", &seg, &off, &rec, &lost_id, &lost_time);
    if (n >= 2) cursor_ = {seg, off, n >= 3 ? rec : 0};
    if (n == 5) pending_lost_ = LostMark{lost_id, lost_time};
    std::fclose(f);
  }
  std::vector<uint64_t> kept;
  bytes_ = 0;
  for (uint64_t seg : segments()) {
    std::string path = segment_path(seg);
    if (seg < cursor_.segment) {
      ::unlink(path.c_str());
      continue;
    }
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0) bytes_ += static_cast<uint64_t>(st.st_size);
    kept.push_back(seg);
  }
  if (kept.empty()) {
    cursor_ = {std::max<uint64_t>(cursor_.segment, 1), 0, 0};
    tail_segment_ = cursor_.segment;
  } else {
    if (cursor_.segment < kept.front()) cursor_ = {kept.front(), 0, 0};
    // A segment of an earlier run may end in a torn record: appends go to a new one, and the
    // reader accounts for the old one's tail like for any other damage.
    tail_segment_ = kept.back() + 1;
  }
  tail_size_ = 0;
  tail_records_ = 0;
  return Ok{};
}

Status Spool::write_header(uint64_t records) {
  char header[kSegmentHeader];
  put_header(header, tail_segment_, records);
  return write_all_at(tail_fd_, std::string_view(header, sizeof header), 0, segment_path(tail_segment_));
}

Status Spool::open_tail(uint64_t segment) {
  if (tail_fd_ >= 0) ::close(tail_fd_);
  std::string path = segment_path(segment);
  tail_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (tail_fd_ < 0) return Error::from_errno("cannot create spool segment " + path);
  tail_segment_ = segment;
  tail_size_ = 0;
  tail_records_ = 0;
  if (Status s = write_header(0); !s) {
    ::close(tail_fd_);
    tail_fd_ = -1;
    ::unlink(path.c_str());
    return s;
  }
  tail_size_ = kSegmentHeader;
  bytes_ += kSegmentHeader;
  fsync_dir(dir_);
  return Ok{};
}

Status Spool::append(std::span<const StoredEvent> rows) {
  RecordBatch batch;
  for (const auto& row : rows) batch.add(row.event, row.host, row.event_id);
  auto views = batch.views();
  return append(views);
}

Status Spool::append(std::span<const std::string_view> rows) {
  std::lock_guard lock(mutex_);
  if (tail_fd_ < 0 || tail_size_ >= kSegmentBytes) {
    uint64_t next = tail_fd_ < 0 && tail_size_ == 0 ? tail_segment_ : tail_segment_ + 1;
    if (Status s = open_tail(next); !s) {
      overflow_ += rows.size();
      return s;
    }
  }
  buffer_.clear();
  uint64_t records = tail_records_;
  for (const auto& row : rows) {
    size_t start = buffer_.size();
    if (row.size() > kMaxRecord || bytes_ + start + kRecordHeader + row.size() > max_bytes_) {
      ++overflow_;
      continue;
    }
    uint32_t len = static_cast<uint32_t>(row.size());
    buffer_.append(kRecordHeader, '\0');
    std::memcpy(buffer_.data() + start, &kRecordMagic, 4);
    std::memcpy(buffer_.data() + start + 4, &len, 4);
    std::memcpy(buffer_.data() + start + 8, &records, 8);
    uint32_t sum = record_crc(buffer_.data() + start, row);
    std::memcpy(buffer_.data() + start + 16, &sum, 4);
    buffer_.append(row);
    ++records;
  }
  if (buffer_.empty()) return Ok{};
  std::string path = segment_path(tail_segment_);
  Status s = write_all_at(tail_fd_, buffer_, tail_size_, path);
  if (s) s = write_header(records);
  if (s && ::fdatasync(tail_fd_) != 0) s = Error::from_errno("cannot fsync spool " + path);
  if (!s) {
    // Disk full or failing: cut the partial records off and restore the count so later
    // appends stay readable; these events are dropped and counted.
    if (::ftruncate(tail_fd_, static_cast<off_t>(tail_size_)) != 0 || !write_header(tail_records_))
      tail_size_ = kSegmentBytes;  // rotate next time
    overflow_ += records - tail_records_;
    return s;
  }
  tail_size_ += buffer_.size();
  bytes_ += buffer_.size();
  tail_records_ = records;
  return Ok{};
}

bool Spool::empty() {
  std::lock_guard lock(mutex_);
  return cursor_.segment > tail_segment_ ||
         (cursor_.segment == tail_segment_ && std::max(cursor_.offset, kSegmentHeader) >= tail_size_);
}

uint64_t Spool::pending_bytes() {
  std::lock_guard lock(mutex_);
  return bytes_;
}

void Spool::quarantine(int fd, uint64_t segment, uint64_t from, uint64_t to, SpoolPosition& pos) {
  if (to <= from) return;
  pos.bad_bytes += to - from;
  // Named by where the bytes were: a peek repeated after a failed insert rewrites the same file.
  std::string qdir = quarantine_dir();
  std::string path = fmt::format("{}/corrupt-{:020}-{:020}.bin", qdir, segment, from);
  if (!make_private_dirs(qdir)) return;
  int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) return;
  std::string chunk;
  for (uint64_t off = from; off < to;) {
    chunk.resize(static_cast<size_t>(std::min<uint64_t>(kReadChunk, to - off)));
    ssize_t n = ::pread(fd, chunk.data(), chunk.size(), static_cast<off_t>(off));
    if (n <= 0) break;
    if (!write_all_at(out, std::string_view(chunk.data(), static_cast<size_t>(n)), off - from, path)) break;
    off += static_cast<uint64_t>(n);
  }
  ::fsync(out);
  ::close(out);
}

Result<bool> Spool::read_segment(int fd, uint64_t size, bool live_tail, size_t max_rows, RecordBatch& rows,
                                 SpoolPosition& pos) {
  EventRecordView view;
  std::string data;
  constexpr uint64_t kNoBadRun = UINT64_MAX;
  uint64_t bad_from = kNoBadRun;  // start of a run of bytes that are no record
  pos.offset = std::max(pos.offset, kSegmentHeader);
  size_t need = kReadChunk;
  while (rows.size() < max_rows && pos.offset < size) {
    uint64_t base = pos.offset;
    size_t want = static_cast<size_t>(std::min<uint64_t>(std::max(need, kReadChunk), size - base));
    data.resize(want);
    ssize_t got = ::pread(fd, data.data(), want, static_cast<off_t>(base));
    if (got < 0) return Error::from_errno("cannot read spool " + segment_path(pos.segment));
    data.resize(static_cast<size_t>(got));
    if (static_cast<size_t>(got) < want) size = base + static_cast<uint64_t>(got);  // shrank under us
    const bool reaches_end = base + data.size() == size;
    need = kReadChunk;
    size_t i = 0;
    while (rows.size() < max_rows && i < data.size()) {
      auto bad_here = [&] {
        if (bad_from == kNoBadRun) bad_from = base + i;
        // Resync: the next place the record magic's first byte appears.
        const void* hit = std::memchr(data.data() + i + 1, static_cast<char>(kRecordMagic & 0xff), data.size() - i - 1);
        i = hit ? static_cast<size_t>(static_cast<const char*>(hit) - data.data()) : data.size();
      };
      if (i + kRecordHeader > data.size()) {
        if (reaches_end) {
          bad_here();
          continue;
        }
        break;
      }
      const char* h = data.data() + i;
      uint32_t len = load32(h + 4);
      if (load32(h) != kRecordMagic || len > kMaxRecord) {
        bad_here();
        continue;
      }
      if (i + kRecordHeader + len > data.size()) {
        if (reaches_end) {
          bad_here();
          continue;
        }
        need = kRecordHeader + len;
        break;
      }
      std::string_view payload(h + kRecordHeader, len);
      if (load32(h + 16) != record_crc(h, payload) || !parse_record(payload, view)) {
        bad_here();
        continue;
      }
      if (bad_from != kNoBadRun) {
        quarantine(fd, pos.segment, bad_from, base + i, pos);
        bad_from = kNoBadRun;
      }
      uint64_t number = load64(h + 8);
      if (number >= pos.record) {
        pos.lost += number - pos.record;
        pos.record = number + 1;
      }
      rows.add(payload);
      i += kRecordHeader + len;
    }
    // A bad run that goes on into the next chunk keeps its start (bad_from) across the reload.
    pos.offset = base + i;
  }
  if (pos.offset < size) return false;  // max_rows reached inside the segment
  if (bad_from != kNoBadRun) quarantine(fd, pos.segment, bad_from, size, pos);
  if (live_tail) {
    if (tail_records_ > pos.record) pos.lost += tail_records_ - pos.record;
    pos.record = std::max(pos.record, tail_records_);
    return true;
  }
  if (auto written = read_header(fd, pos.segment)) {
    if (*written > pos.record) pos.lost += *written - pos.record;
    pos.record = std::max(pos.record, *written);
  } else {
    pos.lost_unknown = true;
  }
  return true;
}

Result<RecordBatch> Spool::peek(size_t max_rows, SpoolPosition& next) {
  std::lock_guard lock(mutex_);
  RecordBatch rows;
  SpoolPosition pos = cursor_;
  pos.lost = 0;
  pos.lost_unknown = false;
  pos.bad_bytes = 0;
  while (rows.size() < max_rows && pos.segment <= tail_segment_) {
    const bool live_tail = pos.segment == tail_segment_;
    std::string path = segment_path(pos.segment);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) return Error::from_errno("cannot read spool " + path);
      if (live_tail) break;
      pos.lost_unknown = true;  // a segment between the cursor and the tail is gone
      pos = {pos.segment + 1, 0, 0, pos.lost, pos.lost_unknown, pos.bad_bytes};
      continue;
    }
    struct stat st{};
    fstat(fd, &st);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (live_tail) size = std::min(size, tail_size_);
    auto done = read_segment(fd, size, live_tail, max_rows, rows, pos);
    ::close(fd);
    if (!done) return done.error();
    if (!*done || live_tail) break;
    pos = {pos.segment + 1, 0, 0, pos.lost, pos.lost_unknown, pos.bad_bytes};
  }
  next = pos;
  return rows;
}

Status Spool::write_cursor(const SpoolPosition& pos, const std::optional<LostMark>& mark) {
  std::string tmp = dir_ + "/cursor.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::from_errno("cannot write spool cursor " + tmp);
  std::string text = fmt::format("{} {} {}", pos.segment, pos.offset, pos.record);
  if (mark) text += fmt::format(" {} {}", mark->event_id, mark->time_ns);
  text += '\n';
  Status s = write_all_at(fd, text, 0, tmp);
  if (s && ::fsync(fd) != 0) s = Error::from_errno("cannot fsync spool cursor " + tmp);
  ::close(fd);
  if (!s) return s;
  if (::rename(tmp.c_str(), (dir_ + "/cursor").c_str()) != 0) return Error::from_errno("cannot update spool cursor");
  fsync_dir(dir_);
  return Ok{};
}

std::optional<Spool::LostMark> Spool::pending_lost() {
  std::lock_guard lock(mutex_);
  return pending_lost_;
}

Status Spool::set_pending_lost(LostMark mark) {
  std::lock_guard lock(mutex_);
  if (Status s = write_cursor(cursor_, mark); !s) return s;
  pending_lost_ = mark;
  return Ok{};
}

Status Spool::commit(SpoolPosition next) {
  std::lock_guard lock(mutex_);
  lost_ += next.lost;
  lost_unknown_ = lost_unknown_ || next.lost_unknown;
  bad_bytes_ += next.bad_bytes;
  // Once everything is replayed, retire the tail too: the next append starts a new segment.
  if (next.segment == tail_segment_ && next.offset >= tail_size_ && tail_size_ > 0) {
    if (tail_fd_ >= 0) ::close(tail_fd_);
    tail_fd_ = -1;
    next = {tail_segment_ + 1, 0, 0};
    tail_segment_ = next.segment;
    tail_size_ = 0;
    tail_records_ = 0;
  }
  if (Status s = write_cursor(next, std::nullopt); !s) return s;
  pending_lost_.reset();
  for (uint64_t seg = cursor_.segment; seg < next.segment; ++seg) {
    std::string path = segment_path(seg);
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0) {
      bytes_ -= std::min<uint64_t>(bytes_, static_cast<uint64_t>(st.st_size));
      ::unlink(path.c_str());
    }
  }
  cursor_ = {next.segment, next.offset, next.record};
  return Ok{};
}

}  // namespace fstrail::store
