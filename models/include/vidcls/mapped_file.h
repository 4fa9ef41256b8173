// A whole file mapped read-only into memory: the checkpoint and weight parsers see one byte
// buffer and copy tensor data out of it once; the clip cache hands out tensors that view it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace vidcls {

class MappedFile {
 public:
  // Throws vidcls::FormatError naming `path` and the system error when it cannot be opened or
  // mapped. An empty file maps to an empty buffer.
  explicit MappedFile(const std::string &path);
  ~MappedFile();
  MappedFile(const MappedFile &) = delete;
  MappedFile &operator=(const MappedFile &) = delete;

  const std::uint8_t *data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  const std::uint8_t *data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace vidcls
