// The decode-once clip cache on real encoded videos (made with gst-launch-1.0 at test time):
// frames come back exactly, a second run decodes nothing, a corrupt video is skipped and named,
// and the frames are views into the mapping.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "vidcls/errors.h"
#include "vidcls/train/clip_cache.h"
#include "vidcls/train/video_reader.h"

namespace fs = std::filesystem;
namespace vt = vidcls::train;
using ::testing::HasSubstr;

namespace {

fs::path make_temp_dir(const std::string &name) {
  std::string tmpl = (fs::temp_directory_path() / ("vidcls-" + name + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// A short MJPEG AVI, as small as the readers care about: `frames` frames of a test pattern.
bool make_video(const fs::path &file, int frames, const std::string &pattern, int width,
                int height) {
  fs::create_directories(file.parent_path());
  const std::string cmd = "gst-launch-1.0 -q videotestsrc num-buffers=" + std::to_string(frames) +
                          " pattern=" + pattern + " ! video/x-raw,width=" + std::to_string(width) +
                          ",height=" + std::to_string(height) +
                          ",framerate=10/1 ! jpegenc ! avimux ! filesink location='" +
                          file.string() + "' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0 && fs::file_size(file) > 0;
}

void write(const fs::path &file, const std::string &text) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
}

void copy_tree(const fs::path &from, const fs::path &to) {
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

const std::string kCorrupt = "a02_s04_e01_rgb.avi";

// An MSR-layout dataset with three real videos (two classes, subjects 1 to 3; one portrait)
// and a corrupt file. Made once for the suite and copied where a test changes it.
class ClipCacheTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = make_temp_dir("cache-test");
    const fs::path ds = root_ / "dataset";
    write(ds / "labels.txt", "left\nright\n");
    ok_ = make_video(ds / "a01_s01_e01_rgb.avi", 12, "ball", 96, 64) &&
          make_video(ds / "a02_s02_e01_rgb.avi", 9, "smpte", 80, 60) &&
          make_video(ds / "a01_s03_e02_rgb.avi", 7, "snow", 48, 72);
    // Named like a video, bytes of no container at all. (A damaged AVI header is the other
    // classic, but decodebin can lose avidemux's error in a race and leave the reader waiting
    // for its stall timeout, which is no unit test.)
    std::string noise(4096, '\0');
    uint32_t x = 12345;
    for (auto &c : noise) {
      x = x * 1103515245u + 12345u;
      c = static_cast<char>((x >> 16) & 0xff);
    }
    write(ds / kCorrupt, noise);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void SetUp() override {
    if (!ok_) GTEST_SKIP() << "gst-launch-1.0 with videotestsrc, jpegenc and avimux is needed";
    dir_ = make_temp_dir("cache-case");
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  fs::path dataset() const { return root_ / "dataset"; }
  // A copy of the dataset this test may change.
  fs::path own_dataset() {
    copy_tree(dataset(), dir_ / "dataset");
    return dir_ / "dataset";
  }
  fs::path cache_dir() const { return dir_ / "cache"; }
  // Every video at one short side and no validation side: what most cases below look at.
  static vt::CacheOptions plain() {
    vt::CacheOptions o;
    o.val_fraction = 0;
    o.eval_short_side = o.short_side;
    return o;
  }

  static fs::path root_;
  static bool ok_;
  fs::path dir_;
};

fs::path ClipCacheTest::root_;
bool ClipCacheTest::ok_ = false;

}  // namespace

TEST(ResizeShortSide, KeepsAspectAndScalesTheShortSide) {
  auto landscape = torch::randint(0, 256, {2, 60, 80, 3}, torch::kUInt8);
  EXPECT_EQ(vt::resize_short_side(landscape, 30).sizes(), (std::vector<int64_t>{2, 30, 40, 3}));
  auto portrait = torch::randint(0, 256, {1, 70, 50, 3}, torch::kUInt8);
  EXPECT_EQ(vt::resize_short_side(portrait, 73).sizes(), (std::vector<int64_t>{1, 102, 73, 3}));
  EXPECT_TRUE(torch::equal(vt::resize_short_side(landscape, 60), landscape));
  EXPECT_TRUE(torch::equal(vt::resize_short_side(landscape, 0), landscape));
  // A flat colour stays that colour whichever way it is scaled; the long side is truncated, as
  // torchvision's Resize does (41 * 96 / 64 = 61.5 -> 61).
  auto flat = torch::full({3, 64, 96, 3}, 77, torch::kUInt8);
  EXPECT_TRUE(torch::equal(vt::resize_short_side(flat, 41),
                           torch::full({3, 41, 61, 3}, 77, torch::kUInt8)));
  EXPECT_EQ(vt::short_side_for_crop(64), 73);
  EXPECT_EQ(vt::short_side_for_crop(224), 256);
  EXPECT_EQ(vt::kDefaultShortSide, vt::short_side_for_crop(64));
}

TEST_F(ClipCacheTest, RoundTripsFramesExactlyAndSkipsTheCorruptVideo) {
  vt::CacheOptions options = plain();
  options.short_side = options.eval_short_side = 40;
  const auto report = vt::build_cache(dataset().string(), cache_dir().string(), options);
  EXPECT_TRUE(report.written);
  EXPECT_EQ(report.decoded, 3u);
  EXPECT_EQ(report.reused, 0u);
  EXPECT_EQ(report.videos, 3u);
  EXPECT_EQ(report.frames, 12 + 9 + 7);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_EQ(fs::path(report.skipped[0].path).filename(), kCorrupt);
  EXPECT_FALSE(report.skipped[0].reason.empty());

  const auto cache = vt::ClipCache::open(cache_dir().string());
  EXPECT_EQ(cache.layout(), "msr");
  EXPECT_EQ(cache.split(), "cross-subject");
  EXPECT_EQ(cache.classes(), (std::vector<std::string>{"left", "right"}));
  EXPECT_EQ(cache.short_side(), 40);
  ASSERT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.indices("train"), (std::vector<size_t>{0, 1}));  // subjects 1 and 3
  EXPECT_EQ(cache.indices("test"), (std::vector<size_t>{2}));
  ASSERT_EQ(cache.skipped().size(), 1u);
  EXPECT_EQ(cache.skipped()[0].reason, report.skipped[0].reason);

  const std::vector<std::vector<int64_t>> shapes = {
      {12, 40, 60, 3}, {7, 60, 40, 3}, {9, 40, 53, 3}};
  for (size_t i = 0; i < cache.size(); ++i) {
    const auto &v = cache.item(i);
    SCOPED_TRACE(v.path);
    const auto decoded = vt::decode_video(v.path);
    const auto expected = vt::resize_short_side(decoded.frames, 40);
    const auto frames = cache.frames(i);
    EXPECT_EQ(frames.sizes(), shapes[i]);
    EXPECT_EQ(frames.scalar_type(), torch::kUInt8);
    EXPECT_TRUE(torch::equal(frames, expected));
    EXPECT_EQ(v.source_height, decoded.frames.size(1));
    EXPECT_EQ(v.source_width, decoded.frames.size(2));
    EXPECT_DOUBLE_EQ(v.fps, decoded.fps);
    EXPECT_TRUE(torch::equal(cache.timestamps_ns(i), torch::tensor(decoded.pts_ns)));
    EXPECT_TRUE(torch::equal(cache.durations_ns(i), torch::tensor(decoded.duration_ns)));
    EXPECT_EQ(cache.classes()[v.label], v.label_name);
  }
  EXPECT_EQ(cache.item(0).label_name, "left");
  EXPECT_EQ(cache.item(0).subject, 1);
  EXPECT_EQ(cache.item(2).label_name, "right");
  EXPECT_EQ(cache.item(2).side, "test");

  // The index names the skipped video and why, for a user reading it.
  std::ifstream in(cache_dir() / "index.json");
  const auto index = nlohmann::json::parse(in);
  ASSERT_EQ(index.at("skipped").size(), 1u);
  EXPECT_EQ(index["skipped"][0]["path"], kCorrupt);
  EXPECT_EQ(index["videos"][0]["path"], "a01_s01_e01_rgb.avi");
}

TEST_F(ClipCacheTest, SecondBuildDecodesNothingAndWritesNothing) {
  vt::build_cache(dataset().string(), cache_dir().string(), plain());
  const auto index_mtime = fs::last_write_time(cache_dir() / "index.json");
  const auto before = vt::ClipCache::open(cache_dir().string());

  std::vector<std::string> actions;
  vt::CacheOptions options = plain();
  options.progress = [&](const vt::CacheOptions::Event &e) { actions.push_back(e.action); };
  const auto again = vt::build_cache(dataset().string(), cache_dir().string(), options);
  EXPECT_EQ(again.decoded, 0u);
  EXPECT_EQ(again.reused, 3u);
  EXPECT_EQ(again.skipped.size(), 1u);  // the corrupt video, not tried again
  EXPECT_FALSE(again.written);
  EXPECT_EQ(actions, (std::vector<std::string>{"reused", "reused", "reused", "skipped"}));
  EXPECT_EQ(fs::last_write_time(cache_dir() / "index.json"), index_mtime);
  EXPECT_EQ(vt::ClipCache::open(cache_dir().string()).data_file(), before.data_file());
}

TEST_F(ClipCacheTest, ChangedAddedAndRemovedVideosAreUpdatedIncrementally) {
  const fs::path ds = own_dataset();
  vt::build_cache(ds.string(), cache_dir().string(), plain());
  const auto old = vt::ClipCache::open(cache_dir().string());
  const auto old_first = old.frames(0).clone();

  ASSERT_TRUE(make_video(ds / "a01_s03_e02_rgb.avi", 5, "pinwheel", 64, 48));  // changed
  ASSERT_TRUE(make_video(ds / "a02_s05_e02_rgb.avi", 4, "gradient", 64, 48));  // added
  fs::remove(ds / "a02_s02_e01_rgb.avi");                                      // removed
  const auto report = vt::build_cache(ds.string(), cache_dir().string(), plain());
  EXPECT_EQ(report.decoded, 2u);
  EXPECT_EQ(report.reused, 1u);
  EXPECT_EQ(report.removed, 1u);
  EXPECT_TRUE(report.written);

  const auto cache = vt::ClipCache::open(cache_dir().string());
  ASSERT_EQ(cache.size(), 3u);
  EXPECT_EQ(fs::path(cache.item(1).path).filename(), "a01_s03_e02_rgb.avi");
  EXPECT_EQ(cache.item(1).frames, 5);
  EXPECT_EQ(fs::path(cache.item(2).path).filename(), "a02_s05_e02_rgb.avi");
  EXPECT_TRUE(torch::equal(cache.frames(0), old_first));  // the reused one is the same
  for (size_t i = 0; i < cache.size(); ++i) {
    const auto expected =
        vt::resize_short_side(vt::decode_video(cache.item(i).path).frames, cache.short_side());
    EXPECT_TRUE(torch::equal(cache.frames(i), expected)) << cache.item(i).path;
  }
  // A cache opened before the rebuild still reads its own (now unlinked) frames file.
  EXPECT_NE(old.data_file(), cache.data_file());
  EXPECT_FALSE(fs::exists(old.data_file()));
  EXPECT_TRUE(torch::equal(old.frames(0), old_first));
}

TEST_F(ClipCacheTest, NewSettingsDecodeAgainAndAnotherSplitOnlyRewritesTheIndex) {
  vt::CacheOptions options = plain();
  options.max_frames = 5;
  auto report = vt::build_cache(dataset().string(), cache_dir().string(), options);
  EXPECT_EQ(report.frames, 15);
  options.max_frames = 0;
  report = vt::build_cache(dataset().string(), cache_dir().string(), options);
  EXPECT_EQ(report.decoded, 3u);
  EXPECT_EQ(report.frames, 28);

  const auto before = vt::ClipCache::open(cache_dir().string());
  options.split = "random80";
  report = vt::build_cache(dataset().string(), cache_dir().string(), options);
  EXPECT_EQ(report.decoded, 0u);
  EXPECT_EQ(report.reused, 3u);
  EXPECT_TRUE(report.written);
  const auto after = vt::ClipCache::open(cache_dir().string());
  EXPECT_EQ(after.split(), "random80");
  EXPECT_EQ(after.data_file(), before.data_file());  // frames untouched
  EXPECT_EQ(after.indices("train").size() + after.indices("test").size(), 3u);
}

// Validation and test videos are stored at the clip spec's crop short side (so evaluation clips are
// the live pipeline's up to rounding), training videos above it (room for random crops); a video
// that changes side is decoded again at its new size, the others are reused.
TEST_F(ClipCacheTest, EachSideIsStoredAtItsShortSide) {
  vt::CacheOptions options;  // 73 for training, 64 for evaluation, a tenth held out
  auto report = vt::build_cache(dataset().string(), cache_dir().string(), options);
  EXPECT_EQ(report.decoded, 3u);
  auto cache = vt::ClipCache::open(cache_dir().string());
  EXPECT_EQ(cache.short_side(), 73);
  EXPECT_EQ(cache.eval_short_side(), 64);
  EXPECT_DOUBLE_EQ(cache.val_fraction(), 0.1);
  ASSERT_EQ(cache.indices("val").size(), 1u) << "one of the two training subjects";
  ASSERT_EQ(cache.indices("train").size(), 1u);
  ASSERT_EQ(cache.indices("test").size(), 1u);
  const size_t moved = cache.indices("val")[0];
  for (size_t i = 0; i < cache.size(); ++i) {
    const auto &v = cache.item(i);
    SCOPED_TRACE(v.path + " (" + v.side + ")");
    EXPECT_EQ(std::min(v.height, v.width), v.side == "train" ? 73 : 64);
    EXPECT_TRUE(torch::equal(cache.frames(i),
                             vt::resize_short_side(vt::decode_video(v.path).frames,
                                                   v.side == "train" ? 73 : 64)));
  }
  options.val_fraction = 0;  // the validation video goes back to training, at 73
  report = vt::build_cache(dataset().string(), cache_dir().string(), options);
  EXPECT_EQ(report.decoded, 1u);
  EXPECT_EQ(report.reused, 2u);
  cache = vt::ClipCache::open(cache_dir().string());
  EXPECT_TRUE(cache.indices("val").empty());
  EXPECT_EQ(cache.item(moved).side, "train");
  EXPECT_EQ(std::min(cache.item(moved).height, cache.item(moved).width), 73);
}

TEST_F(ClipCacheTest, FramesAreViewsIntoTheMapping) {
  vt::build_cache(dataset().string(), cache_dir().string(), plain());
  torch::Tensor view;
  {
    const auto cache = vt::ClipCache::open(cache_dir().string());
    const uint8_t *begin = cache.data();
    const uint8_t *end = begin + cache.data_size();
    for (size_t i = 0; i < cache.size(); ++i) {
      const auto frames = cache.frames(i);
      const auto *p = static_cast<const uint8_t *>(frames.data_ptr());
      EXPECT_GE(p, begin);
      EXPECT_LE(p + frames.numel(), end);
      EXPECT_EQ(frames.data_ptr(), cache.frames(i).data_ptr());  // the same bytes each time
      EXPECT_TRUE(frames.is_contiguous());
    }
    view = cache.frames(0).narrow(0, 2, 3);
  }
  // The view keeps the mapping alive after the cache object is gone.
  const auto expected =
      vt::resize_short_side(vt::decode_video((dataset() / "a01_s01_e01_rgb.avi").string()).frames,
                            vt::kDefaultShortSide)
          .narrow(0, 2, 3);
  EXPECT_TRUE(torch::equal(view, expected));
}

TEST_F(ClipCacheTest, DamagedCacheIsRejectedOnOpenAndRebuilt) {
  vt::build_cache(dataset().string(), cache_dir().string(), plain());
  const std::string data = vt::ClipCache::open(cache_dir().string()).data_file();
  fs::resize_file(data, fs::file_size(data) / 2);
  try {
    vt::ClipCache::open(cache_dir().string());
    FAIL() << "expected vidcls::FormatError";
  } catch (const vidcls::FormatError &e) {
    EXPECT_THAT(e.what(), HasSubstr("bytes, the index says"));
  }
  const auto report = vt::build_cache(dataset().string(), cache_dir().string(), plain());
  EXPECT_EQ(report.decoded, 3u);
  EXPECT_NO_THROW(vt::ClipCache::open(cache_dir().string()));
  EXPECT_FALSE(vt::is_clip_cache(dataset().string()));
  EXPECT_THROW(vt::ClipCache::open(dataset().string()), vidcls::FormatError);
}
