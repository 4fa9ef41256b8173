#include "vidcls/torch_pickle.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "vidcls/mapped_file.h"
#include "vidcls/errors.h"
#include "zip_reader.h"

namespace vidcls {

namespace {

using detail::ByteSpan;
using detail::ZipEntry;
using detail::ZipReader;

// Nesting of containers in the unpickled object; a state dict needs a handful.
constexpr int kMaxDepth = 1000;
constexpr std::size_t kMaxDims = 64;
constexpr std::size_t kMaxKeyLength = 1 << 16;
// Pickles of PyTorch < 1.6 start with PROTO 2 and LONG1 of the 10-byte magic number
// 0x1950a86a20f9469cfc6c, little-endian.
constexpr std::uint8_t kLegacyMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                         0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

enum class Kind { None, Bool, Int, Float, String, List, Tuple, Dict, Tensor, Global, Storage };

const char *kind_name(Kind kind) {
  switch (kind) {
    case Kind::None:
      return "None";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::List:
      return "list";
    case Kind::Tuple:
      return "tuple";
    case Kind::Dict:
      return "dict";
    case Kind::Tensor:
      return "tensor";
    case Kind::Global:
      return "global";
    case Kind::Storage:
      return "storage";
  }
  return "?";
}

struct Storage {
  torch::Tensor data;  // 1-D, `numel` elements of the storage's dtype
  std::string key;
};

// A node of the unpickled object. Nodes live in the unpickler's arena and point at each other
// with plain pointers: pickles share objects through the memo and may even build cycles, which
// reference counting would leak.
struct Value {
  explicit Value(Kind k) : kind(k) {}
  Kind kind;
  bool ordered_dict = false;  // a collections.OrderedDict, which BUILD may give `_metadata`
  bool b = false;
  std::int64_t i = 0;
  double f = 0.0;
  std::string s;                                     // String; Global as "module.name"
  std::vector<Value *> items;                        // List, Tuple
  std::vector<std::pair<Value *, Value *>> entries;  // Dict, in insertion order
  torch::Tensor tensor;                              // Tensor: a view into a storage
  const Storage *storage = nullptr;                  // Storage
};

struct StorageType {
  const char *name;
  torch::ScalarType dtype;
};

constexpr StorageType kStorageTypes[] = {
    {"torch.FloatStorage", torch::kFloat}, {"torch.DoubleStorage", torch::kDouble},
    {"torch.HalfStorage", torch::kHalf},   {"torch.BFloat16Storage", torch::kBFloat16},
    {"torch.LongStorage", torch::kLong},   {"torch.IntStorage", torch::kInt},
    {"torch.ShortStorage", torch::kShort}, {"torch.CharStorage", torch::kChar},
    {"torch.ByteStorage", torch::kByte},   {"torch.BoolStorage", torch::kBool},
};

const StorageType *find_storage_type(const std::string &name) {
  for (const StorageType &t : kStorageTypes) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

const char *const kOrderedDict = "collections.OrderedDict";
const char *const kRebuildTensorV2 = "torch._utils._rebuild_tensor_v2";
const char *const kRebuildParameter = "torch._utils._rebuild_parameter";

bool allowed_global(const std::string &name) {
  return name == kOrderedDict || name == kRebuildTensorV2 || name == kRebuildParameter ||
         find_storage_type(name) != nullptr;
}

bool valid_utf8(const std::uint8_t *p, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t c = p[i];
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (len > n - i) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
      return false;
    }
    i += len;
  }
  return true;
}

// Where the archive keeps its records: "<prefix>/data.pkl", "<prefix>/data/<key>".
struct Archive {
  const ZipReader &zip;
  std::string prefix;
  std::size_t size;  // of the whole archive, which bounds what loading may allocate
};

class Unpickler {
 public:
  Unpickler(ByteSpan pickle, const Archive &archive, const std::string &what)
      : p_(pickle.data), size_(pickle.size), archive_(archive), what_(what) {}

  Value *load();

  // Objects created so far; bounds the work of walking the result.
  std::size_t node_count() const { return arena_.size(); }

 private:
  [[noreturn]] void fail(const std::string &problem) const {
    throw FormatError(what_ + ": " + problem + " (data.pkl offset " + std::to_string(op_pos_) +
                      ")");
  }

  const std::uint8_t *take(std::size_t n) {
    if (n > size_ - pos_) {
      throw FormatError(what_ + ": truncated pickle: opcode at offset " + std::to_string(op_pos_) +
                        " needs " + std::to_string(n) + " more bytes, " +
                        std::to_string(size_ - pos_) + " remain");
    }
    const std::uint8_t *p = p_ + pos_;
    pos_ += n;
    return p;
  }
  std::uint64_t take_le(std::size_t n) {
    const std::uint8_t *p = take(n);
    std::uint64_t v = 0;
    for (std::size_t k = n; k-- > 0;) v = (v << 8) | p[k];
    return v;
  }

  Value *make(Kind kind) {
    arena_.push_back(std::make_unique<Value>(kind));
    return arena_.back().get();
  }
  Value *make_int(std::int64_t v) {
    Value *x = make(Kind::Int);
    x->i = v;
    return x;
  }

  // The part of the stack above the innermost MARK is all an opcode may touch.
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  Value *pop() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    Value *v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value *top() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  std::vector<Value *> pop_mark() {
    if (marks_.empty()) fail("pickle opcode needs a MARK but none is open");
    std::vector<Value *> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()),
                               stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  Value *tuple_of(std::vector<Value *> items) {
    Value *t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }

  void push_string(std::size_t n);
  void push_long(std::size_t n);
  void push_global(const std::string &module, const std::string &name);
  std::string read_line();
  void set_items(Value *dict, const std::vector<Value *> &kv);
  Value *reduce(Value *callable, Value *args);
  void build(Value *object, Value *state);
  Value *persistent_load(Value *pid);
  Value *rebuild_tensor(const std::vector<Value *> &args);

  const std::uint8_t *p_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  const Archive &archive_;
  const std::string &what_;

  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<Value *> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint32_t, Value *> memo_;
  std::unordered_map<std::string, Storage> storages_;
  std::uint64_t copied_bytes_ = 0;
};

void Unpickler::push_string(std::size_t n) {
  const std::uint8_t *p = take(n);
  if (!valid_utf8(p, n)) fail("pickle string is not valid UTF-8");
  Value *v = make(Kind::String);
  v->s.assign(reinterpret_cast<const char *>(p), n);
  stack_.push_back(v);
}

// LONG1/LONG4: little-endian two's complement of n bytes; only values that fit int64 are taken.
void Unpickler::push_long(std::size_t n) {
  const std::uint8_t *p = take(n);
  if (n == 0) {
    stack_.push_back(make_int(0));
    return;
  }
  const bool negative = (p[n - 1] & 0x80) != 0;
  for (std::size_t k = 8; k < n; ++k) {
    if (p[k] != (negative ? 0xff : 0x00)) fail("pickled integer does not fit in 64 bits");
  }
  std::uint64_t v = negative ? ~std::uint64_t{0} : 0;
  for (std::size_t k = std::min<std::size_t>(n, 8); k-- > 0;) {
    v = (v << 8) | p[k];
  }
  if (n > 8 && ((v >> 63) != 0) != negative) fail("pickled integer does not fit in 64 bits");
  stack_.push_back(make_int(static_cast<std::int64_t>(v)));
}

std::string Unpickler::read_line() {
  const std::uint8_t *begin = p_ + pos_;
  const void *nl = std::memchr(begin, '\n', size_ - pos_);
  if (nl == nullptr) {
    throw FormatError(what_ + ": truncated pickle: GLOBAL at offset " + std::to_string(op_pos_) +
                      " has no end of line");
  }
  const std::size_t n = static_cast<const std::uint8_t *>(nl) - begin;
  pos_ += n + 1;
  return std::string(reinterpret_cast<const char *>(begin), n);
}

void Unpickler::push_global(const std::string &module, const std::string &name) {
  std::string full = module + "." + name;
  if (!allowed_global(full)) {
    // Printable in the message even when the pickle is garbage.
    for (char &c : full) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    throw FormatError("forbidden global '" + full + "' in " + what_ +
                      ": only state dicts (tensors, dicts, lists, numbers, strings) can be loaded");
  }
  Value *g = make(Kind::Global);
  g->s = std::move(full);
  stack_.push_back(g);
}

// Later keys are appended, not merged; a name that reaches two tensors is refused when the
// result is flattened.
void Unpickler::set_items(Value *dict, const std::vector<Value *> &kv) {
  if (dict->kind != Kind::Dict) fail(std::string("SETITEM on a ") + kind_name(dict->kind));
  if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of items");
  for (std::size_t k = 0; k < kv.size(); k += 2) dict->entries.emplace_back(kv[k], kv[k + 1]);
}

Value *Unpickler::reduce(Value *callable, Value *args) {
  if (callable->kind != Kind::Global) {
    fail(std::string("REDUCE calls a ") + kind_name(callable->kind) + ", not a global");
  }
  if (args->kind != Kind::Tuple) fail("REDUCE arguments are not a tuple");
  const std::vector<Value *> &a = args->items;
  if (callable->s == kOrderedDict) {
    if (!a.empty()) fail("collections.OrderedDict is called with arguments");
    Value *d = make(Kind::Dict);
    d->ordered_dict = true;
    return d;
  }
  if (callable->s == kRebuildTensorV2) return rebuild_tensor(a);
  if (callable->s == kRebuildParameter) {
    // _rebuild_parameter(data, requires_grad, backward_hooks)
    if (a.size() != 3 || a[0]->kind != Kind::Tensor) {
      fail("torch._utils._rebuild_parameter expects (tensor, requires_grad, backward_hooks)");
    }
    Value *t = make(Kind::Tensor);
    t->tensor = a[0]->tensor;
    return t;
  }
  fail("'" + callable->s + "' cannot be called");
}

// OrderedDict pickles its attributes (a state dict's `_metadata`) with BUILD; nothing else may
// be built, since that would set attributes on arbitrary objects.
void Unpickler::build(Value *object, Value *state) {
  if (object->kind != Kind::Dict || !object->ordered_dict) {
    fail(std::string("BUILD on a ") + kind_name(object->kind) + " is not allowed");
  }
  if (state->kind == Kind::None) return;
  if (state->kind != Kind::Dict) fail("BUILD state of an OrderedDict is not a dict");
  for (const auto &[key, value] : state->entries) {
    if (key->kind != Kind::String || key->s != "_metadata") {
      fail("BUILD may only set an OrderedDict's _metadata");
    }
  }
}

// ('storage', storage_type, key, location, numel) -> the record "<prefix>/data/<key>".
Value *Unpickler::persistent_load(Value *pid) {
  if (pid->kind != Kind::Tuple || pid->items.size() != 5) {
    fail("persistent id is not a 5-tuple ('storage', type, key, location, numel)");
  }
  const std::vector<Value *> &t = pid->items;
  if (t[0]->kind != Kind::String || t[0]->s != "storage" || t[1]->kind != Kind::Global ||
      t[2]->kind != Kind::String || t[3]->kind != Kind::String || t[4]->kind != Kind::Int) {
    fail("persistent id is not ('storage', type, key, location, numel)");
  }
  const StorageType *type = find_storage_type(t[1]->s);
  if (type == nullptr) fail("'" + t[1]->s + "' is not a storage type");
  const std::string &key = t[2]->s;
  const std::int64_t numel = t[4]->i;
  if (numel < 0) fail("storage '" + key + "' has a negative size");

  auto cached = storages_.find(key);
  if (cached == storages_.end()) {
    const std::string record = archive_.prefix + "/data/" + key;
    const ZipEntry *entry = archive_.zip.find(record);
    if (entry == nullptr) fail("missing storage record '" + record + "'");
    const ByteSpan bytes = archive_.zip.read(*entry);
    const std::size_t itemsize = c10::elementSize(type->dtype);
    if (static_cast<std::uint64_t>(numel) > bytes.size / itemsize) {
      fail("storage record '" + record + "' holds " + std::to_string(bytes.size) +
           " bytes, too small for " + std::to_string(numel) + " elements of " +
           c10::toString(type->dtype));
    }
    const std::size_t nbytes = static_cast<std::size_t>(numel) * itemsize;
    if (type->dtype == torch::kBool &&
        std::any_of(bytes.data, bytes.data + nbytes, [](std::uint8_t b) { return b > 1; })) {
      fail("bool storage '" + key + "' holds a byte other than 0 or 1");
    }
    const auto options = torch::TensorOptions().dtype(type->dtype);
    Storage storage;
    storage.key = key;
    if (reinterpret_cast<std::uintptr_t>(bytes.data) % itemsize == 0) {
      // Aligned (torch.save aligns records to 64 bytes): view the archive's bytes in place;
      // the views are cloned before the archive goes away.
      storage.data = torch::from_blob(const_cast<std::uint8_t *>(bytes.data), {numel}, options);
    } else {
      // Crafted archives may alias one record many times; copying is bounded by the archive.
      copied_bytes_ += nbytes;
      if (copied_bytes_ > archive_.size) fail("storage records overlap");
      storage.data = torch::empty({numel}, options);
      if (nbytes > 0) std::memcpy(storage.data.data_ptr(), bytes.data, nbytes);
    }
    cached = storages_.emplace(key, std::move(storage)).first;
  } else if (cached->second.data.scalar_type() != type->dtype ||
             cached->second.data.numel() != numel) {
    fail("storage '" + key + "' is used with two different types or sizes");
  }
  Value *v = make(Kind::Storage);
  v->storage = &cached->second;
  return v;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
// [, metadata]): a strided view of the storage, checked to stay inside it.
Value *Unpickler::rebuild_tensor(const std::vector<Value *> &a) {
  if ((a.size() != 6 && a.size() != 7) || a[0]->kind != Kind::Storage || a[1]->kind != Kind::Int ||
      a[2]->kind != Kind::Tuple || a[3]->kind != Kind::Tuple) {
    fail("torch._utils._rebuild_tensor_v2 expects (storage, offset, size, stride, ...)");
  }
  const Storage &storage = *a[0]->storage;
  const std::vector<Value *> &size = a[2]->items;
  const std::vector<Value *> &stride = a[3]->items;
  if (size.size() != stride.size() || size.size() > kMaxDims) {
    fail("tensor size and stride differ in length or have more than 64 dimensions");
  }
  std::vector<std::int64_t> sizes;
  std::vector<std::int64_t> strides;
  for (std::size_t d = 0; d < size.size(); ++d) {
    if (size[d]->kind != Kind::Int || stride[d]->kind != Kind::Int || size[d]->i < 0 ||
        stride[d]->i < 0) {
      fail("tensor size and stride must be non-negative integers");
    }
    sizes.push_back(size[d]->i);
    strides.push_back(stride[d]->i);
  }

  // The product of sizes (empty dimensions counted as 1) bounds the strides of a contiguous
  // copy, so it must fit in int64.
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  std::uint64_t extent = 1;
  bool empty = false;
  for (std::int64_t s : sizes) {
    const auto f = std::max<std::uint64_t>(static_cast<std::uint64_t>(s), 1);
    if (extent > kMax / f) fail("tensor size overflows 64 bits");
    extent *= f;
    empty = empty || s == 0;
  }
  const auto options = torch::TensorOptions().dtype(storage.data.scalar_type());
  Value *v = make(Kind::Tensor);
  if (empty) {
    v->tensor = torch::empty(sizes, options);
    return v;
  }

  // Highest element the view reaches: offset + sum((size - 1) * stride), all within int64.
  if (a[1]->i < 0) fail("tensor storage offset is negative");
  std::uint64_t last = static_cast<std::uint64_t>(a[1]->i);
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    const auto s = static_cast<std::uint64_t>(sizes[d] - 1);
    const auto st = static_cast<std::uint64_t>(strides[d]);
    if (st != 0 && s > (kMax - last) / st) fail("tensor extent overflows 64 bits");
    last += s * st;
  }
  const auto numel = static_cast<std::uint64_t>(storage.data.numel());
  if (last >= numel) {
    fail("storage '" + storage.key + "' of " + std::to_string(numel) +
         " elements is too small for a tensor that reaches element " + std::to_string(last));
  }
  v->tensor = storage.data.as_strided(sizes, strides, a[1]->i);
  return v;
}

Value *Unpickler::load() {
  while (true) {
    op_pos_ = pos_;
    const std::uint8_t op = *take(1);
    switch (op) {
      case 0x80: {  // PROTO
        const std::uint8_t version = *take(1);
        if (version > 5) fail("unsupported pickle protocol " + std::to_string(version));
        break;
      }
      case 0x95: {  // FRAME: only a hint for buffered readers
        const std::uint64_t n = take_le(8);
        if (n > size_ - pos_) fail("pickle FRAME overruns data.pkl");
        break;
      }
      case '.': {  // STOP
        return pop();
      }
      case 'c': {  // GLOBAL
        const std::string module = read_line();
        const std::string name = read_line();
        push_global(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Value *name = pop();
        Value *module = pop();
        if (name->kind != Kind::String || module->kind != Kind::String) {
          fail("STACK_GLOBAL needs two strings");
        }
        push_global(module->s, name->s);
        break;
      }
      case 'q':  // BINPUT
        memo_[*take(1)] = top();
        break;
      case 'r':  // LONG_BINPUT
        memo_[static_cast<std::uint32_t>(take_le(4))] = top();
        break;
      case 0x94: {  // MEMOIZE
        Value *v = top();
        memo_[static_cast<std::uint32_t>(memo_.size())] = v;
        break;
      }
      case 'h':    // BINGET
      case 'j': {  // LONG_BINGET
        const auto index = static_cast<std::uint32_t>(op == 'h' ? *take(1) : take_le(4));
        auto it = memo_.find(index);
        if (it == memo_.end()) fail("pickle memo index " + std::to_string(index) + " is not set");
        stack_.push_back(it->second);
        break;
      }
      case '}':  // EMPTY_DICT
        stack_.push_back(make(Kind::Dict));
        break;
      case ']':  // EMPTY_LIST
        stack_.push_back(make(Kind::List));
        break;
      case ')':  // EMPTY_TUPLE
        stack_.push_back(tuple_of({}));
        break;
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case 't':  // TUPLE
        stack_.push_back(tuple_of(pop_mark()));
        break;
      case 0x85: {  // TUPLE1
        Value *a = pop();
        stack_.push_back(tuple_of({a}));
        break;
      }
      case 0x86: {  // TUPLE2
        Value *b = pop();
        Value *a = pop();
        stack_.push_back(tuple_of({a, b}));
        break;
      }
      case 0x87: {  // TUPLE3
        Value *c = pop();
        Value *b = pop();
        Value *a = pop();
        stack_.push_back(tuple_of({a, b, c}));
        break;
      }
      case 's': {  // SETITEM
        Value *value = pop();
        Value *key = pop();
        set_items(top(), {key, value});
        break;
      }
      case 'u': {  // SETITEMS
        const std::vector<Value *> kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 'a': {  // APPEND
        Value *value = pop();
        Value *list = top();
        if (list->kind != Kind::List) fail(std::string("APPEND to a ") + kind_name(list->kind));
        list->items.push_back(value);
        break;
      }
      case 'e': {  // APPENDS
        const std::vector<Value *> values = pop_mark();
        Value *list = top();
        if (list->kind != Kind::List) fail(std::string("APPENDS to a ") + kind_name(list->kind));
        list->items.insert(list->items.end(), values.begin(), values.end());
        break;
      }
      case 'J':  // BININT
        stack_.push_back(make_int(static_cast<std::int32_t>(take_le(4))));
        break;
      case 'K':  // BININT1
        stack_.push_back(make_int(*take(1)));
        break;
      case 'M':  // BININT2
        stack_.push_back(make_int(static_cast<std::int64_t>(take_le(2))));
        break;
      case 0x8a:  // LONG1
        push_long(*take(1));
        break;
      case 0x8b: {  // LONG4
        const auto n = static_cast<std::int32_t>(take_le(4));
        if (n < 0) fail("LONG4 with a negative length");
        push_long(static_cast<std::size_t>(n));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        const std::uint8_t *p = take(8);
        std::uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];
        Value *v = make(Kind::Float);
        std::memcpy(&v->f, &bits, sizeof bits);
        stack_.push_back(v);
        break;
      }
      case 0x8c:  // SHORT_BINUNICODE
        push_string(*take(1));
        break;
      case 'X':  // BINUNICODE
        push_string(static_cast<std::size_t>(take_le(4)));
        break;
      case 0x8d:  // BINUNICODE8
        push_string(static_cast<std::size_t>(take_le(8)));
        break;
      case 0x88:    // NEWTRUE
      case 0x89: {  // NEWFALSE
        Value *v = make(Kind::Bool);
        v->b = op == 0x88;
        stack_.push_back(v);
        break;
      }
      case 'N':  // NONE
        stack_.push_back(make(Kind::None));
        break;
      case 'R': {  // REDUCE
        Value *args = pop();
        Value *callable = pop();
        stack_.push_back(reduce(callable, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args); only OrderedDict() qualifies
        Value *args = pop();
        Value *cls = pop();
        if (cls->kind != Kind::Global || cls->s != kOrderedDict || args->kind != Kind::Tuple ||
            !args->items.empty()) {
          fail("NEWOBJ is only allowed for collections.OrderedDict()");
        }
        stack_.push_back(reduce(cls, args));
        break;
      }
      case 'Q':  // BINPERSID
        stack_.push_back(persistent_load(pop()));
        break;
      case 'b': {  // BUILD
        Value *state = pop();
        build(top(), state);
        break;
      }
      default: {
        static const char kHex[] = "0123456789abcdef";
        const std::string hex = {kHex[op >> 4], kHex[op & 0xf]};
        fail("unsupported pickle opcode 0x" + hex + "; only state dicts can be loaded");
      }
    }
  }
}

// Turns the unpickled object into (dotted key, tensor) pairs: dict keys and list positions
// joined with '.', as nn.Module.state_dict() names parameters.
class Flattener {
 public:
  Flattener(const std::string &what, std::size_t node_count, std::size_t archive_size)
      : what_(what),
        max_visits_(2 * node_count + 1024),
        max_bytes_(2 * static_cast<std::uint64_t>(archive_size) + (std::uint64_t{64} << 20)) {}

  void walk(const Value *v, const std::string &key, int depth) {
    if (depth > kMaxDepth) {
      throw FormatError(what_ + ": object nests deeper than " + std::to_string(kMaxDepth) +
                        " levels (or contains a cycle)");
    }
    if (++visits_ > max_visits_) {
      throw FormatError(what_ + ": object shares sub-objects too many times to flatten");
    }
    switch (v->kind) {
      case Kind::Tensor:
        emit(key, v->tensor);
        break;
      case Kind::Dict:
        for (const auto &[k, value] : v->entries) {
          if (holds_tensors(value)) walk(value, join(key, name_of(k)), depth + 1);
        }
        break;
      case Kind::List:
      case Kind::Tuple:
        for (std::size_t n = 0; n < v->items.size(); ++n) {
          const Value *item = v->items[n];
          if (holds_tensors(item)) walk(item, join(key, std::to_string(n)), depth + 1);
        }
        break;
      default:
        break;
    }
  }

  NamedTensors take() { return std::move(out_); }

 private:
  static bool holds_tensors(const Value *v) {
    return v->kind == Kind::Tensor || v->kind == Kind::Dict || v->kind == Kind::List ||
           v->kind == Kind::Tuple;
  }

  std::string name_of(const Value *k) const {
    switch (k->kind) {
      case Kind::String:
        return k->s;
      case Kind::Int:
        return std::to_string(k->i);
      case Kind::Bool:
        return k->b ? "True" : "False";
      case Kind::None:
        return "None";
      default:
        throw FormatError(what_ + ": a dict key of type " + kind_name(k->kind) +
                          " cannot name a tensor");
    }
  }

  std::string join(const std::string &prefix, const std::string &name) const {
    if (prefix.size() + name.size() >= kMaxKeyLength) {
      throw FormatError(what_ + ": tensor key longer than " + std::to_string(kMaxKeyLength) +
                        " bytes");
    }
    return prefix.empty() ? name : prefix + "." + name;
  }

  void emit(const std::string &key, const torch::Tensor &view) {
    if (!seen_.insert(key).second) {
      throw FormatError(what_ + ": duplicate key '" + key + "' in the state dict");
    }
    // Views may repeat or broadcast a storage; the owned copies must stay near the archive size.
    bytes_ += static_cast<std::uint64_t>(view.numel()) * view.element_size();
    if (bytes_ > max_bytes_) {
      throw FormatError(what_ + ": tensors would take more than " + std::to_string(max_bytes_) +
                        " bytes, far more than the archive holds (shared or broadcast storages)");
    }
    out_.emplace_back(key, view.clone(at::MemoryFormat::Contiguous));
  }

  const std::string &what_;
  std::uint64_t visits_ = 0;
  std::uint64_t max_visits_;
  std::uint64_t bytes_ = 0;
  std::uint64_t max_bytes_;
  std::unordered_set<std::string> seen_;
  NamedTensors out_;
};

bool has_tensor_values(const Value *dict) {
  return std::any_of(dict->entries.begin(), dict->entries.end(),
                     [](const auto &kv) { return kv.second->kind == Kind::Tensor; });
}

// DeiT saves {"model": state_dict, ...}, Lightning {"state_dict": ...}, DDP wrappers
// {"module": ...}: with `unwrap`, a top-level dict without tensors of its own yields the wrapped
// state dict.
const Value *unwrap_state_dict(const Value *root) {
  if (root->kind != Kind::Dict || has_tensor_values(root)) return root;
  for (const char *name : {"model", "state_dict", "module"}) {
    for (auto it = root->entries.rbegin(); it != root->entries.rend(); ++it) {
      const auto &[key, value] = *it;
      if (key->kind == Kind::String && key->s == name && value->kind == Kind::Dict &&
          has_tensor_values(value)) {
        return value;
      }
    }
  }
  return root;
}

bool has_prefix(const std::uint8_t *data, std::size_t size, const std::uint8_t *prefix,
                std::size_t n) {
  return size >= n && std::memcmp(data, prefix, n) == 0;
}

}  // namespace

NamedTensors parse_torch_state_dict(const std::uint8_t *data, std::size_t size,
                                    const std::string &what, bool unwrap) {
  if (has_prefix(data, size, kLegacyMagic, sizeof kLegacyMagic)) {
    throw FormatError(what +
                      ": legacy torch.save format (PyTorch < 1.6); re-save it with "
                      "torch.save(obj, path) in a recent PyTorch");
  }
  if (size >= 1 && data[0] == 0x80) {
    throw FormatError(what + ": a bare pickle, not a torch.save zip archive");
  }
  const ZipReader zip(data, size, what);

  // torch names the top folder after the file it first wrote ("archive", "resnet18", ...).
  const ZipEntry *pickle = nullptr;
  for (const ZipEntry &e : zip.entries()) {
    const std::string &n = e.name;
    const std::size_t slash = n.find('/');
    if (slash != std::string::npos && n.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (pickle != nullptr) {
        throw FormatError(what + ": archive holds more than one data.pkl ('" + pickle->name +
                          "', '" + n + "')");
      }
      pickle = &e;
    }
  }
  if (pickle == nullptr) {
    throw FormatError(what + ": no <name>/data.pkl record in the zip; not a torch.save file");
  }
  const std::string prefix = pickle->name.substr(0, pickle->name.size() - sizeof "/data.pkl" + 1);
  if (zip.find(prefix + "/constants.pkl") != nullptr) {
    throw FormatError(what + ": a TorchScript archive (torch.jit.save), not a state dict; " +
                      "load it with torch::jit::load");
  }
  if (const ZipEntry *order = zip.find(prefix + "/byteorder")) {
    const ByteSpan b = zip.read(*order);
    if (std::string(reinterpret_cast<const char *>(b.data), b.size) != "little") {
      throw FormatError(what + ": tensors were saved big-endian; only little-endian is read");
    }
  }

  const Archive archive{zip, prefix, size};
  Unpickler unpickler(zip.read(*pickle), archive, what);
  const Value *root = unpickler.load();
  if (unwrap) root = unwrap_state_dict(root);
  Flattener flattener(what, unpickler.node_count(), size);
  flattener.walk(root, "", 0);
  return flattener.take();
}

NamedTensors read_torch_state_dict(const std::string &path, bool unwrap) {
  const MappedFile file(path);
  return parse_torch_state_dict(file.data(), file.size(), path, unwrap);
}

}  // namespace vidcls
