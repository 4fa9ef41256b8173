#include "zip_reader.h"

#include <utility>

#include "vidcls/errors.h"

namespace vidcls::detail {

namespace {

constexpr std::uint32_t kLocalHeaderSig = 0x04034b50;
constexpr std::uint32_t kCentralHeaderSig = 0x02014b50;
constexpr std::uint32_t kEndOfCentralDirSig = 0x06054b50;
constexpr std::uint32_t kZip64EndOfCentralDirSig = 0x06064b50;
constexpr std::uint32_t kZip64LocatorSig = 0x07064b50;
constexpr std::uint16_t kZip64ExtraId = 0x0001;

constexpr std::size_t kLocalHeaderSize = 30;
constexpr std::size_t kCentralHeaderSize = 46;
constexpr std::size_t kEndOfCentralDirSize = 22;
constexpr std::size_t kZip64EndOfCentralDirSize = 56;
constexpr std::size_t kZip64LocatorSize = 20;
constexpr std::size_t kMaxCommentSize = 0xffff;

std::uint16_t u16(const std::uint8_t *p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }

std::uint32_t u32(const std::uint8_t *p) {
  return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
         (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

std::uint64_t u64(const std::uint8_t *p) {
  return static_cast<std::uint64_t>(u32(p)) | (static_cast<std::uint64_t>(u32(p + 4)) << 32);
}

// True when [offset, offset + length) lies inside a buffer of `size` bytes.
bool fits(std::uint64_t offset, std::uint64_t length, std::size_t size) {
  return offset <= size && length <= size - offset;
}

}  // namespace

FormatError ZipReader::invalid(const std::string &problem) const {
  return FormatError(what_ + ": not a valid zip archive: " + problem);
}

ZipReader::Directory ZipReader::find_directory() const {
  if (size_ < kEndOfCentralDirSize) {
    throw invalid("truncated (" + std::to_string(size_) +
                  " bytes, no end of central directory)");
  }
  // The end-of-central-directory record sits before a comment of at most 64 KiB; scan back
  // for its signature.
  std::size_t eocd = size_;
  const std::size_t lowest = size_ - kEndOfCentralDirSize > kMaxCommentSize
                                 ? size_ - kEndOfCentralDirSize - kMaxCommentSize
                                 : 0;
  for (std::size_t pos = size_ - kEndOfCentralDirSize + 1; pos-- > lowest;) {
    if (u32(data_ + pos) == kEndOfCentralDirSig &&
        pos + kEndOfCentralDirSize + u16(data_ + pos + 20) <= size_) {
      eocd = pos;
      break;
    }
  }
  if (eocd == size_) throw invalid("no end of central directory record (truncated file?)");

  const std::uint8_t *e = data_ + eocd;
  Directory d{u16(e + 10), u32(e + 12), u32(e + 16)};
  if (u16(e + 4) != 0 || u16(e + 6) != 0) throw invalid("multi-disk archives are not supported");
  // Saturated fields mean the real values live in the zip64 end-of-central-directory record,
  // found through the locator just before the classic record.
  if (d.count == 0xffff || d.size == 0xffffffff || d.offset == 0xffffffff) {
    if (eocd < kZip64LocatorSize || u32(data_ + eocd - kZip64LocatorSize) != kZip64LocatorSig) {
      throw invalid("zip64 end of central directory locator missing");
    }
    const std::uint64_t rec = u64(data_ + eocd - kZip64LocatorSize + 8);
    if (!fits(rec, kZip64EndOfCentralDirSize, size_) ||
        u32(data_ + rec) != kZip64EndOfCentralDirSig) {
      throw invalid("zip64 end of central directory record out of range");
    }
    const std::uint8_t *z = data_ + rec;
    d = {u64(z + 32), u64(z + 40), u64(z + 48)};
  }
  if (!fits(d.offset, d.size, size_)) {
    throw invalid("central directory (offset " + std::to_string(d.offset) + ", " +
                  std::to_string(d.size) + " bytes) out of range of the " +
                  std::to_string(size_) + "-byte file");
  }
  // Every record takes at least 46 bytes, so the count cannot ask for more than that.
  if (d.count > d.size / kCentralHeaderSize) {
    throw invalid("central directory claims " + std::to_string(d.count) + " entries in " +
                  std::to_string(d.size) + " bytes");
  }
  return d;
}

std::uint64_t ZipReader::read_record(const std::uint8_t *p, std::uint64_t left,
                                     std::uint64_t i) {
  if (left < kCentralHeaderSize || u32(p) != kCentralHeaderSig) {
    throw invalid("central directory record " + std::to_string(i) + " is truncated or corrupt");
  }
  ZipEntry entry;
  entry.flags = u16(p + 8);
  entry.method = u16(p + 10);
  entry.compressed_size = u32(p + 20);
  entry.size = u32(p + 24);
  const std::size_t name_len = u16(p + 28);
  const std::size_t extra_len = u16(p + 30);
  const std::size_t comment_len = u16(p + 32);
  entry.local_header_offset = u32(p + 42);
  const std::uint64_t record = kCentralHeaderSize + name_len + extra_len + comment_len;
  if (record > left) {
    throw invalid("central directory record " + std::to_string(i) + " overruns the directory");
  }
  entry.name.assign(reinterpret_cast<const char *>(p + kCentralHeaderSize), name_len);

  // zip64 extra field: 64-bit values, in this order, for exactly the saturated fields.
  const std::uint8_t *x = p + kCentralHeaderSize + name_len;
  std::size_t x_left = extra_len;
  while (x_left >= 4) {
    const std::uint16_t id = u16(x);
    const std::size_t len = u16(x + 2);
    if (len > x_left - 4) throw invalid("extra field of '" + entry.name + "' overruns its record");
    if (id == kZip64ExtraId) {
      const std::uint8_t *v = x + 4;
      std::size_t v_left = len;
      auto take = [&](std::uint64_t &field) {
        if (field != 0xffffffff) return;
        if (v_left < 8) throw invalid("zip64 extra field of '" + entry.name + "' is truncated");
        field = u64(v);
        v += 8;
        v_left -= 8;
      };
      take(entry.size);
      take(entry.compressed_size);
      take(entry.local_header_offset);
    }
    x += 4 + len;
    x_left -= 4 + len;
  }
  if (!index_.emplace(entry.name, entries_.size()).second) {
    throw invalid("duplicate entry '" + entry.name + "'");
  }
  entries_.push_back(std::move(entry));
  return record;
}

ZipReader::ZipReader(const std::uint8_t *data, std::size_t size, std::string what)
    : data_(data), size_(size), what_(std::move(what)) {
  const Directory d = find_directory();
  entries_.reserve(d.count);
  const std::uint8_t *p = data_ + d.offset;
  std::uint64_t left = d.size;
  for (std::uint64_t i = 0; i < d.count; ++i) {
    const std::uint64_t record = read_record(p, left, i);
    p += record;
    left -= record;
  }
}

const ZipEntry *ZipReader::find(const std::string &name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

ByteSpan ZipReader::read(const ZipEntry &entry) const {
  if (entry.flags & 0x1) {
    throw FormatError(what_ + ": zip entry '" + entry.name + "' is encrypted");
  }
  if (entry.method != 0) {
    throw FormatError(what_ + ": zip entry '" + entry.name + "' is compressed (method " +
                      std::to_string(entry.method) +
                      "); torch.save stores entries uncompressed, so this archive was repacked");
  }
  if (entry.compressed_size != entry.size) {
    throw FormatError(what_ + ": stored zip entry '" + entry.name + "' has compressed size " +
                      std::to_string(entry.compressed_size) + " != size " +
                      std::to_string(entry.size));
  }
  const std::uint64_t off = entry.local_header_offset;
  if (!fits(off, kLocalHeaderSize, size_) || u32(data_ + off) != kLocalHeaderSig) {
    throw FormatError(what_ + ": local header of zip entry '" + entry.name +
                      "' is out of range or corrupt");
  }
  // The local header's own name and extra lengths count here; torch pads the extra field so
  // that data starts on a 64-byte boundary.
  const std::uint64_t begin =
      off + kLocalHeaderSize + u16(data_ + off + 26) + u16(data_ + off + 28);
  if (!fits(begin, entry.size, size_)) {
    throw FormatError(what_ + ": data of zip entry '" + entry.name + "' (" +
                      std::to_string(entry.size) + " bytes at offset " + std::to_string(begin) +
                      ") is out of range of the " + std::to_string(size_) +
                      "-byte file (truncated?)");
  }
  return ByteSpan{data_ + begin, static_cast<std::size_t>(entry.size)};
}

}  // namespace vidcls::detail
