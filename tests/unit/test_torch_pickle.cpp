#include "vidcls/torch_pickle.h"

#include <sys/wait.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/types.h>

#include "vidcls/errors.h"
#include "vidcls/safetensors.h"

namespace {

using namespace std::string_literals;
using ::testing::HasSubstr;
using vidcls::FormatError;
using vidcls::NamedTensors;

// ---------------------------------------------------------------------------------------------
// Files written by Python's torch.save, next to the tensors the loader must return, written as
// safetensors by a writer small enough to trust (the `safetensors` package is not needed).

const char kWriterScript[] = R"PY(
import json, struct, sys
import torch

out = sys.argv[1]
DTYPES = {torch.float32: 'F32', torch.float64: 'F64', torch.float16: 'F16',
          torch.bfloat16: 'BF16', torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16',
          torch.int8: 'I8', torch.uint8: 'U8', torch.bool: 'BOOL'}

def flatten(obj, prefix=''):
    join = lambda k: f'{prefix}.{k}' if prefix else str(k)
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, join(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from flatten(v, join(i))

def write_expected(name, obj):
    header, blobs, offset = {}, [], 0
    for key, t in flatten(obj):
        blob = t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        header[key] = {'dtype': DTYPES[t.dtype], 'shape': list(t.shape),
                       'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    text += b' ' * (-len(text) % 8)
    with open(f'{out}/{name}.safetensors', 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))

def save(name, obj, expected=None, **kwargs):
    torch.save(obj, f'{out}/{name}.pth', **kwargs)
    write_expected(name, obj if expected is None else expected)

torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                            torch.nn.Linear(8, 4))
model(torch.randn(2, 3, 5, 5))  # running statistics and num_batches_tracked move
sd = model.state_dict()
save('small_model', sd)
save('protocol4', sd, pickle_protocol=4)

base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
shared = torch.randn(2, 5)
save('mixed', {
    'f16': torch.randn(3, 4).half(), 'bf16': torch.randn(2, 3).bfloat16(),
    'f64': torch.randn(3, dtype=torch.float64), 'i64': torch.arange(-2, 5),
    'i32': torch.arange(6, dtype=torch.int32).reshape(2, 3),
    'i16': torch.arange(3, dtype=torch.int16), 'i8': torch.arange(-3, 3, dtype=torch.int8),
    'u8': torch.arange(250, 256).to(torch.uint8), 'bool': torch.tensor([True, False, True]),
    'scalar': torch.tensor(3.5), 'empty': torch.empty(0, 4),
    'transposed': base.t(), 'sliced': base[1:, ::2], 'column': base[:, 3],
    'shared_a': shared[0], 'shared_b': shared[1], 'param': torch.nn.Parameter(torch.randn(2, 2)),
})
wrapped = {'model': sd, 'epoch': 3, 'args': {'lr': 0.1, 'name': 'x', 'flags': [True, None]}}
save('wrapped', wrapped, expected=sd)
write_expected('wrapped_all', wrapped)
save('lightning', {'state_dict': sd, 'global_step': 10}, expected=sd)
save('nested', {'encoder': {'w': torch.ones(2)}, 'heads': [torch.zeros(1), torch.ones(3)],
                7: torch.full((2,), 7.0), 'note': 'text'})
save('many_keys', {f't{i}': torch.tensor(i) for i in range(1100)})
torch.save(sd, f'{out}/legacy.pth', _use_new_zipfile_serialization=False)
)PY";

std::string shell_quote(const std::string &s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class TorchSaveFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char *python = std::getenv("VIDCLS_PYTHON");
    if (python == nullptr || *python == '\0') {
      skip_reason_ = "VIDCLS_PYTHON is not set";
      return;
    }
    const std::string quoted = shell_quote(python);
    if (std::system((quoted + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0) {
      skip_reason_ = std::string(python) + " cannot import torch";
      return;
    }
    std::string tmpl = ::testing::TempDir() + "vidcls_pickle_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    const std::string script = dir_ + "/write.py";
    std::ofstream(script) << kWriterScript;
    const int status =
        std::system((quoted + " " + shell_quote(script) + " " + shell_quote(dir_)).c_str());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the writer script failed";
  }

  static void TearDownTestSuite() {
    if (!dir_.empty()) std::system(("rm -rf " + shell_quote(dir_)).c_str());
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  }

  static std::string path(const std::string &name) { return dir_ + "/" + name; }

  // The tensors Python wrote as `<name>.safetensors`, in the same order and with the same keys.
  static void expect_matches(const NamedTensors &actual, const std::string &name) {
    const NamedTensors expected = vidcls::read_safetensors(path(name + ".safetensors")).tensors;
    ASSERT_FALSE(expected.empty());
    ASSERT_EQ(actual.size(), expected.size());
    for (std::size_t i = 0; i < actual.size(); ++i) {
      SCOPED_TRACE(expected[i].first);
      EXPECT_EQ(actual[i].first, expected[i].first);
      EXPECT_EQ(actual[i].second.scalar_type(), expected[i].second.scalar_type());
      EXPECT_EQ(actual[i].second.sizes(), expected[i].second.sizes());
      EXPECT_TRUE(actual[i].second.is_contiguous());
      EXPECT_TRUE(torch::equal(actual[i].second, expected[i].second));
    }
  }

  static std::string skip_reason_;
  static std::string dir_;
};

std::string TorchSaveFiles::skip_reason_;
std::string TorchSaveFiles::dir_;

TEST_F(TorchSaveFiles, ReadsModuleStateDict) {
  const NamedTensors sd = vidcls::read_torch_state_dict(path("small_model.pth"));
  expect_matches(sd, "small_model");
  EXPECT_EQ(sd.at(0).first, "0.weight");
}

TEST_F(TorchSaveFiles, ReadsPickleProtocol4) {
  expect_matches(vidcls::read_torch_state_dict(path("protocol4.pth")), "small_model");
}

TEST_F(TorchSaveFiles, ReadsEveryDtypeAndStridedViews) {
  expect_matches(vidcls::read_torch_state_dict(path("mixed.pth")), "mixed");
}

TEST_F(TorchSaveFiles, UnwrapsCheckpointDicts) {
  expect_matches(vidcls::read_torch_state_dict(path("wrapped.pth")), "wrapped");
  expect_matches(vidcls::read_torch_state_dict(path("lightning.pth")), "lightning");
  expect_matches(vidcls::read_torch_state_dict(path("wrapped.pth"), /*unwrap=*/false),
                 "wrapped_all");
}

TEST_F(TorchSaveFiles, FlattensNestedContainersWithDottedKeys) {
  const NamedTensors t = vidcls::read_torch_state_dict(path("nested.pth"));
  expect_matches(t, "nested");
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[1].first, "heads.0");
  EXPECT_EQ(t[3].first, "7");
}

TEST_F(TorchSaveFiles, ReadsDictsLargerThanOneSetitemsBatch) {
  expect_matches(vidcls::read_torch_state_dict(path("many_keys.pth")), "many_keys");
}

TEST_F(TorchSaveFiles, RefusesLegacyFormat) {
  try {
    vidcls::read_torch_state_dict(path("legacy.pth"));
    ADD_FAILURE() << "legacy file accepted";
  } catch (const FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("legacy.pth"));
    EXPECT_THAT(e.what(), HasSubstr("legacy torch.save format (PyTorch < 1.6)"));
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-built archives: a stored-only zip writer and the pickle opcodes a state dict uses.

void put_le(std::string &s, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Stored entries only. With `zip64`, sizes and offsets move to zip64 extra fields and the end
// of central directory to its zip64 record, as torch writes them for files past 4 GiB.
std::string make_zip(const std::vector<std::pair<std::string, std::string>> &entries,
                     std::uint16_t method = 0, bool zip64 = false) {
  const std::uint64_t saturated = 0xffffffff;
  std::string out;
  std::string central;
  for (const auto &[name, data] : entries) {
    const std::size_t offset = out.size();
    put_le(out, 0x04034b50, 4);
    put_le(out, 20, 2);  // version needed
    put_le(out, 0, 2);   // flags
    put_le(out, method, 2);
    put_le(out, 0, 4);  // time, date
    put_le(out, 0, 4);  // crc, unchecked
    put_le(out, data.size(), 4);
    put_le(out, data.size(), 4);
    put_le(out, name.size(), 2);
    put_le(out, 0, 2);
    out += name + data;

    put_le(central, 0x02014b50, 4);
    put_le(central, 45, 2);
    put_le(central, 45, 2);
    put_le(central, 0, 2);
    put_le(central, method, 2);
    put_le(central, 0, 4);
    put_le(central, 0, 4);
    put_le(central, zip64 ? saturated : data.size(), 4);
    put_le(central, zip64 ? saturated : data.size(), 4);
    put_le(central, name.size(), 2);
    put_le(central, zip64 ? 28 : 0, 2);  // extra
    put_le(central, 0, 2);               // comment
    put_le(central, 0, 2);               // disk
    put_le(central, 0, 2);               // internal attributes
    put_le(central, 0, 4);               // external attributes
    put_le(central, zip64 ? saturated : offset, 4);
    central += name;
    if (zip64) {
      put_le(central, 0x0001, 2);
      put_le(central, 24, 2);
      put_le(central, data.size(), 8);
      put_le(central, data.size(), 8);
      put_le(central, offset, 8);
    }
  }
  const std::size_t cd_offset = out.size();
  out += central;
  if (zip64) {
    const std::size_t record = out.size();
    put_le(out, 0x06064b50, 4);
    put_le(out, 44, 8);
    put_le(out, 45, 2);
    put_le(out, 45, 2);
    put_le(out, 0, 4);
    put_le(out, 0, 4);
    put_le(out, entries.size(), 8);
    put_le(out, entries.size(), 8);
    put_le(out, central.size(), 8);
    put_le(out, cd_offset, 8);
    put_le(out, 0x07064b50, 4);
    put_le(out, 0, 4);
    put_le(out, record, 8);
    put_le(out, 1, 4);
  }
  put_le(out, 0x06054b50, 4);
  put_le(out, 0, 4);
  put_le(out, zip64 ? 0xffff : entries.size(), 2);
  put_le(out, zip64 ? 0xffff : entries.size(), 2);
  put_le(out, zip64 ? saturated : central.size(), 4);
  put_le(out, zip64 ? saturated : cd_offset, 4);
  put_le(out, 0, 2);
  return out;
}

class Pickle {
 public:
  Pickle &op(std::uint8_t code) {
    bytes_.push_back(static_cast<char>(code));
    return *this;
  }
  Pickle &proto() { return op(0x80).op(2); }
  Pickle &global(const std::string &module, const std::string &name) {
    bytes_ += "c" + module + "\n" + name + "\n";
    return *this;
  }
  Pickle &str(const std::string &s) {
    op('X');
    put_le(bytes_, s.size(), 4);
    bytes_ += s;
    return *this;
  }
  Pickle &integer(std::int64_t v) {
    op('J');
    put_le(bytes_, static_cast<std::uint32_t>(v), 4);
    return *this;
  }
  Pickle &ints(const std::vector<std::int64_t> &values) {
    op('(');
    for (std::int64_t v : values) integer(v);
    return op('t');
  }
  const std::string &bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// _rebuild_tensor_v2(storage('0'), offset, size, stride, False, OrderedDict()), as torch.save
// pickles a tensor.
Pickle &tensor(Pickle &p, const std::string &storage_type, std::int64_t numel, std::int64_t offset,
               const std::vector<std::int64_t> &size, const std::vector<std::int64_t> &stride) {
  p.global("torch._utils", "_rebuild_tensor_v2").op('(');
  p.op('(').str("storage").global("torch", storage_type).str("0").str("cpu").integer(numel);
  p.op('t').op('Q').integer(offset).ints(size).ints(stride).op(0x89);
  p.global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
  return p;
}

// {"w": tensor} as a whole pickle.
std::string state_dict_pickle(const std::string &storage_type, std::int64_t numel,
                              std::int64_t offset, const std::vector<std::int64_t> &size,
                              const std::vector<std::int64_t> &stride) {
  Pickle p;
  p.proto().op('}').op('(').str("w");
  tensor(p, storage_type, numel, offset, size, stride);
  return p.op('u').op('.').bytes();
}

std::string floats(const std::vector<float> &values) {
  return std::string(reinterpret_cast<const char *>(values.data()), values.size() * sizeof(float));
}

std::string archive(const std::string &pickle, const std::string &storage = floats({1, 2, 3, 4})) {
  return make_zip(
      {{"archive/data.pkl", pickle}, {"archive/data/0", storage}, {"archive/version", "3\n"}});
}

NamedTensors parse(const std::string &bytes, bool unwrap = true) {
  return vidcls::parse_torch_state_dict(reinterpret_cast<const std::uint8_t *>(bytes.data()),
                                        bytes.size(), "bad.pth", unwrap);
}

void expect_refused(const std::string &bytes, const std::string &problem) {
  try {
    parse(bytes);
    ADD_FAILURE() << "accepted an archive that should fail with '" << problem << "'";
  } catch (const FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("bad.pth"));
    EXPECT_THAT(e.what(), HasSubstr(problem));
  }
}

// The payload of a one-tensor pickle, for tests that build their own object.
std::string pickle_of(const std::string &body) { return "\x80\x02" + body + "."; }

TEST(TorchPickle, ReadsHandBuiltArchive) {
  const NamedTensors t = parse(archive(state_dict_pickle("FloatStorage", 4, 0, {2, 2}, {1, 2})));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].first, "w");
  EXPECT_TRUE(t[0].second.is_contiguous());
  EXPECT_TRUE(torch::equal(t[0].second, torch::tensor({{1.f, 3.f}, {2.f, 4.f}})));
}

TEST(TorchPickle, AcceptsAnyTopFolderName) {
  const std::string pickle = state_dict_pickle("FloatStorage", 4, 1, {3}, {1});
  const NamedTensors t =
      parse(make_zip({{"resnet18/data.pkl", pickle}, {"resnet18/data/0", floats({1, 2, 3, 4})}}));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(torch::equal(t[0].second, torch::tensor({2.f, 3.f, 4.f})));
}

TEST(TorchPickle, ReadsZip64Archive) {
  const std::string pickle = state_dict_pickle("FloatStorage", 4, 0, {4}, {1});
  const NamedTensors t = parse(
      make_zip({{"archive/data.pkl", pickle}, {"archive/data/0", floats({1, 2, 3, 4})}}, 0, true));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_TRUE(torch::equal(t[0].second, torch::tensor({1.f, 2.f, 3.f, 4.f})));
}

TEST(TorchPickle, RefusesForbiddenGlobals) {
  const std::vector<std::pair<std::string, std::string>> globals = {
      {"os", "system"},
      {"builtins", "eval"},
      {"torch.storage", "_load_from_bytes"},
      {"torch._utils", "_rebuild_qtensor"}};
  for (const auto &[module, name] : globals) {
    SCOPED_TRACE(module + "." + name);
    const std::string pickle =
        Pickle().proto().global(module, name).str("id").op(0x85).op('R').op('.').bytes();
    expect_refused(archive(pickle), "forbidden global '" + module + "." + name + "'");
  }
  // The same through protocol 4's STACK_GLOBAL.
  const std::string stack_global = "\x80\x04\x8c\x02os\x8c\x06system\x93."s;
  expect_refused(archive(stack_global), "forbidden global 'os.system'");
}

TEST(TorchPickle, RefusesCallingAStorageType) {
  expect_refused(
      archive(Pickle().proto().global("torch", "FloatStorage").op(')').op('R').op('.').bytes()),
      "cannot be called");
}

TEST(TorchPickle, RefusesStorageSmallerThanTensor) {
  expect_refused(archive(state_dict_pickle("FloatStorage", 4, 0, {8}, {1})), "too small");
  expect_refused(archive(state_dict_pickle("FloatStorage", 4, 2, {2, 2}, {2, 1})), "too small");
  // The storage record itself holds fewer bytes than the pickle declares.
  expect_refused(archive(state_dict_pickle("FloatStorage", 100, 0, {4}, {1})), "too small");
  expect_refused(archive(state_dict_pickle("DoubleStorage", 4, 0, {4}, {1})), "too small");
}

TEST(TorchPickle, RefusesNegativeStrides) {
  expect_refused(archive(state_dict_pickle("FloatStorage", 4, 3, {4}, {-1})), "non-negative");
}

TEST(TorchPickle, BoundsBroadcastStorages) {
  // One element repeated 2^40 times would be a 4 TiB clone.
  expect_refused(archive(state_dict_pickle("FloatStorage", 4, 0, {1 << 20, 1 << 20}, {0, 0})),
                 "more than");
}

TEST(TorchPickle, RefusesTruncatedPickle) {
  const std::string pickle = state_dict_pickle("FloatStorage", 4, 0, {4}, {1});
  expect_refused(archive(pickle.substr(0, pickle.size() - 1)), "truncated");
  expect_refused(archive(pickle.substr(0, 20)), "truncated");
  // Every prefix fails cleanly.
  for (std::size_t n = 0; n < pickle.size(); ++n) {
    EXPECT_THROW(parse(archive(pickle.substr(0, n))), FormatError) << n;
  }
}

TEST(TorchPickle, RefusesTruncatedArchive) {
  const std::string zip = archive(state_dict_pickle("FloatStorage", 4, 0, {4}, {1}));
  for (std::size_t n = 0; n < zip.size(); ++n) {
    EXPECT_THROW(parse(zip.substr(0, n)), FormatError) << n;
  }
}

TEST(TorchPickle, RefusesLegacyFormat) {
  const std::string legacy = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e"s;
  expect_refused(legacy, "legacy torch.save format (PyTorch < 1.6); re-save it");
  expect_refused(pickle_of("}"), "bare pickle");
}

TEST(TorchPickle, RefusesNonZip) { expect_refused("this is not a checkpoint at all", "zip"); }

TEST(TorchPickle, RefusesMissingRecords) {
  expect_refused(make_zip({{"archive/version", "3\n"}}), "data.pkl");
  const std::string pickle = state_dict_pickle("FloatStorage", 4, 0, {4}, {1});
  expect_refused(make_zip({{"archive/data.pkl", pickle}}),
                 "missing storage record 'archive/data/0'");
}

TEST(TorchPickle, RefusesCompressedEntries) {
  expect_refused(make_zip({{"archive/data.pkl", pickle_of("}")}}, /*method=*/8), "compressed");
}

TEST(TorchPickle, RefusesTorchScriptArchives) {
  expect_refused(make_zip({{"m/data.pkl", pickle_of("}")}, {"m/constants.pkl", pickle_of(")")}}),
                 "TorchScript");
}

TEST(TorchPickle, RefusesUnsupportedOpcodes) {
  expect_refused(archive(pickle_of("ios\nsystem\n")), "opcode");    // INST
  expect_refused(archive(pickle_of("S'x'\n")), "opcode");           // STRING
  expect_refused(archive(pickle_of("]Nb")), "BUILD");               // BUILD on a list
  expect_refused(archive(pickle_of("h\x05")), "memo");              // unset memo slot
  expect_refused(archive(pickle_of("\x85")), "underflow");          // TUPLE1 on nothing
  expect_refused(archive(pickle_of("N(N\x86")), "underflow");       // TUPLE2 across a MARK
  expect_refused(archive(pickle_of("Ns")), "underflow");            // SETITEM
  expect_refused(archive(pickle_of("N(Nu")), "SETITEM on a None");  // SETITEMS on None
  expect_refused(archive(pickle_of("t")), "MARK");                  // TUPLE without MARK
  expect_refused(archive(pickle_of("\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01"s)), "64 bits");
  expect_refused(archive(pickle_of("X\x01\x00\x00\x00\xff"s)), "UTF-8");
}

TEST(TorchPickle, RefusesDeepNestingAndCycles) {
  std::string deep;
  for (int i = 0; i < 2000; ++i) deep += "]";
  for (int i = 0; i < 1999; ++i) deep += "a";
  expect_refused(archive(pickle_of(deep)), "deeper");
  // A list that holds itself.
  expect_refused(archive(pickle_of("}(X\x01\x00\x00\x00"s + "a]q\x00h\x00"s + "au")), "cycle");
}

TEST(TorchPickle, BoundsSharedSubobjects) {
  // l[k] = [l[k-1], l[k-1]]: 2^60 paths through 60 lists.
  std::string body = "]q\x00"s;
  for (int k = 1; k <= 60; ++k) {
    body += "](h" + std::string(1, static_cast<char>(k - 1)) + "h" +
            std::string(1, static_cast<char>(k - 1)) + "eq" + std::string(1, static_cast<char>(k));
  }
  expect_refused(archive(pickle_of(body)), "too many times");
}

TEST(TorchPickle, RefusesKeysThatNameTwoTensors) {
  Pickle p;
  p.proto().op('}').op('(').str("a.w");
  tensor(p, "FloatStorage", 4, 0, {4}, {1});
  p.str("a").op('}').op('(').str("w");
  tensor(p, "FloatStorage", 4, 0, {4}, {1});
  p.op('u').op('u').op('.');
  expect_refused(archive(p.bytes()), "duplicate key 'a.w'");
}

TEST(TorchPickle, ReadNamesMissingFile) {
  try {
    vidcls::read_torch_state_dict("/nonexistent/model.pth");
    ADD_FAILURE();
  } catch (const FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/model.pth"));
  }
}

}  // namespace
