// A read-only view of the zip archives that torch.save writes: entries are STORED (not
// compressed), sizes and offsets may sit in zip64 extra fields. Private to libvidcls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "vidcls/errors.h"

namespace vidcls::detail {

struct ZipEntry {
  std::string name;
  std::uint16_t method = 0;  // 0 = stored, 8 = deflate, ...
  std::uint16_t flags = 0;
  std::uint64_t size = 0;             // uncompressed size
  std::uint64_t compressed_size = 0;  // equals `size` for a stored entry
  std::uint64_t local_header_offset = 0;
};

struct ByteSpan {
  const std::uint8_t *data = nullptr;
  std::size_t size = 0;
};

// Parses the central directory of an archive held in memory; the buffer must outlive the
// reader. Throws vidcls::FormatError naming `what` for anything that is not a well-formed zip.
class ZipReader {
 public:
  ZipReader(const std::uint8_t *data, std::size_t size, std::string what);

  const std::vector<ZipEntry> &entries() const { return entries_; }

  // nullptr when there is no entry with that exact name.
  const ZipEntry *find(const std::string &name) const;

  // The bytes of a stored entry, bounds-checked against the buffer. Throws FormatError for a
  // compressed or encrypted entry.
  ByteSpan read(const ZipEntry &entry) const;

 private:
  // Where the central directory is: its entry count, size and offset (zip64 followed).
  struct Directory {
    std::uint64_t count, size, offset;
  };
  Directory find_directory() const;
  // Reads the central directory record at `p` (`left` bytes of the directory remain) into
  // entries_; returns its size.
  std::uint64_t read_record(const std::uint8_t *p, std::uint64_t left, std::uint64_t i);
  FormatError invalid(const std::string &problem) const;
  const std::uint8_t *data_;
  std::size_t size_;
  std::string what_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> position in entries_
};

}  // namespace vidcls::detail
