#include "vidcls/safetensors.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "vidcls/errors.h"

namespace {

using ::testing::HasSubstr;
using vidcls::FormatError;
using vidcls::NamedTensors;

// A fresh directory per test, under gtest's temporary directory (TEST_TMPDIR / TMPDIR).
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = ::testing::TempDir() + "vidcls_st_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string &path() const { return path_; }
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    if (DIR *d = ::opendir(path_.c_str())) {
      while (dirent *e = ::readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      ::closedir(d);
    }
    return names;
  }

 private:
  std::string path_;
};

// An 8-byte little-endian length, the header text, then the data section.
std::string file_bytes(const std::string &header, const std::string &data = "") {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return out + header + data;
}

vidcls::SafetensorsFile parse(const std::string &bytes) {
  return vidcls::parse_safetensors(reinterpret_cast<const std::uint8_t *>(bytes.data()),
                                   bytes.size(), "test.safetensors");
}

// Parsing must fail with a FormatError whose message names the file and the problem.
void expect_refused(const std::string &bytes, const std::string &problem) {
  try {
    parse(bytes);
    ADD_FAILURE() << "accepted a file that should fail with '" << problem << "'";
  } catch (const FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("test.safetensors"));
    EXPECT_THAT(e.what(), HasSubstr(problem));
  }
}

NamedTensors sample_tensors() {
  torch::manual_seed(0);
  return {
      {"f32", torch::randn({2, 3})},
      {"f64", torch::randn({4}, torch::kDouble)},
      {"f16", torch::randn({3, 2}).to(torch::kHalf)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::arange(-3, 3, torch::kLong)},
      {"i32", torch::arange(6, torch::kInt).reshape({2, 3})},
      {"i16", torch::arange(4, torch::kShort)},
      {"i8", torch::arange(-2, 2, torch::kChar)},
      {"u8", torch::arange(250, 256, torch::kInt).to(torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(2.5)},
      {"empty", torch::empty({0, 3})},
  };
}

void expect_same_tensors(const NamedTensors &actual, NamedTensors expected) {
  // Written in name order, so read back in name order too.
  std::sort(expected.begin(), expected.end(),
            [](const auto &a, const auto &b) { return a.first < b.first; });
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

TEST(Safetensors, RoundTripKeepsTensorsAndMetadata) {
  ScratchDir dir;
  const std::string path = dir.path() + "/weights.safetensors";
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"arch", "x3d_s"}};
  const NamedTensors tensors = sample_tensors();

  vidcls::write_safetensors(path, tensors, metadata);
  const vidcls::SafetensorsFile file = vidcls::read_safetensors(path);

  EXPECT_EQ(file.metadata, metadata);
  expect_same_tensors(file.tensors, tensors);
}

TEST(Safetensors, SerializedTensorsOwnTheirMemory) {
  std::string bytes = vidcls::serialize_safetensors({{"w", torch::ones({4})}}, {});
  const vidcls::SafetensorsFile file = parse(bytes);
  std::fill(bytes.begin(), bytes.end(), '\0');
  EXPECT_TRUE(torch::equal(file.tensors.at(0).second, torch::ones({4})));
}

TEST(Safetensors, HeaderIsPaddedToEightBytes) {
  for (const char *name : {"a", "ab", "abc", "abcd", "abcde", "abcdef", "abcdefg", "xy"}) {
    const std::string bytes = vidcls::serialize_safetensors({{name, torch::ones({1})}}, {});
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<std::uint8_t>(bytes[i]);
    EXPECT_EQ(n % 8, 0u) << name;
    EXPECT_EQ(bytes.size(), 8 + n + 4) << name;
  }
}

TEST(Safetensors, SerializeWritesNonContiguousTensorsByValue) {
  const torch::Tensor t = torch::arange(12, torch::kFloat).reshape({3, 4});
  const vidcls::SafetensorsFile file =
      parse(vidcls::serialize_safetensors({{"t", t.t()}, {"s", t.slice(1, 1, 4, 2)}}, {}));
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_TRUE(torch::equal(file.tensors[0].second, t.slice(1, 1, 4, 2)));
  EXPECT_TRUE(torch::equal(file.tensors[1].second, t.t()));
}

TEST(Safetensors, SerializeRefusesDuplicateNames) {
  EXPECT_THROW(
      vidcls::serialize_safetensors({{"w", torch::ones({1})}, {"w", torch::zeros({1})}}, {}),
      std::invalid_argument);
}

TEST(Safetensors, AtomicWriteLeavesNoTemporaryFile) {
  ScratchDir dir;
  const std::string path = dir.path() + "/w.safetensors";
  vidcls::write_safetensors(path, {{"a", torch::ones({2})}}, {});
  vidcls::write_safetensors(path, {{"b", torch::zeros({3})}}, {});  // replaces the file
  EXPECT_EQ(dir.list(), std::vector<std::string>{"w.safetensors"});
  const vidcls::SafetensorsFile file = vidcls::read_safetensors(path);
  ASSERT_EQ(file.tensors.size(), 1u);
  EXPECT_EQ(file.tensors[0].first, "b");

  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0044, 0u) << "mkstemp's 0600 should not leak into the result";
}

TEST(Safetensors, FailedWriteRemovesTemporaryFile) {
  ScratchDir dir;
  // Renaming a file over a directory fails after the temporary file was written.
  const std::string path = dir.path() + "/occupied";
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  EXPECT_THROW(vidcls::write_safetensors(path, {{"a", torch::ones({2})}}, {}), std::runtime_error);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"occupied"});

  EXPECT_THROW(vidcls::write_safetensors(dir.path() + "/missing/w.safetensors",
                                         {{"a", torch::ones({2})}}, {}),
               std::runtime_error);
}

TEST(Safetensors, HeaderOnlyReadGivesNamesShapesAndMetadata) {
  ScratchDir dir;
  const std::string path = dir.path() + "/w.safetensors";
  vidcls::write_safetensors(
      path, {{"b", torch::ones({2, 3}, torch::kHalf)}, {"a", torch::ones({})}}, {{"k", "v"}});
  const vidcls::SafetensorsHeader header = vidcls::read_safetensors_header(path);
  EXPECT_EQ(header.metadata, (std::map<std::string, std::string>{{"k", "v"}}));
  ASSERT_EQ(header.entries.size(), 2u);
  EXPECT_EQ(header.entries[0].name, "a");
  EXPECT_EQ(header.entries[0].dtype, "F32");
  EXPECT_TRUE(header.entries[0].shape.empty());
  EXPECT_EQ(header.entries[1].name, "b");
  EXPECT_EQ(header.entries[1].dtype, "F16");
  EXPECT_EQ(header.entries[1].shape, (std::vector<std::int64_t>{2, 3}));
}

TEST(Safetensors, HeaderOnlyReadChecksOffsetsAgainstFileSize) {
  ScratchDir dir;
  const std::string path = dir.path() + "/cut.safetensors";
  std::string bytes = vidcls::serialize_safetensors({{"w", torch::ones({16})}}, {});
  bytes.resize(bytes.size() - 4);
  std::ofstream(path, std::ios::binary) << bytes;
  try {
    vidcls::read_safetensors_header(path);
    ADD_FAILURE() << "a truncated data section was accepted";
  } catch (const FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr("out of range"));
  }
  EXPECT_THROW(vidcls::read_safetensors_header(dir.path() + "/none"), FormatError);
}

TEST(Safetensors, ReadNamesMissingFile) {
  try {
    vidcls::read_safetensors("/nonexistent/w.safetensors");
    ADD_FAILURE();
  } catch (const FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/w.safetensors"));
  }
}

TEST(Safetensors, AcceptsAnEmptyFile) {
  const vidcls::SafetensorsFile file = parse(file_bytes("{}"));
  EXPECT_TRUE(file.tensors.empty());
  EXPECT_TRUE(file.metadata.empty());
}

TEST(Safetensors, ReturnsTensorsInDataOrder) {
  const std::string header = R"({"z":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})";
  const vidcls::SafetensorsFile file = parse(file_bytes(header, "\x01\x02\x03"));
  ASSERT_EQ(file.tensors.size(), 2u);
  EXPECT_EQ(file.tensors[0].first, "z");
  EXPECT_EQ(file.tensors[1].first, "a");
  EXPECT_EQ(file.tensors[1].second[1].item<int>(), 3);
}

TEST(Safetensors, RefusesShortBuffer) { expect_refused(std::string(5, '\0'), "truncated"); }

TEST(Safetensors, RefusesHeaderLengthOverrun) {
  std::string bytes = file_bytes("{}");
  bytes[0] = 100;
  expect_refused(bytes, "overrun");
  expect_refused(std::string(7, '\0') + "\x80" + "{}", "overrun");  // 2^63
}

TEST(Safetensors, RefusesBadJson) {
  expect_refused(file_bytes("{\"a\": "), "JSON");
  expect_refused(file_bytes("{\"\xff\": 1}"), "JSON");
  expect_refused(file_bytes("[]"), "not an object");
  expect_refused(file_bytes(std::string(40, '[') + std::string(40, ']')), "deeper");
}

TEST(Safetensors, RefusesMissingOrIllTypedFields) {
  expect_refused(file_bytes(R"({"w":{"dtype":"F32","shape":[1]}})", "abcd"), "data_offsets");
  expect_refused(file_bytes(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", "abcd"), "dtype");
  expect_refused(file_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"), "shape");
  expect_refused(file_bytes(R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", "abcd"),
                 "dtype");
  expect_refused(file_bytes(R"({"w":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", "abcd"),
                 "shape");
  expect_refused(file_bytes(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd"),
                 "not an integer");
  expect_refused(file_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "abcd"),
                 "data_offsets");
  expect_refused(file_bytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-1,4]}})", "abcd"),
                 "data_offsets");
  expect_refused(file_bytes(R"({"w":[]})"), "not a JSON object");
}

TEST(Safetensors, RefusesUnknownDtype) {
  expect_refused(file_bytes(R"({"w":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})", "abcd"),
                 "dtype");
  expect_refused(file_bytes(R"({"w":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}})", "abcd"),
                 "dtype");
}

TEST(Safetensors, RefusesNegativeOrOverflowingShape) {
  expect_refused(file_bytes(R"({"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", "a"),
                 "negative");
  expect_refused(file_bytes(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],)"
                            R"("data_offsets":[0,0]}})"),
                 "overflow");
  expect_refused(file_bytes(R"({"w":{"dtype":"F64","shape":[2305843009213693952],)"
                            R"("data_offsets":[0,0]}})"),
                 "byte count");
}

TEST(Safetensors, RefusesOffsetsEndingBeforeTheyBegin) {
  expect_refused(file_bytes(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}})", "a"),
                 "end before");
}

TEST(Safetensors, RefusesOffsetsOutOfRange) {
  expect_refused(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"),
                 "out of range");
}

TEST(Safetensors, RefusesByteCountMismatch) {
  expect_refused(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"),
                 "byte count");
}

TEST(Safetensors, RefusesOverlappingTensors) {
  expect_refused(file_bytes(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                            "abcd"),
                 "overlap");
}

TEST(Safetensors, RefusesGaps) {
  // Between tensors, before the first, and after the last.
  expect_refused(file_bytes(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                            R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                            "abcd"),
                 "gap");
  expect_refused(file_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", "abcd"),
                 "gap");
  expect_refused(file_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", "abcd"),
                 "gap");
}

TEST(Safetensors, RefusesDuplicateNames) {
  expect_refused(file_bytes(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                            R"("a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                            "abcd"),
                 "duplicate");
  expect_refused(file_bytes(R"({"__metadata__":{"k":"1","k":"2"}})"), "duplicate");
}

TEST(Safetensors, RefusesMalformedMetadata) {
  expect_refused(file_bytes(R"({"__metadata__":["x"]})"), "__metadata__");
  expect_refused(file_bytes(R"({"__metadata__":{"k":1}})"), "__metadata__");
}

TEST(Safetensors, RefusesInvalidBool) {
  expect_refused(file_bytes(R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})",
                            std::string("\x01\x02", 2)),
                 "BOOL");
}

}  // namespace
