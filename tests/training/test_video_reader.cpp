// Decoding real encoded files into RGB frames (vidcls::train::decode_video / VideoReader) and
// writing them (VideoWriter): what datasets, the clip cache and vidcls-synth rely on.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "vidcls/errors.h"
#include "vidcls/train/video_reader.h"
#include "vidcls/train/video_writer.h"

namespace fs = std::filesystem;
using vidcls::train::VideoCodec;

namespace {

constexpr int64_t kMs = 1000000;

class VideoReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("vidcls-video-reader-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string &name) const { return (dir_ / name).string(); }

  // Runs gst-launch-1.0 with `pipeline`; false if it is missing or fails.
  static bool gst_launch(const std::string &pipeline) {
    return std::system(("gst-launch-1.0 -q " + pipeline + " > /dev/null 2>&1").c_str()) == 0;
  }

  // Writes `frames` frames of `fill(t)` with VideoWriter.
  template <typename Fill>
  std::string write(const std::string &name, VideoCodec codec, int w, int h, int frames, int fps,
                    Fill fill) const {
    const std::string file = path(name + vidcls::train::file_extension(codec));
    vidcls::train::VideoWriter writer(file, codec, w, h, fps);
    for (int t = 0; t < frames; ++t) writer.write(fill(t));
    writer.finish();
    return file;
  }

  fs::path dir_;
};

const std::vector<VideoCodec> kCodecs = {VideoCodec::kMjpegAvi, VideoCodec::kMpeg4Mp4,
                                         VideoCodec::kVp8Webm};

torch::Tensor solid(int h, int w, int r, int g, int b) {
  auto f = torch::empty({h, w, 3}, torch::kUInt8);
  f.select(2, 0).fill_(r);
  f.select(2, 1).fill_(g);
  f.select(2, 2).fill_(b);
  return f;
}

// A horizontal ramp in red, a vertical one in green, blue constant: a row-stride error shears it.
torch::Tensor ramps(int h, int w) {
  auto x = torch::linspace(30, 220, w).view({1, w}).expand({h, w});
  auto y = torch::linspace(40, 210, h).view({h, 1}).expand({h, w});
  return torch::stack({x, y, torch::full({h, w}, 128.0)}, 2).round().to(torch::kUInt8);
}

int open_fds() {
  int n = 0;
  for ([[maybe_unused]] const auto &e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

TEST_F(VideoReaderTest, DecodesFrameCountSizeTimestampsAndRate) {
  const std::string file = path("test.avi");
  ASSERT_TRUE(gst_launch("videotestsrc num-buffers=20 ! video/x-raw,width=66,height=50,"
                         "framerate=10/1 ! jpegenc ! avimux ! filesink location=" + file))
      << "gst-launch-1.0 with videotestsrc, jpegenc and avimux is needed";
  const auto video = vidcls::train::decode_video(file);
  ASSERT_EQ(video.frames.sizes(), (std::vector<int64_t>{20, 50, 66, 3}));
  EXPECT_EQ(video.frames.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(video.frames.is_contiguous());
  EXPECT_DOUBLE_EQ(video.fps, 10.0);
  ASSERT_EQ(video.pts_ns.size(), 20u);
  ASSERT_EQ(video.duration_ns.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(video.pts_ns[i], i * 100 * kMs) << "frame " << i;
    EXPECT_EQ(video.duration_ns[i], 100 * kMs) << "frame " << i;
  }
}

TEST_F(VideoReaderTest, KnownColourSurvivesEncodingWithinCodecTolerance) {
  // 200, 60, 40 as videotestsrc draws it, through VP8's 4:2:0 and back. (Not JPEG from
  // gst-launch: `videotestsrc ! jpegenc` stores limited-range YUV in a full-range JPEG, and the
  // colours come back with their contrast reduced; VideoWriter converts to full range first.)
  const std::string file = path("solid.webm");
  ASSERT_TRUE(gst_launch("videotestsrc num-buffers=5 pattern=solid-color "
                         "foreground-color=0xffc83c28 ! video/x-raw,width=66,height=50,"
                         "framerate=10/1 ! vp8enc ! webmmux ! filesink location=" + file))
      << "gst-launch-1.0 with videotestsrc, vp8enc and webmmux is needed";
  const auto frame = vidcls::train::decode_video(file).frames[2].to(torch::kFloat32);
  const std::vector<float> want = {200, 60, 40};
  for (int c = 0; c < 3; ++c) {
    auto plane = frame.select(2, c);
    EXPECT_NEAR(plane.mean().item<float>(), want[c], 4) << "channel " << c;
    EXPECT_LE((plane - want[c]).abs().max().item<float>(), 10) << "channel " << c;
  }
}

TEST_F(VideoReaderTest, WriterRoundTripsColourAndTimestampsInEveryCodec) {
  for (auto codec : kCodecs) {
    SCOPED_TRACE(vidcls::train::to_string(codec));
    const std::string file = write("solid", codec, 66, 50, 12, 15, [](int t) {
      return solid(50, 66, 200, 60 + 10 * t, 40);
    });
    const auto video = vidcls::train::decode_video(file);
    ASSERT_EQ(video.frames.sizes(), (std::vector<int64_t>{12, 50, 66, 3}));
    EXPECT_DOUBLE_EQ(video.fps, 15.0);
    for (int t = 0; t < 12; ++t) {
      const auto mean = video.frames[t].to(torch::kFloat32).mean(torch::IntArrayRef{0, 1});
      EXPECT_NEAR(mean[0].item<float>(), 200, 8) << "frame " << t;
      EXPECT_NEAR(mean[1].item<float>(), 60 + 10 * t, 8) << "frame " << t;
      EXPECT_NEAR(mean[2].item<float>(), 40, 8) << "frame " << t;
      // Containers keep timestamps at their own precision (WebM: milliseconds).
      EXPECT_NEAR(static_cast<double>(video.pts_ns[t]), t * 1e9 / 15, 1e6) << "frame " << t;
      if (t > 0) {
        EXPECT_GT(video.pts_ns[t], video.pts_ns[t - 1]);
      }
    }
  }
}

TEST_F(VideoReaderTest, PaddedRowsAreCopiedRowByRow) {
  // 66 RGB pixels are 198 bytes; GStreamer pads RGB rows to 200. Both the writer and the reader
  // must honour the stride, or the ramps come back sheared.
  const auto want = ramps(50, 66).to(torch::kFloat32);
  for (auto codec : kCodecs) {
    SCOPED_TRACE(vidcls::train::to_string(codec));
    const std::string file = write("ramps", codec, 66, 50, 3, 10, [](int) { return ramps(50, 66); });
    const auto got = vidcls::train::decode_video(file).frames[0].to(torch::kFloat32);
    const auto row_error = (got - want).abs().mean(torch::IntArrayRef{1, 2});  // per row
    EXPECT_LT(row_error.max().item<float>(), 6) << "worst row " << row_error.argmax().item<int64_t>();
  }
}

TEST_F(VideoReaderTest, OddFrameSizes) {
  const std::string file = write("odd", VideoCodec::kMjpegAvi, 45, 33, 4, 10,
                                 [](int) { return solid(33, 45, 10, 200, 90); });
  const auto video = vidcls::train::decode_video(file);
  ASSERT_EQ(video.frames.sizes(), (std::vector<int64_t>{4, 33, 45, 3}));
  EXPECT_NEAR(video.frames.select(3, 1).to(torch::kFloat32).mean().item<float>(), 200, 5);
}

TEST_F(VideoReaderTest, IgnoresAudioStreams) {
  const std::string file = path("av.avi");
  ASSERT_TRUE(gst_launch("videotestsrc num-buffers=15 ! video/x-raw,width=64,height=48,"
                         "framerate=15/1 ! jpegenc ! avimux name=mux ! filesink location=" +
                         file +
                         " audiotestsrc num-buffers=20 samplesperbuffer=1600 ! "
                         "audio/x-raw,format=S16LE,rate=16000,channels=1 ! mux."));
  const auto video = vidcls::train::decode_video(file);
  EXPECT_EQ(video.frames.sizes(), (std::vector<int64_t>{15, 48, 64, 3}));
}

TEST_F(VideoReaderTest, MaxFramesStopsEarly) {
  const std::string file = write("long", VideoCodec::kMjpegAvi, 32, 24, 30, 10,
                                 [](int t) { return solid(24, 32, 8 * t, 0, 0); });
  const auto video = vidcls::train::decode_video(file, 5);
  ASSERT_EQ(video.frames.size(0), 5);
  EXPECT_EQ(video.pts_ns.size(), 5u);
  EXPECT_NEAR(video.frames[4].select(2, 0).to(torch::kFloat32).mean().item<float>(), 32, 5);
}

TEST_F(VideoReaderTest, StreamingGivesTheSameFramesAsWholeDecoding) {
  const std::string file = write("ramps", VideoCodec::kMpeg4Mp4, 40, 30, 8, 10,
                                 [](int t) { return ramps(30, 40).roll(t, 1); });
  const auto whole = vidcls::train::decode_video(file);
  vidcls::train::VideoReader reader(file);
  int64_t n = 0;
  while (auto frame = reader.next()) {
    ASSERT_LT(n, whole.frames.size(0));
    EXPECT_TRUE(torch::equal(frame->rgb, whole.frames[n])) << "frame " << n;
    EXPECT_EQ(frame->pts_ns, whole.pts_ns[n]);
    ++n;
  }
  EXPECT_EQ(n, whole.frames.size(0));
  EXPECT_EQ(reader.frames_read(), n);
  EXPECT_DOUBLE_EQ(reader.fps(), 10.0);
  EXPECT_FALSE(reader.next().has_value());  // stays at the end
}

// The message a user sees names the file, so a dataset report can list it.
void expect_format_error(const std::string &file, const std::string &reason) {
  try {
    vidcls::train::decode_video(file);
    ADD_FAILURE() << file << " decoded";
  } catch (const vidcls::FormatError &e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file), std::string::npos) << what;
    EXPECT_NE(what.find(reason), std::string::npos) << what;
  }
}

TEST_F(VideoReaderTest, MissingFileIsAFormatErrorNamingIt) {
  expect_format_error(path("nothing here.avi"), "no such file");
}

TEST_F(VideoReaderTest, DirectoryIsAFormatError) {
  fs::create_directories(path("dir.mp4"));
  expect_format_error(path("dir.mp4"), "directory");
}

TEST_F(VideoReaderTest, GarbageAndEmptyFilesAreFormatErrors) {
  {
    std::ofstream f(path("garbage.avi"), std::ios::binary);
    for (int i = 0; i < 5000; ++i) f.put(static_cast<char>((i * 7919 + 13) % 251));
  }
  std::ofstream(path("empty.mp4")).close();
  expect_format_error(path("garbage.avi"), "cannot decode");
  expect_format_error(path("empty.mp4"), "cannot decode");
}

TEST_F(VideoReaderTest, TruncatedContainerIsAFormatError) {
  for (auto codec : {VideoCodec::kMjpegAvi, VideoCodec::kMpeg4Mp4}) {
    const std::string file = write("cut", codec, 32, 24, 10, 10,
                                   [](int) { return solid(24, 32, 1, 2, 3); });
    fs::resize_file(file, 64);
    expect_format_error(file, "cannot decode");
  }
}

TEST_F(VideoReaderTest, AudioOnlyFileHasNoVideoStream) {
  const std::string file = path("tone.wav");
  ASSERT_TRUE(gst_launch("audiotestsrc num-buffers=10 ! wavenc ! filesink location=" + file));
  expect_format_error(file, "no video stream");
}

TEST_F(VideoReaderTest, ReleasesFilesAndPipelines) {
  const std::string file = write("leak", VideoCodec::kMjpegAvi, 32, 24, 10, 10,
                                 [](int) { return solid(24, 32, 9, 9, 9); });
  vidcls::train::decode_video(file);  // first use loads plugins and may open files for good
  const int before = open_fds();
  for (int i = 0; i < 20; ++i) {
    vidcls::train::decode_video(file, i % 2 ? 1 : 0);  // to the end, and abandoned early
    EXPECT_THROW(vidcls::train::decode_video(path("missing.avi")), vidcls::FormatError);
  }
  EXPECT_EQ(open_fds(), before);
}

TEST(VideoWriter, RejectsFramesOfTheWrongShape) {
  const auto file = fs::temp_directory_path() / ("vidcls-writer-" + std::to_string(::getpid()) + ".avi");
  {
    vidcls::train::VideoWriter writer(file.string(), VideoCodec::kMjpegAvi, 32, 24, 10);
    EXPECT_THROW(writer.write(torch::zeros({24, 30, 3}, torch::kUInt8)), c10::Error);
    EXPECT_THROW(writer.write(torch::zeros({24, 32, 3}, torch::kFloat32)), c10::Error);
  }
  fs::remove(file);
  EXPECT_THROW(vidcls::train::video_codec_from_string("h264"), std::invalid_argument);
  EXPECT_EQ(vidcls::train::video_codec_from_string("vp8-webm"), VideoCodec::kVp8Webm);
}

}  // namespace
