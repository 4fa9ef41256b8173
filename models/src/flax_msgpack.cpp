#include "vidcls/flax_msgpack.h"

#include <msgpack.h>

#include <cstring>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "vidcls/errors.h"
#include "vidcls/mapped_file.h"

namespace vidcls {

namespace {

// flax.serialization's extension type codes.
constexpr int8_t kExtNdarray = 1;
constexpr int8_t kExtNpScalar = 3;
constexpr std::size_t kMaxDims = 64;

struct Dtype {
  const char *name;  // numpy's dtype.name
  torch::ScalarType stored;
  std::size_t itemsize;
  torch::ScalarType widened;  // what the tensor holds (unsigned types need a wider signed one)
};

constexpr Dtype kDtypes[] = {
    {"float32", torch::kFloat, 4, torch::kFloat},
    {"float64", torch::kDouble, 8, torch::kDouble},
    {"float16", torch::kHalf, 2, torch::kHalf},
    {"bfloat16", torch::kBFloat16, 2, torch::kBFloat16},
    {"int64", torch::kLong, 8, torch::kLong},
    {"int32", torch::kInt, 4, torch::kInt},
    {"int16", torch::kShort, 2, torch::kShort},
    {"int8", torch::kChar, 1, torch::kChar},
    {"uint8", torch::kByte, 1, torch::kByte},
    {"bool", torch::kBool, 1, torch::kBool},
    {"uint16", torch::kShort, 2, torch::kInt},
    {"uint32", torch::kInt, 4, torch::kLong},
};

const Dtype *find_dtype(const std::string &name) {
  for (const auto &d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

std::string str_of(const msgpack_object &o) {
  if (o.type == MSGPACK_OBJECT_STR) return {o.via.str.ptr, o.via.str.size};
  if (o.type == MSGPACK_OBJECT_POSITIVE_INTEGER) return std::to_string(o.via.u64);
  return {};
}

// Unpacks one whole msgpack document from `data`; the objects point into `data`.
struct Unpacked {
  msgpack_unpacked u;
  Unpacked() { msgpack_unpacked_init(&u); }
  ~Unpacked() { msgpack_unpacked_destroy(&u); }
  Unpacked(const Unpacked &) = delete;
  Unpacked &operator=(const Unpacked &) = delete;
};

uint64_t big_endian(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// msgpack-c allocates a container's elements as soon as it reads their count, so a corrupt count
// in a file of a few bytes would have it ask for gigabytes. This pass, over the format's headers
// only (msgpack spec, "formats"), checks first that every container declares no more elements
// than bytes remain to hold them, and that the bytes hold exactly one object.
std::string check_counts(const unsigned char *p, std::size_t size) {
  std::size_t at = 0;
  uint64_t todo = 1;  // objects still to read, over every open container
  while (todo > 0) {
    if (at >= size) return "truncated";
    const unsigned char b = p[at];
    uint64_t header = 1, payload = 0, children = 0;
    auto sized = [&](int n, uint64_t extra) {
      header = 1 + n + extra;
      if (at + 1 + n > size) return false;
      payload = big_endian(p + at + 1, n);
      return true;
    };
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3)) {
    } else if (b <= 0x8f) {
      children = 2 * uint64_t(b & 0x0f);
    } else if (b <= 0x9f) {
      children = b & 0x0f;
    } else if (b <= 0xbf) {
      payload = b & 0x1f;
    } else if (b >= 0xc4 && b <= 0xc6) {  // bin 8/16/32
      if (!sized(1 << (b - 0xc4), 0)) return "truncated";
    } else if (b >= 0xc7 && b <= 0xc9) {  // ext 8/16/32: the type byte follows the size
      if (!sized(1 << (b - 0xc7), 1)) return "truncated";
    } else if (b >= 0xca && b <= 0xd3) {  // float 32/64, uint and int 8..64
      static const int width[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
      payload = width[b - 0xca];
    } else if (b >= 0xd4 && b <= 0xd8) {  // fixext 1..16
      payload = 1 + (uint64_t{1} << (b - 0xd4));
    } else if (b >= 0xd9 && b <= 0xdb) {  // str 8/16/32
      if (!sized(1 << (b - 0xd9), 0)) return "truncated";
    } else if (b == 0xdc || b == 0xdd) {  // array 16/32
      if (!sized(b == 0xdc ? 2 : 4, 0)) return "truncated";
      children = payload;
      payload = 0;
    } else {  // map 16/32
      if (!sized(b == 0xde ? 2 : 4, 0)) return "truncated";
      children = 2 * payload;
      payload = 0;
    }
    if (payload > size - at || header > size - at - payload) return "truncated";
    at += header + payload;
    todo = todo - 1 + children;
    if (todo > size - at) return "a container declares more elements than the bytes that follow";
  }
  return at == size ? "" : "trailing bytes after the msgpack object";
}

// An empty string when `data` is exactly one msgpack object, else what is wrong.
std::string unpack(Unpacked &out, const char *data, std::size_t size) {
  auto counts = check_counts(reinterpret_cast<const unsigned char *>(data), size);
  if (!counts.empty()) return counts;
  std::size_t offset = 0;
  switch (msgpack_unpack_next(&out.u, data, size, &offset)) {
    case MSGPACK_UNPACK_SUCCESS:
    case MSGPACK_UNPACK_EXTRA_BYTES:
      return offset == size ? "" : "trailing bytes after the msgpack object";
    case MSGPACK_UNPACK_CONTINUE:
      return "truncated";
    case MSGPACK_UNPACK_NOMEM_ERROR:
      return "out of memory while parsing";
    default:
      return "not msgpack (or nested too deeply)";
  }
}

// Flax's array: an extension object whose payload is msgpack [shape, dtype name, bytes] (or,
// for a numpy scalar, [dtype name, bytes]). Returns an undefined tensor for a dtype we skip.
torch::Tensor array_of(const msgpack_object_ext &ext, const std::string &where) {
  Unpacked payload;
  const auto err = unpack(payload, ext.ptr, ext.size);
  if (!err.empty()) throw FormatError(where + ": array payload " + err);
  const auto &o = payload.u.data;
  const bool scalar = ext.type == kExtNpScalar;
  const uint32_t fields = scalar ? 2 : 3;
  if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != fields) {
    throw FormatError(where + ": array payload is not (shape, dtype, bytes)");
  }
  const auto *f = o.via.array.ptr;
  std::vector<int64_t> shape;
  if (!scalar) {
    if (f[0].type != MSGPACK_OBJECT_ARRAY || f[0].via.array.size > kMaxDims) {
      throw FormatError(where + ": array shape is not a list of at most 64 sizes");
    }
    for (uint32_t i = 0; i < f[0].via.array.size; ++i) {
      const auto &d = f[0].via.array.ptr[i];
      if (d.type != MSGPACK_OBJECT_POSITIVE_INTEGER || d.via.u64 > (uint64_t{1} << 40)) {
        throw FormatError(where + ": array shape holds something other than a size");
      }
      shape.push_back(static_cast<int64_t>(d.via.u64));
    }
  }
  const auto &name = f[scalar ? 0 : 1], &bytes = f[scalar ? 1 : 2];
  if (name.type != MSGPACK_OBJECT_STR ||
      (bytes.type != MSGPACK_OBJECT_BIN && bytes.type != MSGPACK_OBJECT_STR)) {
    throw FormatError(where + ": array payload is not (shape, dtype, bytes)");
  }
  const Dtype *dtype = find_dtype(str_of(name));
  if (dtype == nullptr) return {};
  __int128 expected = dtype->itemsize;
  for (auto s : shape) expected *= s;
  const std::size_t got =
      bytes.type == MSGPACK_OBJECT_BIN ? bytes.via.bin.size : bytes.via.str.size;
  if (expected != static_cast<__int128>(got)) {
    throw FormatError(where + ": " + std::to_string(got) + " bytes for an array of " +
                      std::to_string(static_cast<long long>(expected)) + " (" + str_of(name) +
                      ", shape of " + std::to_string(shape.size()) + " dimensions)");
  }
  auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype->stored));
  if (got > 0) {
    std::memcpy(t.data_ptr(),
                bytes.type == MSGPACK_OBJECT_BIN ? bytes.via.bin.ptr : bytes.via.str.ptr, got);
  }
  if (dtype->widened == dtype->stored) return t;
  // uint16 / uint32 were read as the signed type of their width: reinterpret, then widen.
  const int64_t mask = dtype->itemsize == 2 ? 0xffff : 0xffffffffLL;
  return t.to(dtype->widened).bitwise_and(mask);
}

void walk(const msgpack_object &o, const std::string &name, const std::string &path,
          NamedTensors &out) {
  if (o.type == MSGPACK_OBJECT_MAP) {
    for (uint32_t i = 0; i < o.via.map.size; ++i) {
      const auto &kv = o.via.map.ptr[i];
      const auto key = str_of(kv.key);
      if (key == "__msgpack_chunked_array__") {
        throw FormatError(path + ": " + name +
                          ": an array stored in chunks (over 1 GiB), which vidcls does not read");
      }
      walk(kv.val, name.empty() ? key : name + "/" + key, path, out);
    }
  } else if (o.type == MSGPACK_OBJECT_ARRAY) {
    for (uint32_t i = 0; i < o.via.array.size; ++i) {
      walk(o.via.array.ptr[i], name + "/" + std::to_string(i), path, out);
    }
  } else if (o.type == MSGPACK_OBJECT_EXT &&
             (o.via.ext.type == kExtNdarray || o.via.ext.type == kExtNpScalar)) {
    auto t = array_of(o.via.ext, path + ": " + name);
    if (t.defined()) out.emplace_back(name, std::move(t));
  }
}

}  // namespace

bool looks_like_flax_msgpack(const unsigned char *head, std::size_t size) {
  if (size < 2) return false;
  const bool map = (head[0] >= 0x81 && head[0] <= 0x8f) || head[0] == 0xde || head[0] == 0xdf;
  if (!map) return false;
  const std::size_t key = head[0] == 0xde ? 3 : head[0] == 0xdf ? 5 : 1;
  if (size <= key) return false;
  const unsigned char k = head[key];
  return (k >= 0xa0 && k <= 0xbf) || k == 0xd9 || k == 0xda || k == 0xdb;
}

NamedTensors read_flax_msgpack(const std::string &path) {
  MappedFile file(path);
  return parse_flax_msgpack(file.data(), file.size(), path);
}

NamedTensors parse_flax_msgpack(const std::uint8_t *data, std::size_t size,
                                const std::string &path) {
  Unpacked doc;
  const auto err = unpack(doc, reinterpret_cast<const char *>(data), size);
  if (!err.empty()) throw FormatError(path + ": not a Flax checkpoint: " + err);
  if (doc.u.data.type != MSGPACK_OBJECT_MAP) {
    throw FormatError(path + ": not a Flax checkpoint: its msgpack object is not a map");
  }
  NamedTensors out;
  walk(doc.u.data, "", path, out);
  return out;
}

}  // namespace vidcls
