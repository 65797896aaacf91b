#include "store/spool/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace fstrail::store {
namespace {

constexpr uint64_t kSegmentBytes = 64ull << 20;
constexpr size_t kRecordHeader = 8;  // u32 payload length, u32 crc32(payload)
constexpr size_t kReadChunk = 8u << 20;

uint32_t crc(std::string_view bytes) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

Status write_all(int fd, std::string_view bytes, const std::string& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("cannot write spool " + path);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
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

// The end of the last whole, checksummed record of a segment (a crash can leave a torn one).
uint64_t valid_prefix(const std::string& path, uint64_t& records_lost) {
  std::string data;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st{};
  fstat(fd, &st);
  data.resize(static_cast<size_t>(st.st_size));
  ssize_t n = ::pread(fd, data.data(), data.size(), 0);
  ::close(fd);
  if (n < 0) return 0;
  data.resize(static_cast<size_t>(n));
  uint64_t off = 0;
  while (off + kRecordHeader <= data.size()) {
    uint32_t len, sum;
    std::memcpy(&len, data.data() + off, 4);
    std::memcpy(&sum, data.data() + off + 4, 4);
    if (off + kRecordHeader + len > data.size() || crc(std::string_view(data).substr(off + kRecordHeader, len)) != sum)
      break;
    off += kRecordHeader + len;
  }
  if (off < data.size()) ++records_lost;
  return off;
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(std::string dir, uint64_t max_bytes) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return Error{fmt::format("cannot create spool directory {}: {} (choose another with --spool DIR)", dir,
                             ec.message()), ec.value()};
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
      if (name.size() == 24 && name.substr(20) == ".seg") out.push_back(std::stoull(std::string(name.substr(0, 20))));
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status Spool::recover() {
  std::lock_guard lock(mutex_);
  if (FILE* f = std::fopen((dir_ + "/cursor").c_str(), "r")) {
    unsigned long long seg = 0, off = 0;
    if (std::fscanf(f, "%llu %llu", &seg, &off) == 2) cursor_ = {seg, off};
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
    uint64_t valid = valid_prefix(path, corrupt_);
    if (::truncate(path.c_str(), static_cast<off_t>(valid)) != 0)
      return Error::from_errno("cannot repair spool segment " + path);
    bytes_ += valid;
    kept.push_back(seg);
    tail_segment_ = seg;
    tail_size_ = valid;
  }
  if (kept.empty()) {
    cursor_ = {std::max<uint64_t>(cursor_.segment, 1), 0};
    tail_segment_ = cursor_.segment;
    tail_size_ = 0;
  } else if (cursor_.segment < kept.front()) {
    cursor_ = {kept.front(), 0};
  }
  return Ok{};
}

Status Spool::open_tail(uint64_t segment) {
  if (tail_fd_ >= 0) ::close(tail_fd_);
  std::string path = segment_path(segment);
  tail_fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (tail_fd_ < 0) return Error::from_errno("cannot open spool segment " + path);
  struct stat st{};
  fstat(tail_fd_, &st);
  tail_segment_ = segment;
  tail_size_ = static_cast<uint64_t>(st.st_size);
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
  buffer_.clear();
  for (const auto& row : rows) {
    size_t start = buffer_.size();
    buffer_.append(kRecordHeader, '\0');
    buffer_.append(row);
    uint32_t len = static_cast<uint32_t>(buffer_.size() - start - kRecordHeader);
    if (bytes_ + buffer_.size() > max_bytes_) {
      buffer_.resize(start);
      ++overflow_;
      continue;
    }
    uint32_t sum = crc(std::string_view(buffer_).substr(start + kRecordHeader));
    std::memcpy(buffer_.data() + start, &len, 4);
    std::memcpy(buffer_.data() + start + 4, &sum, 4);
  }
  if (buffer_.empty()) return Ok{};
  if (tail_fd_ < 0 || tail_size_ >= kSegmentBytes) {
    uint64_t next = tail_fd_ < 0 && tail_size_ < kSegmentBytes ? tail_segment_ : tail_segment_ + 1;
    if (Status s = open_tail(next); !s) return s;
  }
  if (Status s = write_all(tail_fd_, buffer_, segment_path(tail_segment_)); !s) {
    // Disk full or failing: cut the partial record off so later appends stay readable.
    if (::ftruncate(tail_fd_, static_cast<off_t>(tail_size_)) != 0) tail_size_ = kSegmentBytes;  // rotate next time
    overflow_ += rows.size();
    return s;
  }
  if (::fdatasync(tail_fd_) != 0) return Error::from_errno("cannot fsync spool " + segment_path(tail_segment_));
  tail_size_ += buffer_.size();
  bytes_ += buffer_.size();
  return Ok{};
}

bool Spool::empty() {
  std::lock_guard lock(mutex_);
  return cursor_.segment > tail_segment_ || (cursor_.segment == tail_segment_ && cursor_.offset >= tail_size_);
}

uint64_t Spool::pending_bytes() {
  std::lock_guard lock(mutex_);
  return bytes_;
}

Result<RecordBatch> Spool::peek(size_t max_rows, SpoolPosition& next) {
  std::lock_guard lock(mutex_);
  RecordBatch rows;
  EventRecordView view;
  SpoolPosition pos = cursor_;
  std::string data;
  while (rows.size() < max_rows && pos.segment <= tail_segment_) {
    std::string path = segment_path(pos.segment);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) return Error::from_errno("cannot read spool " + path);
      if (pos.segment == tail_segment_) break;
      pos = {pos.segment + 1, 0};
      continue;
    }
    struct stat st{};
    fstat(fd, &st);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (pos.segment == tail_segment_) size = std::min(size, tail_size_);
    bool segment_done = false;
    while (rows.size() < max_rows) {
      uint64_t want = std::min<uint64_t>(kReadChunk, size - pos.offset);
      if (want == 0) {
        segment_done = true;
        break;
      }
      data.resize(want);
      ssize_t n = ::pread(fd, data.data(), want, static_cast<off_t>(pos.offset));
      if (n <= 0) break;
      data.resize(static_cast<size_t>(n));
      size_t off = 0;
      while (rows.size() < max_rows && off + kRecordHeader <= data.size()) {
        uint32_t len, sum;
        std::memcpy(&len, data.data() + off, 4);
        std::memcpy(&sum, data.data() + off + 4, 4);
        if (off + kRecordHeader + len > data.size()) break;
        std::string_view payload = std::string_view(data).substr(off + kRecordHeader, len);
        if (crc(payload) == sum && parse_record(payload, view)) rows.add(payload);
        else ++corrupt_;
        off += kRecordHeader + len;
      }
      if (off == 0) {  // a record larger than the rest of the segment: torn, skip the segment
        ++corrupt_;
        pos.offset = size;
        segment_done = true;
        break;
      }
      pos.offset += off;
    }
    ::close(fd);
    if (!segment_done && pos.offset < size) break;  // max_rows reached inside this segment
    if (pos.segment == tail_segment_) break;
    pos = {pos.segment + 1, 0};
  }
  next = pos;
  return rows;
}

Status Spool::commit(SpoolPosition next) {
  std::lock_guard lock(mutex_);
  // Once everything is replayed, retire the tail too: the next append starts a new segment.
  if (next.segment == tail_segment_ && next.offset >= tail_size_ && tail_size_ > 0) {
    if (tail_fd_ >= 0) ::close(tail_fd_);
    tail_fd_ = -1;
    next = {tail_segment_ + 1, 0};
    tail_segment_ = next.segment;
    tail_size_ = 0;
  }
  std::string tmp = dir_ + "/cursor.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::from_errno("cannot write spool cursor " + tmp);
  std::string text = fmt::format("{} {}\n", next.segment, next.offset);
  Status s = write_all(fd, text, tmp);
  if (s && ::fsync(fd) != 0) s = Error::from_errno("cannot fsync spool cursor " + tmp);
  ::close(fd);
  if (!s) return s;
  if (::rename(tmp.c_str(), (dir_ + "/cursor").c_str()) != 0) return Error::from_errno("cannot update spool cursor");
  fsync_dir(dir_);
  for (uint64_t seg = cursor_.segment; seg < next.segment; ++seg) {
    std::string path = segment_path(seg);
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0) {
      bytes_ -= std::min<uint64_t>(bytes_, static_cast<uint64_t>(st.st_size));
      ::unlink(path.c_str());
    }
  }
  cursor_ = next;
  return Ok{};
}

}  // namespace fstrail::store
