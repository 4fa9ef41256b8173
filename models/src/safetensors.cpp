#include "vidcls/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <stdexcept>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "vidcls/mapped_file.h"
#include "vidcls/errors.h"

namespace vidcls {

namespace {

// The reference implementation refuses larger headers; so do we, before allocating one.
constexpr std::uint64_t kMaxHeaderSize = 100'000'000;
constexpr std::size_t kMaxDims = 64;
// Root object -> tensor entry -> shape array; anything deeper is not a safetensors header.
constexpr std::size_t kMaxJsonDepth = 16;
const char *const kMetadataKey = "__metadata__";

struct Dtype {
  const char *name;
  torch::ScalarType type;
  std::size_t itemsize;
};

constexpr Dtype kDtypes[] = {
    {"F64", torch::kDouble, 8},    {"F32", torch::kFloat, 4}, {"F16", torch::kHalf, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kLong, 8},  {"I32", torch::kInt, 4},
    {"I16", torch::kShort, 2},     {"I8", torch::kChar, 1},   {"U8", torch::kByte, 1},
    {"BOOL", torch::kBool, 1},
};

const Dtype *find_dtype(const std::string &name) {
  for (const Dtype &d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const Dtype *find_dtype(torch::ScalarType type) {
  for (const Dtype &d : kDtypes) {
    if (type == d.type) return &d;
  }
  return nullptr;
}

struct Record {
  std::string name;
  const Dtype *dtype = nullptr;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

struct Header {
  std::map<std::string, std::string> metadata;
  std::vector<Record> records;  // sorted by data offset
};

std::uint64_t read_u64_le(const std::uint8_t *p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Checks the 8-byte length against what follows it; returns it as a size.
std::size_t checked_header_length(std::uint64_t n, std::uint64_t available,
                                  const std::string &what) {
  if (n > available) {
    throw FormatError(what + ": safetensors header length " + std::to_string(n) +
                      " overruns the file (" + std::to_string(available) +
                      " bytes follow the length)");
  }
  if (n > kMaxHeaderSize) {
    throw FormatError(what + ": safetensors header length " + std::to_string(n) +
                      " exceeds the limit of " + std::to_string(kMaxHeaderSize) + " bytes");
  }
  return static_cast<std::size_t>(n);
}

// nlohmann::json keeps the last of duplicate keys without a word; a parser callback sees every
// key as it is read, so a header that names a tensor twice is refused instead.
nlohmann::json parse_json(const char *text, std::size_t size, const std::string &what) {
  std::vector<std::set<std::string>> open;  // one key set per open object or array
  auto callback = [&](int, nlohmann::json::parse_event_t event, nlohmann::json &parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (open.size() >= kMaxJsonDepth) {
          throw FormatError(what + ": safetensors JSON header nests deeper than " +
                            std::to_string(kMaxJsonDepth) + " levels");
        }
        open.emplace_back();
        break;
      case Event::object_end:
      case Event::array_end:
        if (!open.empty()) open.pop_back();
        break;
      case Event::key:
        if (!open.empty() && !open.back().insert(parsed.get<std::string>()).second) {
          throw FormatError(what + ": duplicate key '" + parsed.get<std::string>() +
                            "' in the safetensors JSON header");
        }
        break;
      case Event::value:
        break;
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text, text + size, callback);
  } catch (const nlohmann::json::exception &e) {
    throw FormatError(what + ": safetensors header is not valid JSON: " + e.what());
  }
}

std::vector<std::int64_t> parse_shape(const nlohmann::json &j, const std::string &where) {
  if (!j.is_array()) throw FormatError(where + ": \"shape\" is not an array");
  if (j.size() > kMaxDims) {
    throw FormatError(where + ": \"shape\" has " + std::to_string(j.size()) +
                      " dimensions, more than the " + std::to_string(kMaxDims) + " supported");
  }
  std::vector<std::int64_t> shape;
  shape.reserve(j.size());
  // The product of the sizes (empty dimensions counted as 1) bounds every contiguous stride, so
  // it must fit in int64 for LibTorch to describe the tensor at all.
  std::uint64_t extent = 1;
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  for (const nlohmann::json &d : j) {
    if (d.is_number_integer() && !d.is_number_unsigned()) {
      throw FormatError(where + ": \"shape\" has a negative dimension " + d.dump());
    }
    if (!d.is_number_unsigned()) {
      throw FormatError(where + ": \"shape\" holds " + d.dump() + ", not an integer");
    }
    const std::uint64_t v = d.get<std::uint64_t>();
    const std::uint64_t f = std::max<std::uint64_t>(v, 1);
    if (v > kMax || extent > kMax / f) {
      throw FormatError(where + ": \"shape\" " + j.dump() + " overflows 64-bit sizes");
    }
    extent *= f;
    shape.push_back(static_cast<std::int64_t>(v));
  }
  return shape;
}

std::uint64_t numel(const std::vector<std::int64_t> &shape) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape) n *= static_cast<std::uint64_t>(d);  // bounded by parse_shape
  return n;
}

Record parse_record(const std::string &name, const nlohmann::json &j, const std::string &what) {
  const std::string where = what + ": tensor '" + name + "'";
  if (!j.is_object()) throw FormatError(where + ": entry is not a JSON object");
  for (const char *field : {"dtype", "shape", "data_offsets"}) {
    if (!j.contains(field)) {
      throw FormatError(where + ": missing field \"" + std::string(field) + "\"");
    }
  }
  Record r;
  r.name = name;
  const nlohmann::json &dtype = j["dtype"];
  if (!dtype.is_string()) throw FormatError(where + ": \"dtype\" is not a string");
  r.dtype = find_dtype(dtype.get<std::string>());
  if (r.dtype == nullptr) {
    throw FormatError(where + ": unknown or unsupported dtype " + dtype.dump());
  }
  r.shape = parse_shape(j["shape"], where);

  const nlohmann::json &offsets = j["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    throw FormatError(where + ": \"data_offsets\" is not a pair of non-negative integers");
  }
  r.begin = offsets[0].get<std::uint64_t>();
  r.end = offsets[1].get<std::uint64_t>();
  if (r.end < r.begin) {
    throw FormatError(where + ": data_offsets [" + std::to_string(r.begin) + ", " +
                      std::to_string(r.end) + "] end before they begin");
  }
  // numel fits in int64 (parse_shape), but numel * itemsize may not.
  const std::uint64_t n = numel(r.shape);
  if (n > std::numeric_limits<std::uint64_t>::max() / r.dtype->itemsize ||
      n * r.dtype->itemsize != r.end - r.begin) {
    throw FormatError(where + ": byte count " + std::to_string(r.end - r.begin) +
                      " does not match dtype " + r.dtype->name + " x shape " + j["shape"].dump());
  }
  return r;
}

Header parse_header(const char *text, std::size_t size, std::uint64_t data_size,
                    const std::string &what) {
  const nlohmann::json j = parse_json(text, size, what);
  if (!j.is_object()) throw FormatError(what + ": safetensors JSON header is not an object");

  Header h;
  for (const auto &[name, value] : j.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) throw FormatError(what + ": \"__metadata__\" is not an object");
      for (const auto &[key, v] : value.items()) {
        if (!v.is_string()) {
          throw FormatError(what + ": \"__metadata__\" value of '" + key + "' is not a string");
        }
        h.metadata.emplace(key, v.get<std::string>());
      }
      continue;
    }
    h.records.push_back(parse_record(name, value, what));
  }

  std::sort(h.records.begin(), h.records.end(), [](const Record &a, const Record &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  // The data section must be covered exactly, in offset order, without gaps or overlaps.
  std::uint64_t covered = 0;
  const Record *previous = nullptr;
  for (const Record &r : h.records) {
    if (r.end > data_size) {
      throw FormatError(what + ": tensor '" + r.name + "' data_offsets [" +
                        std::to_string(r.begin) + ", " + std::to_string(r.end) +
                        "] are out of range of the " + std::to_string(data_size) +
                        "-byte data section");
    }
    if (r.begin < covered) {
      throw FormatError(what + ": tensor '" + r.name + "' data overlaps tensor '" + previous->name +
                        "' at byte " + std::to_string(r.begin));
    }
    if (r.begin > covered) {
      throw FormatError(what + ": gap in the data section: bytes [" + std::to_string(covered) +
                        ", " + std::to_string(r.begin) + ") belong to no tensor");
    }
    covered = r.end;
    previous = &r;
  }
  if (covered != data_size) {
    throw FormatError(what + ": gap in the data section: bytes [" + std::to_string(covered) + ", " +
                      std::to_string(data_size) + ") belong to no tensor");
  }
  return h;
}

// Owning tensors copy their bytes out of `data`; views alias it where it is aligned for their
// dtype (LibTorch's kernels assume aligned elements) and copy otherwise.
SafetensorsFile read_tensors(const std::uint8_t *data, std::size_t size, const std::string &what,
                             bool views) {
  if (size < 8) {
    throw FormatError(what + ": truncated safetensors file: " + std::to_string(size) +
                      " bytes, shorter than the 8-byte header length");
  }
  const std::size_t n = checked_header_length(read_u64_le(data), size - 8, what);
  Header h = parse_header(reinterpret_cast<const char *>(data + 8), n, size - 8 - n, what);
  const std::uint8_t *section = data + 8 + n;

  SafetensorsFile file;
  file.metadata = std::move(h.metadata);
  file.tensors.reserve(h.records.size());
  for (const Record &r : h.records) {
    const auto options = torch::TensorOptions().dtype(r.dtype->type);
    const std::uint8_t *p = section + r.begin;
    const std::size_t nbytes = static_cast<std::size_t>(r.end - r.begin);
    if (r.dtype->type == torch::kBool) {
      // Any byte but 0 and 1 is an invalid bool and undefined behaviour in LibTorch kernels.
      if (std::any_of(p, p + nbytes, [](std::uint8_t b) { return b > 1; })) {
        throw FormatError(what + ": BOOL tensor '" + r.name + "' holds a byte other than 0 or 1");
      }
    }
    if (views && reinterpret_cast<std::uintptr_t>(p) % r.dtype->itemsize == 0) {
      file.tensors.emplace_back(r.name,
                                torch::from_blob(const_cast<std::uint8_t *>(p), r.shape, options));
      continue;
    }
    torch::Tensor t = torch::empty(r.shape, options);
    if (nbytes > 0) std::memcpy(t.data_ptr(), p, nbytes);
    file.tensors.emplace_back(r.name, std::move(t));
  }
  return file;
}

}  // namespace

SafetensorsFile parse_safetensors(const std::uint8_t *data, std::size_t size,
                                  const std::string &what) {
  return read_tensors(data, size, what, /*views=*/false);
}

SafetensorsFile view_safetensors(const std::uint8_t *data, std::size_t size,
                                 const std::string &what) {
  return read_tensors(data, size, what, /*views=*/true);
}

SafetensorsFile read_safetensors(const std::string &path) {
  const MappedFile file(path);
  return parse_safetensors(file.data(), file.size(), path);
}

SafetensorsHeader read_safetensors_header(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError("cannot open " + path + ": " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff file_size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (!in || file_size < 0) throw FormatError("cannot read " + path);
  if (file_size < 8) {
    throw FormatError(path + ": truncated safetensors file: " + std::to_string(file_size) +
                      " bytes, shorter than the 8-byte header length");
  }
  std::uint8_t length[8];
  in.read(reinterpret_cast<char *>(length), 8);
  const auto available = static_cast<std::uint64_t>(file_size) - 8;
  const std::size_t n = checked_header_length(read_u64_le(length), available, path);
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  if (!in) throw FormatError("cannot read " + path + ": read failed inside the header");

  Header h = parse_header(text.data(), n, available - n, path);
  SafetensorsHeader header;
  header.metadata = std::move(h.metadata);
  header.entries.reserve(h.records.size());
  for (Record &r : h.records) {
    header.entries.push_back({std::move(r.name), r.dtype->name, std::move(r.shape)});
  }
  return header;
}

std::string serialize_safetensors(const NamedTensors &tensors,
                                  const std::map<std::string, std::string> &metadata) {
  std::vector<std::pair<std::string, torch::Tensor>> sorted;
  sorted.reserve(tensors.size());
  for (const auto &[name, tensor] : tensors) {
    if (!tensor.defined()) {
      throw std::invalid_argument("serialize_safetensors: tensor '" + name + "' is undefined");
    }
    if (name == kMetadataKey) {
      throw std::invalid_argument("serialize_safetensors: \"__metadata__\" cannot name a tensor");
    }
    if (find_dtype(tensor.scalar_type()) == nullptr) {
      throw std::invalid_argument("serialize_safetensors: tensor '" + name + "' has dtype " +
                                  std::string(c10::toString(tensor.scalar_type())) +
                                  ", which safetensors cannot hold here");
    }
    sorted.emplace_back(name, tensor.detach().to(torch::kCPU).contiguous());
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const auto &a, const auto &b) { return a.first < b.first; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].first == sorted[i - 1].first) {
      throw std::invalid_argument("serialize_safetensors: duplicate tensor name '" +
                                  sorted[i].first + "'");
    }
  }

  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::uint64_t offset = 0;
  for (const auto &[name, t] : sorted) {
    const std::uint64_t nbytes = static_cast<std::uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", find_dtype(t.scalar_type())->name},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception &e) {
    throw std::invalid_argument(std::string("serialize_safetensors: a tensor name or metadata "
                                            "string is not valid UTF-8: ") +
                                e.what());
  }
  // Padding keeps the data section 8-byte aligned, as the reference implementation does.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((static_cast<std::uint64_t>(text.size()) >> (8 * i)) & 0xff));
  }
  out += text;
  for (const auto &[name, t] : sorted) {
    out.append(static_cast<const char *>(t.data_ptr()),
               static_cast<std::size_t>(t.numel()) * t.element_size());
  }
  return out;
}

namespace {

// Permissions a plain open(O_CREAT, 0666) would give: mkstemp creates 0600.
mode_t default_file_mode(const std::string &path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) return st.st_mode & 07777;
  mode_t mask = 022;
  if (std::FILE *f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      unsigned value = 0;
      if (std::sscanf(line, "Umask: %o", &value) == 1) {
        mask = static_cast<mode_t>(value);
        break;
      }
    }
    std::fclose(f);
  }
  return 0666 & ~mask;
}

}  // namespace

void write_safetensors(const std::string &path, const NamedTensors &tensors,
                       const std::map<std::string, std::string> &metadata) {
  const std::string bytes = serialize_safetensors(tensors, metadata);
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) {
    throw std::runtime_error("cannot create a temporary file for " + path + ": " +
                             std::strerror(errno));
  }
  auto fail = [&](const char *step) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + " (" + step + " " + tmp +
                             "): " + std::strerror(err));
  };
  if (::fchmod(fd, default_file_mode(path)) != 0) fail("fchmod");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail("fsync");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + path + " (close " + tmp +
                             "): " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  // The rename itself is durable only once the directory is synced; failing that is not fatal.
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace vidcls
