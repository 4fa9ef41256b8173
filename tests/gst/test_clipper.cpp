// vidclsclipper through GstHarness: clip boundaries and meta, sampling, formats, resets, EOS
// policies, passthrough, racing property changes, errors.
//
// The plugin is loaded from VIDCLS_PLUGIN_DIR (set by meson) with a registry of its own
// (gst_test_env.h). No inference element answers the clip-spec query here unless a test answers
// it itself, so the tests set the clipper's properties.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <ostream>
#include <string>
#include <vector>

#include <torch/cuda.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "gst_test_clip.h"
#include "gstvidclsclip.h"  // GstVidclsClipMeta's layout only: its functions live in the plugin
#include "vidcls/clip_spec.h"

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers

constexpr int kFps = 30;

GstClockTime pts_of(guint64 frame) { return gst_util_uint64_scale(frame, GST_SECOND, kFps); }
GstClockTime duration_of(guint64 frame) { return pts_of(frame + 1) - pts_of(frame); }

// A harness around one vidclsclipper, torn down on scope exit.
struct Harness {
  GstHarness *h;
  explicit Harness(const std::string &properties = "") : h(gst_harness_new("vidclsclipper")) {
    set(properties);
  }
  ~Harness() { gst_harness_teardown(h); }
  Harness(const Harness &) = delete;
  Harness &operator=(const Harness &) = delete;

  // "name=value name=value", values as gst-launch takes them.
  void set(const std::string &properties) {
    gchar **pairs = g_strsplit(properties.c_str(), " ", -1);
    for (gchar **p = pairs; *p; ++p) {
      if (**p == '\0') continue;
      gchar **kv = g_strsplit(*p, "=", 2);
      ASSERT_NE(kv[1], nullptr) << *p;
      gst_util_set_object_arg(G_OBJECT(h->element), kv[0], kv[1]);
      g_strfreev(kv);
    }
    g_strfreev(pairs);
  }
  guint64 counter(const char *name) {
    guint64 v = 0;
    g_object_get(h->element, name, &v, nullptr);
    return v;
  }
};

const GstVidclsClipMeta *clip_meta(GstBuffer *buf) { return vidcls_test::find_clip_meta(buf); }

// The carrier buffer of a "vidcls-eos-clip" event, or nullptr.
GstBuffer *eos_clip_carrier(GstEvent *event) {
  if (GST_EVENT_TYPE(event) != GST_EVENT_CUSTOM_DOWNSTREAM) return nullptr;
  const GstStructure *s = gst_event_get_structure(event);
  if (!s || !gst_structure_has_name(s, "vidcls-eos-clip")) return nullptr;
  const GValue *v = gst_structure_get_value(s, "carrier");
  return v ? gst_value_get_buffer(v) : nullptr;
}

// A deterministic RGB frame [h, w, 3], different for each index.
torch::Tensor pattern_rgb(int64_t index, int64_t h = 8, int64_t w = 8) {
  return (torch::arange(h * w * 3, torch::kLong) * 7 + index * 31 + (index * index) % 97)
      .remainder(256)
      .to(torch::kUInt8)
      .view({h, w, 3});
}

torch::Tensor random_rgb(int64_t h, int64_t w) {
  return torch::randint(0, 256, {h, w, 3}, torch::kUInt8);
}

// A buffer of packed 8-bit RGB `format` holding `rgb`, with GStreamer's default strides; the
// 4th byte of 4-byte formats gets noise the clipper must ignore.
GstBuffer *pack_rgb(const torch::Tensor &rgb, GstVideoFormat format) {
  const int64_t h = rgb.size(0), w = rgb.size(1);
  GstVideoInfo info;
  gst_video_info_set_format(&info, format, w, h);
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
  GstVideoFrame frame;
  EXPECT_TRUE(gst_video_frame_map(&frame, &info, buf, GST_MAP_WRITE));
  const int64_t ps = GST_VIDEO_FRAME_COMP_PSTRIDE(&frame, 0);
  auto view = torch::from_blob(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0), {h, w, ps},
                               {GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0), ps, 1}, torch::kUInt8);
  view.copy_(torch::randint(0, 256, {h, w, ps}, torch::kUInt8));
  for (int c = 0; c < 3; c++) {
    view.select(2, GST_VIDEO_FORMAT_INFO_POFFSET(info.finfo, c)).copy_(rgb.select(2, c));
  }
  gst_video_frame_unmap(&frame);
  return buf;
}

// An RGB buffer's pixels as [h, w, 3] (a copy).
torch::Tensor unpack_rgb(GstBuffer *buf, int64_t w, int64_t h) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGB, w, h);
  GstVideoFrame frame;
  EXPECT_TRUE(gst_video_frame_map(&frame, &info, buf, GST_MAP_READ));
  auto rgb = torch::from_blob(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0), {h, w, 3},
                              {GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0), 3, 1}, torch::kUInt8)
                 .clone();
  gst_video_frame_unmap(&frame);
  return rgb;
}

GstBuffer *stamp(GstBuffer *buf, GstClockTime pts, GstClockTime duration) {
  GST_BUFFER_PTS(buf) = pts;
  GST_BUFFER_DURATION(buf) = duration;
  return buf;
}

// Frame `index` of the 30 fps 8x8 RGB test stream.
GstBuffer *pattern_buffer(int64_t index) {
  return stamp(pack_rgb(pattern_rgb(index), GST_VIDEO_FORMAT_RGB), pts_of(index),
               duration_of(index));
}

const char *kRgbCaps = "video/x-raw,format=RGB,width=8,height=8,framerate=30/1";

vidcls::ClipSpec small_spec() {
  vidcls::ClipSpec spec;
  spec.width = 4;
  spec.height = 4;
  spec.resize = vidcls::ResizeMode::kStretch;
  return spec;
}
const char *kSmallSpec = "width=4 height=4 resize=stretch";

void expect_same(const torch::Tensor &actual, const torch::Tensor &expected,
                 const std::string &what) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  EXPECT_TRUE(torch::equal(actual, expected))
      << what << ": max |diff| " << (actual - expected).abs().max().item<float>();
}

// Pushes the EOS and returns the events that reach the harness sink, in order.
std::vector<GstEvent *> push_eos(GstHarness *h) {
  EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  std::vector<GstEvent *> events;
  while (GstEvent *e = gst_harness_try_pull_event(h)) events.push_back(e);
  return events;
}

void unref_all(std::vector<GstEvent *> &events) {
  for (GstEvent *e : events) gst_event_unref(e);
  events.clear();
}

// The EOS clip carrier among `events` (transfer none); checks it comes right before EOS.
GstBuffer *find_eos_clip(const std::vector<GstEvent *> &events) {
  for (size_t i = 0; i < events.size(); i++) {
    if (GstBuffer *carrier = eos_clip_carrier(events[i])) {
      EXPECT_TRUE(i + 1 < events.size() && GST_EVENT_TYPE(events[i + 1]) == GST_EVENT_EOS)
          << "the EOS clip must come right before EOS";
      return carrier;
    }
  }
  return nullptr;
}

// Answers the clip-spec query as an inference element would.
struct Answerer {
  vidcls::ClipSpec spec;
  std::string device = "cpu";
  int asked = 0;

  static GstPadProbeReturn probe(GstPad *, GstPadProbeInfo *info, gpointer data) {
    auto *self = static_cast<Answerer *>(data);
    GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
    const GstStructure *s = gst_query_get_structure(query);
    if (GST_QUERY_TYPE(query) != GST_QUERY_CUSTOM || !s ||
        !gst_structure_has_name(s, "vidcls-clip-spec")) {
      return GST_PAD_PROBE_OK;
    }
    const std::string json = nlohmann::json(self->spec).dump();
    gst_structure_set(gst_query_writable_structure(query), "clip", G_TYPE_STRING, json.c_str(),
                      "device", G_TYPE_STRING, self->device.c_str(), "model", G_TYPE_STRING,
                      "test-model", nullptr);
    self->asked++;
    return GST_PAD_PROBE_HANDLED;
  }
  void attach(GstHarness *h) {
    gst_pad_add_probe(h->sinkpad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM, &Answerer::probe, this,
                      nullptr);
  }
};

// ---------------------------------------------------------------------------------------------
// Clip boundaries, indices and timestamps

struct Boundaries {
  int T, stride, hop;
};

void PrintTo(const Boundaries &b, std::ostream *os) {
  *os << "T=" << b.T << " frame-stride=" << b.stride << " clip-stride=" << b.hop;
}

class ClipBoundaries : public ::testing::TestWithParam<Boundaries> {};

TEST_P(ClipBoundaries, MetaOnTheBufferThatCompletesEachClip) {
  const auto [T, stride, hop] = GetParam();
  Harness t(std::string(kSmallSpec) + " clip-length=" + std::to_string(T) +
            " frame-stride=" + std::to_string(stride) + " clip-stride=" + std::to_string(hop));
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  vidcls::ClipSpec spec = small_spec();

  const int n_frames = 40;
  guint64 expected_clips = 0;
  for (int i = 0; i < n_frames; i++) {
    GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(i));
    ASSERT_NE(out, nullptr);
    const GstVidclsClipMeta *meta = clip_meta(out);
    const bool sampled = i % stride == 0;
    const int s = i / stride + 1;  // sampled frames so far, this one included
    const bool completes = sampled && s >= T && (s - T) % hop == 0;
    ASSERT_EQ(meta != nullptr, completes) << "frame " << i;
    if (completes) {
      const guint64 first = s - T;
      EXPECT_EQ(meta->record->index, expected_clips) << "frame " << i;
      EXPECT_EQ(meta->record->first_sample, first);
      EXPECT_EQ(meta->record->n_frames, guint(T));
      EXPECT_EQ(meta->record->start, pts_of(first * stride));
      EXPECT_EQ(meta->record->end, pts_of(i) + duration_of(i));
      EXPECT_FALSE(meta->record->partial);
      EXPECT_EQ(meta->record->epoch, 0u);
      ASSERT_NE(meta->clip, nullptr);
      const torch::Tensor &clip = *meta->clip;
      ASSERT_EQ(clip.sizes(), (std::vector<int64_t>{T, 3, 4, 4}));
      EXPECT_EQ(clip.scalar_type(), torch::kFloat32);
      for (int k = 0; k < T; k++) {
        const int64_t frame = static_cast<int64_t>((first + k) * stride);
        expect_same(clip[k], vidcls::preprocess_frame(pattern_rgb(frame), spec),
                    "clip " + std::to_string(expected_clips) + " frame " + std::to_string(k));
      }
      expected_clips++;
    }
    gst_buffer_unref(out);
  }
  EXPECT_GT(expected_clips, 0u);
  EXPECT_EQ(t.counter("frames-in"), guint64(n_frames));
  EXPECT_EQ(t.counter("frames-sampled"), guint64((n_frames + stride - 1) / stride));
  EXPECT_EQ(t.counter("clips-out"), expected_clips);
}

INSTANTIATE_TEST_SUITE_P(TStrideHop, ClipBoundaries,
                         ::testing::Values(Boundaries{4, 1, 4}, Boundaries{4, 1, 2},
                                           Boundaries{4, 2, 1}, Boundaries{3, 3, 5},
                                           Boundaries{5, 2, 3}, Boundaries{2, 3, 7},
                                           Boundaries{1, 1, 1}),
                         [](const ::testing::TestParamInfo<Boundaries> &p) {
                           return "T" + std::to_string(p.param.T) + "_stride" +
                                  std::to_string(p.param.stride) + "_hop" +
                                  std::to_string(p.param.hop);
                         });

TEST(Clipper, ClipEndFallsBackOnFramerateWithoutDuration) {
  Harness t(std::string(kSmallSpec) + " clip-length=2 frame-stride=1 clip-stride=2");
  gst_harness_set_src_caps_str(t.h, "video/x-raw,format=RGB,width=8,height=8,framerate=25/1");
  gst_harness_push(t.h,
                   stamp(pack_rgb(pattern_rgb(0), GST_VIDEO_FORMAT_RGB), 0, GST_CLOCK_TIME_NONE));
  gst_buffer_unref(gst_harness_pull(t.h));
  GstBuffer *out = gst_harness_push_and_pull(
      t.h,
      stamp(pack_rgb(pattern_rgb(1), GST_VIDEO_FORMAT_RGB), 40 * GST_MSECOND, GST_CLOCK_TIME_NONE));
  const GstVidclsClipMeta *meta = clip_meta(out);
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(meta->record->start, 0u);
  EXPECT_EQ(meta->record->end, 80 * GST_MSECOND);
  gst_buffer_unref(out);
}

TEST(Clipper, ClipEndIsNoneWithoutDurationOrFramerate) {
  Harness t(std::string(kSmallSpec) + " clip-length=1 frame-stride=1 clip-stride=1");
  gst_harness_set_src_caps_str(t.h, "video/x-raw,format=RGB,width=8,height=8,framerate=0/1");
  GstBuffer *out = gst_harness_push_and_pull(
      t.h, stamp(pack_rgb(pattern_rgb(0), GST_VIDEO_FORMAT_RGB), GST_SECOND, GST_CLOCK_TIME_NONE));
  const GstVidclsClipMeta *meta = clip_meta(out);
  ASSERT_NE(meta, nullptr);
  EXPECT_EQ(meta->record->start, GST_SECOND);
  EXPECT_EQ(meta->record->end, GST_CLOCK_TIME_NONE);
  gst_buffer_unref(out);
}

// ---------------------------------------------------------------------------------------------
// Sampling on timestamps

// Pushes frames with these PTS (duration 1/30 s) and returns the PTS of the sampled ones
// (clip-length 1: every sampled frame is a clip).
std::vector<GstClockTime> sampled_pts(Harness &t, const std::vector<GstClockTime> &pts) {
  std::vector<GstClockTime> sampled;
  for (size_t i = 0; i < pts.size(); i++) {
    GstBuffer *out = gst_harness_push_and_pull(
        t.h, stamp(pack_rgb(pattern_rgb(i), GST_VIDEO_FORMAT_RGB), pts[i], duration_of(0)));
    if (const GstVidclsClipMeta *meta = clip_meta(out)) {
      EXPECT_EQ(meta->record->first_sample, sampled.size());
      sampled.push_back(meta->record->start);
    }
    gst_buffer_unref(out);
  }
  return sampled;
}

TEST(ClipperSampleRate, ThirtyFpsSampledAtTen) {
  Harness t(std::string(kSmallSpec) + " clip-length=1 clip-stride=1 sample-rate=10");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  std::vector<GstClockTime> pts;
  for (int i = 0; i < 60; i++) pts.push_back(pts_of(i));
  std::vector<GstClockTime> expected;
  for (int k = 0; k < 20; k++) expected.push_back(k * 100 * GST_MSECOND);
  EXPECT_EQ(sampled_pts(t, pts), expected);
  EXPECT_EQ(t.counter("frames-sampled"), 20u);
}

TEST(ClipperSampleRate, GapIsSampledOnceThenScheduleRestarts) {
  Harness t(std::string(kSmallSpec) + " clip-length=1 clip-stride=1 sample-rate=10");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  std::vector<GstClockTime> pts;
  for (int i = 0; i < 10; i++) pts.push_back(pts_of(i));  // 0 .. 300 ms
  // A gap (e.g. a GAP event upstream), then frames from 1 s on.
  EXPECT_TRUE(gst_harness_push_event(t.h, gst_event_new_gap(pts_of(10), 600 * GST_MSECOND)));
  for (int i = 0; i < 10; i++) pts.push_back(GST_SECOND + pts_of(i));  // 1000 .. 1300 ms
  const std::vector<GstClockTime> expected = {0,
                                              100 * GST_MSECOND,
                                              200 * GST_MSECOND,
                                              300 * GST_MSECOND,
                                              1000 * GST_MSECOND,
                                              1100 * GST_MSECOND,
                                              1200 * GST_MSECOND,
                                              1300 * GST_MSECOND};
  EXPECT_EQ(sampled_pts(t, pts), expected);
}

TEST(ClipperSampleRate, MillisecondRoundedTimestampsKeepTheirSchedule) {
  // 30 fps as Matroska stores it (0, 33, 67, 100 ms ...) sampled at 15: every second frame.
  Harness t(std::string(kSmallSpec) + " clip-length=1 clip-stride=1 sample-rate=15");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  std::vector<GstClockTime> pts, expected;
  for (int i = 0; i < 30; i++) {
    pts.push_back(GST_MSECOND * ((i * 1000 + kFps / 2) / kFps));
    if (i % 2 == 0) expected.push_back(pts.back());
  }
  EXPECT_EQ(sampled_pts(t, pts), expected);
}

TEST(ClipperSampleRate, FramesWithoutTimestampsAreCounted) {
  Harness t(std::string(kSmallSpec) + " clip-length=1 clip-stride=1 sample-rate=10");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);  // 30 fps: every third frame
  for (int i = 0; i < 12; i++) {
    GstBuffer *out =
        gst_harness_push_and_pull(t.h, stamp(pack_rgb(pattern_rgb(i), GST_VIDEO_FORMAT_RGB),
                                             GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE));
    const GstVidclsClipMeta *meta = clip_meta(out);
    EXPECT_EQ(meta != nullptr, i % 3 == 0) << "frame " << i;
    if (meta) {
      EXPECT_EQ(meta->record->start, GST_CLOCK_TIME_NONE);
    }
    gst_buffer_unref(out);
  }
  EXPECT_EQ(t.counter("frames-sampled"), 4u);
}

// ---------------------------------------------------------------------------------------------
// Formats: the clip holds preprocess_frame of the frame's RGB pixels

struct FormatCase {
  const char *format;
  const char *extra_caps;  // e.g. a colorimetry
};

void PrintTo(const FormatCase &f, std::ostream *os) { *os << f.format << f.extra_caps; }

class ClipperFormats : public ::testing::TestWithParam<FormatCase> {};

// videoconvert, the training decode path (`videoconvert ! video/x-raw,format=RGB`). The test
// environment scans only the build's plugin; VIDCLS_GST_SYSTEM_PLUGINS (GStreamer's plugin
// folder) lets videoconvertscale be loaded from there.
bool have_videoconvert() {
  static const bool have = [] {
    if (const char *dir = g_getenv("VIDCLS_GST_SYSTEM_PLUGINS")) {
      gchar *path = g_build_filename(dir, "libgstvideoconvertscale.so", nullptr);
      if (GstPlugin *plugin = gst_plugin_load_file(path, nullptr)) gst_object_unref(plugin);
      g_free(path);
    }
    GstElementFactory *factory = gst_element_factory_find("videoconvert");
    if (factory) gst_object_unref(factory);
    return factory != nullptr;
  }();
  return have;
}

// What videoconvert makes of `buf` in RGB.
torch::Tensor videoconvert_to_rgb(const std::string &caps, GstBuffer *buf, int w, int h) {
  GstHarness *vc = gst_harness_new("videoconvert");
  gst_harness_set_src_caps_str(vc, caps.c_str());
  gst_harness_set_sink_caps_str(vc, ("video/x-raw,format=RGB,width=" + std::to_string(w) +
                                     ",height=" + std::to_string(h) + ",framerate=30/1")
                                        .c_str());
  GstBuffer *rgb = gst_harness_push_and_pull(vc, gst_buffer_ref(buf));
  EXPECT_NE(rgb, nullptr);
  torch::Tensor out = unpack_rgb(rgb, w, h);
  gst_buffer_unref(rgb);
  gst_harness_teardown(vc);
  return out;
}

// Without videoconvert: a GstVideoConverter with videoconvert's default options.
torch::Tensor converter_to_rgb(const std::string &caps_str, GstBuffer *buf, int w, int h) {
  GstCaps *caps = gst_caps_from_string(caps_str.c_str());
  GstVideoInfo in_info, rgb_info;
  EXPECT_TRUE(gst_video_info_from_caps(&in_info, caps));
  gst_caps_unref(caps);
  gst_video_info_set_format(&rgb_info, GST_VIDEO_FORMAT_RGB, w, h);
  rgb_info.fps_n = in_info.fps_n;
  rgb_info.fps_d = in_info.fps_d;
  GstVideoConverter *converter = gst_video_converter_new(
      &in_info, &rgb_info,
      gst_structure_new(
          "options", GST_VIDEO_CONVERTER_OPT_DITHER_METHOD, GST_TYPE_VIDEO_DITHER_METHOD,
          GST_VIDEO_DITHER_BAYER, GST_VIDEO_CONVERTER_OPT_CHROMA_RESAMPLER_METHOD,
          GST_TYPE_VIDEO_RESAMPLER_METHOD, GST_VIDEO_RESAMPLER_METHOD_LINEAR, nullptr));
  GstBuffer *rgb = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&rgb_info), nullptr);
  GstVideoFrame in_frame, rgb_frame;
  EXPECT_TRUE(gst_video_frame_map(&in_frame, &in_info, buf, GST_MAP_READ));
  EXPECT_TRUE(gst_video_frame_map(&rgb_frame, &rgb_info, rgb, GST_MAP_WRITE));
  gst_video_converter_frame(converter, &in_frame, &rgb_frame);
  gst_video_frame_unmap(&rgb_frame);
  gst_video_frame_unmap(&in_frame);
  gst_video_converter_free(converter);
  torch::Tensor out = unpack_rgb(rgb, w, h);
  gst_buffer_unref(rgb);
  return out;
}

TEST_P(ClipperFormats, ClipEqualsPreprocessedRgbAndVideoPassesUnchanged) {
  const FormatCase param = GetParam();
  const int w = 33, h = 17;  // odd: row padding, odd chroma
  const std::string caps = std::string("video/x-raw,format=") + param.format +
                           ",width=33,height=17,framerate=30/1" + param.extra_caps;
  Harness t("clip-length=1 frame-stride=1 clip-stride=1 width=16 height=8 resize=crop");
  gst_harness_set_src_caps_str(t.h, caps.c_str());
  vidcls::ClipSpec spec;
  spec.width = 16;
  spec.height = 8;
  spec.resize = vidcls::ResizeMode::kCrop;

  const GstVideoFormat format = gst_video_format_from_string(param.format);
  const GstVideoFormatInfo *finfo = gst_video_format_get_info(format);
  if (!GST_VIDEO_FORMAT_INFO_IS_RGB(finfo) && !have_videoconvert()) {
    std::cout << "note: videoconvert not loadable (set VIDCLS_GST_SYSTEM_PLUGINS); the "
                 "reference is a GstVideoConverter with videoconvert's options\n";
  }
  torch::manual_seed(7);
  for (int i = 0; i < 3; i++) {
    GstBuffer *in;
    torch::Tensor rgb;
    if (GST_VIDEO_FORMAT_INFO_IS_RGB(finfo)) {
      rgb = random_rgb(h, w);
      in = pack_rgb(rgb, format);
    } else {
      GstVideoInfo info;
      gst_video_info_set_format(&info, format, w, h);
      const auto bytes =
          torch::randint(0, 256, {int64_t(GST_VIDEO_INFO_SIZE(&info))}, torch::kUInt8);
      in = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
      gst_buffer_fill(in, 0, bytes.data_ptr(), bytes.numel());
      rgb = have_videoconvert() ? videoconvert_to_rgb(caps, in, w, h)
                                : converter_to_rgb(caps, in, w, h);
    }
    stamp(in, pts_of(i), duration_of(i));

    GstMapInfo map;
    ASSERT_TRUE(gst_buffer_map(in, &map, GST_MAP_READ));
    const std::vector<guint8> before(map.data, map.data + map.size);
    gst_buffer_unmap(in, &map);

    GstBuffer *out = gst_harness_push_and_pull(t.h, in);
    ASSERT_NE(out, nullptr);
    ASSERT_TRUE(gst_buffer_map(out, &map, GST_MAP_READ));
    EXPECT_EQ(std::vector<guint8>(map.data, map.data + map.size), before)
        << "the video must pass through untouched";
    gst_buffer_unmap(out, &map);

    const GstVidclsClipMeta *meta = clip_meta(out);
    ASSERT_NE(meta, nullptr);
    ASSERT_EQ(meta->clip->sizes(), (std::vector<int64_t>{1, 3, 8, 16}));
    expect_same((*meta->clip)[0], vidcls::preprocess_frame(rgb, spec),
                std::string(param.format) + " frame " + std::to_string(i));
    gst_buffer_unref(out);
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllFormats, ClipperFormats,
    ::testing::Values(FormatCase{"RGB", ""}, FormatCase{"RGBA", ""}, FormatCase{"RGBx", ""},
                      FormatCase{"BGR", ""}, FormatCase{"BGRx", ""}, FormatCase{"BGRA", ""},
                      FormatCase{"xRGB", ""}, FormatCase{"ARGB", ""}, FormatCase{"I420", ""},
                      FormatCase{"NV12", ""}, FormatCase{"I420", ",colorimetry=bt709"},
                      FormatCase{"NV12", ",colorimetry=bt709"}, FormatCase{"xBGR", ""},
                      FormatCase{"ABGR", ""}, FormatCase{"YV12", ""}, FormatCase{"NV21", ""},
                      FormatCase{"Y42B", ""}, FormatCase{"Y444", ""}, FormatCase{"Y41B", ""},
                      FormatCase{"YUY2", ""}, FormatCase{"UYVY", ""}, FormatCase{"YVYU", ""},
                      FormatCase{"GRAY8", ""}, FormatCase{"I420_10LE", ""},
                      FormatCase{"P010_10LE", ""}),
    [](const ::testing::TestParamInfo<FormatCase> &p) {
      return std::string(p.param.format) + (p.param.extra_caps[0] ? "_bt709" : "");
    });

TEST(Clipper, ReadOnlyInputIsNotCopiedOnlyWrapped) {
  // A buffer someone else holds is not writable: the clip meta goes on a new buffer that
  // shares the same memory, and the original is left alone.
  Harness t(std::string(kSmallSpec) + " clip-length=1 frame-stride=1 clip-stride=1");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  GstBuffer *in = pattern_buffer(0);
  gst_buffer_ref(in);
  GstBuffer *out = gst_harness_push_and_pull(t.h, in);
  ASSERT_NE(out, nullptr);
  EXPECT_NE(clip_meta(out), nullptr);
  EXPECT_EQ(clip_meta(in), nullptr);
  EXPECT_EQ(gst_buffer_peek_memory(out, 0), gst_buffer_peek_memory(in, 0));
  gst_buffer_unref(out);
  gst_buffer_unref(in);
}

// ---------------------------------------------------------------------------------------------
// Resets: caps change, flush; settings from downstream

TEST(Clipper, SizeChangeResetsTheRing) {
  Harness t(std::string(kSmallSpec) + " clip-length=4 frame-stride=1 clip-stride=4");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  for (int i = 0; i < 6; i++) {
    GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(i));
    const GstVidclsClipMeta *meta = clip_meta(out);
    EXPECT_EQ(meta != nullptr, i == 3);
    if (meta) {
      EXPECT_EQ(meta->record->epoch, 0u);
    }
    gst_buffer_unref(out);
  }

  // Same caps again: nothing changes, the clip in progress goes on.
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(6)));
  GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(7));
  ASSERT_NE(clip_meta(out), nullptr);
  EXPECT_EQ(clip_meta(out)->record->index, 1u);
  EXPECT_EQ(clip_meta(out)->record->epoch, 0u);
  gst_buffer_unref(out);

  // Two frames into the next clip, the size changes: they are dropped.
  for (int i = 8; i < 10; i++) gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(i)));
  gst_harness_set_src_caps_str(t.h, "video/x-raw,format=BGRx,width=12,height=10,framerate=30/1");
  vidcls::ClipSpec spec = small_spec();
  for (int i = 10; i < 14; i++) {
    const torch::Tensor rgb = pattern_rgb(i, 10, 12);
    out = gst_harness_push_and_pull(
        t.h, stamp(pack_rgb(rgb, GST_VIDEO_FORMAT_BGRx), pts_of(i), duration_of(i)));
    const GstVidclsClipMeta *meta = clip_meta(out);
    ASSERT_EQ(meta != nullptr, i == 13) << "frame " << i;
    if (meta) {
      EXPECT_EQ(meta->record->index, 0u);
      EXPECT_EQ(meta->record->first_sample, 0u);
      EXPECT_EQ(meta->record->epoch, 1u);
      EXPECT_EQ(meta->record->start, pts_of(10));
      expect_same((*meta->clip)[3], vidcls::preprocess_frame(rgb, spec), "after the change");
    }
    gst_buffer_unref(out);
  }
}

TEST(Clipper, FlushResets) {
  Harness t(std::string(kSmallSpec) + " clip-length=4 frame-stride=1 clip-stride=4");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  for (int i = 0; i < 6; i++) gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(i)));
  EXPECT_EQ(t.counter("clips-out"), 1u);

  // A flushing seek to 10 s.
  EXPECT_TRUE(gst_harness_push_event(t.h, gst_event_new_flush_start()));
  EXPECT_TRUE(gst_harness_push_event(t.h, gst_event_new_flush_stop(TRUE)));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  segment.start = segment.time = 10 * GST_SECOND;
  EXPECT_TRUE(gst_harness_push_event(t.h, gst_event_new_segment(&segment)));

  for (int i = 300; i < 304; i++) {
    GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(i));
    const GstVidclsClipMeta *meta = clip_meta(out);
    ASSERT_EQ(meta != nullptr, i == 303) << "frame " << i;
    if (meta) {
      EXPECT_EQ(meta->record->index, 0u);
      EXPECT_EQ(meta->record->first_sample, 0u);
      EXPECT_EQ(meta->record->epoch, 1u);
      EXPECT_EQ(meta->record->start, pts_of(300));
    }
    gst_buffer_unref(out);
  }
  EXPECT_EQ(t.counter("clips-out"), 2u);
}

// concat / a playlist: another stream-start without EOS between. No clip takes frames of both
// streams: the first stream's left-over frames end as at its EOS (eos-policy), carrying its
// stream-id, before the new stream-start; the second stream's clips start over from its frames.
TEST(Clipper, NewStreamEndsTheClipsOfThePreviousOne) {
  Harness t(std::string(kSmallSpec) + " clip-length=4 frame-stride=1 clip-stride=4");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);  // stream-start of the harness's own stream
  while (GstEvent *e = gst_harness_try_pull_event(t.h)) gst_event_unref(e);
  for (int i = 0; i < 6; i++) gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(i)));
  EXPECT_EQ(t.counter("clips-out"), 1u);

  EXPECT_TRUE(gst_harness_push_event(t.h, gst_event_new_stream_start("second")));
  std::vector<GstEvent *> events;
  while (GstEvent *e = gst_harness_try_pull_event(t.h)) events.push_back(e);
  ASSERT_EQ(events.size(), 2u);
  GstBuffer *carrier = eos_clip_carrier(events[0]);
  ASSERT_NE(carrier, nullptr) << "the first stream's frames 4 and 5 end as at its EOS";
  const GstVidclsClipMeta *tail = clip_meta(carrier);
  ASSERT_NE(tail, nullptr);
  EXPECT_EQ(tail->record->first_sample, 4u);
  EXPECT_EQ(tail->record->n_frames, 2u);
  EXPECT_NE(tail->record->stream, "second");
  EXPECT_EQ(GST_EVENT_TYPE(events[1]), GST_EVENT_STREAM_START);
  unref_all(events);

  for (int i = 6; i < 10; i++) {
    GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(i));
    const GstVidclsClipMeta *meta = clip_meta(out);
    ASSERT_EQ(meta != nullptr, i == 9) << "frame " << i;
    if (meta) {
      EXPECT_EQ(meta->record->stream, "second");
      EXPECT_EQ(meta->record->index, 0u);
      EXPECT_EQ(meta->record->start, pts_of(6)) << "no frame of the first stream in it";
      EXPECT_EQ(meta->record->epoch, 1u);
    }
    gst_buffer_unref(out);
  }
  // The same stream-id again (a sticky event re-sent) changes nothing.
  EXPECT_TRUE(gst_harness_push_event(t.h, gst_event_new_stream_start("second")));
  while (GstEvent *e = gst_harness_try_pull_event(t.h)) {
    EXPECT_EQ(eos_clip_carrier(e), nullptr);
    gst_event_unref(e);
  }
  EXPECT_EQ(t.counter("clips-out"), 3u);
}

TEST(Clipper, ClipPropertyChangeWhileStreamingResets) {
  Harness t(std::string(kSmallSpec) + " clip-length=4 frame-stride=1 clip-stride=4");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  for (int i = 0; i < 3; i++) gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(i)));
  t.set("clip-length=2 clip-stride=2");
  for (int i = 3; i < 5; i++) {
    GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(i));
    const GstVidclsClipMeta *meta = clip_meta(out);
    ASSERT_EQ(meta != nullptr, i == 4) << "frame " << i;
    if (meta) {
      EXPECT_EQ(meta->record->index, 0u);
      EXPECT_EQ(meta->record->epoch, 1u);
      EXPECT_EQ(meta->record->start, pts_of(3));
      EXPECT_EQ(meta->clip->size(0), 2);
    }
    gst_buffer_unref(out);
  }
  // Setting a property to the value it has changes nothing.
  t.set("clip-length=2");
  gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(5)));
  GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(6));
  ASSERT_NE(clip_meta(out), nullptr);
  EXPECT_EQ(clip_meta(out)->record->index, 1u);
  EXPECT_EQ(clip_meta(out)->record->epoch, 1u);
  gst_buffer_unref(out);
}

TEST(Clipper, SettingsComeFromDownstreamUnlessSet) {
  Answerer answer;
  answer.spec.frames = 3;
  answer.spec.hop = 2;
  answer.spec.frame_stride = 2;
  answer.spec.width = 6;
  answer.spec.height = 5;
  answer.spec.resize = vidcls::ResizeMode::kLetterbox;
  answer.spec.mean = {0.5f, 0.25f, 0.75f};
  answer.spec.std = {0.1f, 0.2f, 0.3f};

  {
    Harness t;
    answer.attach(t.h);
    gst_harness_set_src_caps_str(t.h, kRgbCaps);
    EXPECT_GT(answer.asked, 0);
    // Frames 0, 2, 4, 6, 8 are sampled; clips end at samples 3 and 5 (frames 4 and 8).
    int clips = 0;
    for (int i = 0; i < 10; i++) {
      GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(i));
      const GstVidclsClipMeta *meta = clip_meta(out);
      ASSERT_EQ(meta != nullptr, i == 4 || i == 8) << "frame " << i;
      if (meta) {
        ASSERT_EQ(meta->clip->sizes(), (std::vector<int64_t>{3, 3, 5, 6}));
        for (int k = 0; k < 3; k++) {
          expect_same(
              (*meta->clip)[k],
              vidcls::preprocess_frame(pattern_rgb((meta->record->first_sample + k) * 2), answer.spec),
              "frame " + std::to_string(k));
        }
        clips++;
      }
      gst_buffer_unref(out);
    }
    EXPECT_EQ(clips, 2);
  }
  {
    // Properties win: 2 frames, every frame, stretched 4x4; mean and std still the model's.
    Harness t("clip-length=2 frame-stride=1 width=4 height=4 resize=stretch");
    answer.attach(t.h);
    gst_harness_set_src_caps_str(t.h, kRgbCaps);
    vidcls::ClipSpec spec = answer.spec;
    spec.frames = 2;
    spec.frame_stride = 1;
    spec.width = spec.height = 4;
    spec.resize = vidcls::ResizeMode::kStretch;
    gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(0)));
    GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(1));
    const GstVidclsClipMeta *meta = clip_meta(out);
    ASSERT_NE(meta, nullptr);
    ASSERT_EQ(meta->clip->sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
    expect_same((*meta->clip)[1], vidcls::preprocess_frame(pattern_rgb(1), spec), "override");
    gst_buffer_unref(out);
  }
}

TEST(Clipper, WithoutAnswerOrPropertiesUsesClipSpecDefaults) {
  Harness t;
  gst_harness_set_src_caps_str(t.h, "video/x-raw,format=RGB,width=32,height=24,framerate=30/1");
  const vidcls::ClipSpec defaults;
  for (int i = 0; i < defaults.frames; i++) {
    GstBuffer *out = gst_harness_push_and_pull(
        t.h,
        stamp(pack_rgb(pattern_rgb(i, 24, 32), GST_VIDEO_FORMAT_RGB), pts_of(i), duration_of(i)));
    const GstVidclsClipMeta *meta = clip_meta(out);
    ASSERT_EQ(meta != nullptr, i == defaults.frames - 1);
    if (meta) {
      ASSERT_EQ(meta->clip->sizes(),
                (std::vector<int64_t>{defaults.frames, 3, defaults.height, defaults.width}));
      expect_same((*meta->clip)[0], vidcls::preprocess_frame(pattern_rgb(0, 24, 32), defaults),
                  "defaults");
    }
    gst_buffer_unref(out);
  }
}

// ---------------------------------------------------------------------------------------------
// End of stream

struct EosCase {
  const char *policy;
  int T, hop, n_frames;
  bool expect_clip;
  guint64 clip_index, first_sample;
  guint n_real;
};

void PrintTo(const EosCase &c, std::ostream *os) {
  *os << "eos-policy=" << c.policy << " T=" << c.T << " hop=" << c.hop << " after " << c.n_frames
      << " frames";
}

class ClipperEos : public ::testing::TestWithParam<EosCase> {};

TEST_P(ClipperEos, TrailingClipFollowsPolicy) {
  const EosCase c = GetParam();
  Harness t(std::string(kSmallSpec) + " frame-stride=1 clip-length=" + std::to_string(c.T) +
            " clip-stride=" + std::to_string(c.hop) + " eos-policy=" + c.policy);
  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  for (int i = 0; i < c.n_frames; i++) {
    gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(i)));
  }
  const guint64 clips_before = t.counter("clips-out");

  std::vector<GstEvent *> events = push_eos(t.h);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(GST_EVENT_TYPE(events.back()), GST_EVENT_EOS);
  GstBuffer *carrier = find_eos_clip(events);
  ASSERT_EQ(carrier != nullptr, c.expect_clip);
  if (carrier) {
    EXPECT_EQ(gst_buffer_get_size(carrier), 0u);
    const GstVidclsClipMeta *meta = clip_meta(carrier);
    ASSERT_NE(meta, nullptr);
    EXPECT_TRUE(meta->record->partial);
    EXPECT_EQ(meta->record->index, c.clip_index);
    EXPECT_EQ(meta->record->first_sample, c.first_sample);
    EXPECT_EQ(meta->record->n_frames, c.n_real);
    EXPECT_EQ(meta->record->epoch, 0u);
    const guint64 last = c.first_sample + c.n_real - 1;
    EXPECT_EQ(meta->record->start, pts_of(c.first_sample));
    EXPECT_EQ(meta->record->end, pts_of(last) + duration_of(last));
    EXPECT_EQ(GST_BUFFER_PTS(carrier), meta->record->start);
    EXPECT_EQ(GST_BUFFER_DURATION(carrier), meta->record->end - meta->record->start);

    const bool pad = std::string(c.policy) == "pad";
    const int64_t length = pad ? c.T : c.n_real;
    ASSERT_EQ(meta->clip->sizes(), (std::vector<int64_t>{length, 3, 4, 4}));
    const vidcls::ClipSpec spec = small_spec();
    for (int64_t k = 0; k < length; k++) {
      const int64_t frame = static_cast<int64_t>(std::min<guint64>(c.first_sample + k, last));
      expect_same((*meta->clip)[k], vidcls::preprocess_frame(pattern_rgb(frame), spec),
                  "EOS clip frame " + std::to_string(k));
    }
  }
  EXPECT_EQ(t.counter("clips-out"), clips_before + (c.expect_clip ? 1 : 0));
  unref_all(events);
}

INSTANTIATE_TEST_SUITE_P(Policies, ClipperEos,
                         ::testing::Values(
                             // policy, T, hop, frames, clip?, index, first, real frames
                             EosCase{"drop", 4, 4, 6, false, 0, 0, 0},
                             EosCase{"pad", 4, 4, 6, true, 1, 4, 2},
                             EosCase{"partial", 4, 4, 6, true, 1, 4, 2},
                             EosCase{"pad", 4, 4, 8, false, 0, 0, 0},  // nothing left over
                             EosCase{"pad", 4, 2, 7, true, 2, 4, 3},   // overlapping clips
                             EosCase{"partial", 4, 2, 7, true, 2, 4, 3},
                             // overlapping clips that already hold every frame: T=4, hop 2,
                             // 8 frames -> clips 0-3, 2-5, 4-7 and nothing at EOS
                             EosCase{"pad", 4, 2, 8, false, 0, 0, 0},
                             EosCase{"partial", 4, 2, 8, false, 0, 0, 0},
                             EosCase{"pad", 4, 4, 2, true, 0, 0, 2},  // shorter than one clip
                             EosCase{"partial", 4, 4, 1, true, 0, 0, 1},
                             EosCase{"pad", 2, 5, 4, false, 0, 0, 0},  // ends between clips
                             EosCase{"pad", 2, 5, 6, true, 1, 5, 1},
                             EosCase{"pad", 4, 4, 0, false, 0, 0, 0}),  // no frame at all
                         [](const ::testing::TestParamInfo<EosCase> &p) {
                           return std::string(p.param.policy) + "_T" + std::to_string(p.param.T) +
                                  "_hop" + std::to_string(p.param.hop) + "_frames" +
                                  std::to_string(p.param.n_frames);
                         });

// ---------------------------------------------------------------------------------------------
// Property changes racing the stream, counters

TEST(Clipper, PropertyChangesWhileStreamingDoNotCrash) {
  Harness t(std::string(kSmallSpec) + " clip-length=2 frame-stride=1 clip-stride=1");
  gst_harness_set_src_caps_str(t.h, kRgbCaps);

  std::vector<GstHarnessThread *> threads;
  auto stress = [&](const char *name, guint value) {
    GValue v = G_VALUE_INIT;
    g_value_init(&v, G_TYPE_UINT);
    g_value_set_uint(&v, value);
    threads.push_back(gst_harness_stress_property_start_full(t.h, name, &v, 200));
    g_value_unset(&v);
  };
  stress("clip-length", 2);
  stress("clip-length", 5);
  stress("frame-stride", 1);
  stress("frame-stride", 3);

  // Stream until clips of both lengths have come out, so the property changes did race the
  // stream however the threads were scheduled (at least 300 frames, at most 100000).
  guint64 epoch = 0;
  bool seen_2 = false, seen_5 = false;
  guint64 pushed = 0;
  while (pushed < 300 || !(seen_2 && seen_5)) {
    ASSERT_LT(pushed, 100000u) << "the stress threads never changed clip-length";
    GstBuffer *out = gst_harness_push_and_pull(t.h, pattern_buffer(static_cast<int>(pushed)));
    ++pushed;
    ASSERT_NE(out, nullptr);
    if (const GstVidclsClipMeta *meta = clip_meta(out)) {
      const int64_t T = meta->clip->size(0);
      EXPECT_TRUE(T == 2 || T == 5) << T;
      seen_2 |= T == 2;
      seen_5 |= T == 5;
      EXPECT_EQ(meta->record->n_frames, guint(T));
      EXPECT_GE(meta->record->epoch, epoch);
      epoch = meta->record->epoch;
    }
    gst_buffer_unref(out);
  }
  for (GstHarnessThread *thread : threads) gst_harness_stress_thread_stop(thread);
  std::vector<GstEvent *> events = push_eos(t.h);
  unref_all(events);
  EXPECT_EQ(t.counter("frames-in"), pushed);
}

// The counters are read at any time; their notify signals are emitted only with silent=false
// (as videorate does), so the streaming thread does not signal every buffer by default.
TEST(Clipper, CountersAreNotifiedOnlyWhenNotSilent) {
  for (const bool silent : {true, false}) {
    SCOPED_TRACE(silent ? "silent" : "not silent");
    Harness t(std::string(kSmallSpec) + " clip-length=2 frame-stride=2 clip-stride=2" +
              (silent ? "" : " silent=false"));
    gst_harness_set_src_caps_str(t.h, kRgbCaps);
    int clips = 0, frames = 0;
    auto count = +[](GObject *, GParamSpec *, gpointer n) { ++*static_cast<int *>(n); };
    g_signal_connect(t.h->element, "notify::clips-out", G_CALLBACK(count), &clips);
    g_signal_connect(t.h->element, "notify::frames-in", G_CALLBACK(count), &frames);
    for (int i = 0; i < 8; i++) gst_buffer_unref(gst_harness_push_and_pull(t.h, pattern_buffer(i)));
    EXPECT_EQ(t.counter("frames-in"), 8u);
    EXPECT_EQ(t.counter("frames-sampled"), 4u);
    EXPECT_EQ(t.counter("clips-out"), 2u);
    EXPECT_EQ(clips, silent ? 0 : 2);
    EXPECT_EQ(frames, silent ? 0 : 8);
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

// Starts a lone vidclsclipper with these properties; returns the text of the ERROR it posts
// ("" if none) and checks that the start failed.
std::string start_error(const std::string &properties) {
  GstElement *element = gst_element_factory_make("vidclsclipper", nullptr);
  if (element == nullptr) {
    ADD_FAILURE() << "no vidclsclipper";
    return "";
  }
  gchar **pairs = g_strsplit(properties.c_str(), " ", -1);
  for (gchar **p = pairs; *p; ++p) {
    gchar **kv = g_strsplit(*p, "=", 2);
    gst_util_set_object_arg(G_OBJECT(element), kv[0], kv[1]);
    g_strfreev(kv);
  }
  g_strfreev(pairs);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(element, bus);
  EXPECT_EQ(gst_element_set_state(element, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  std::string text;
  if (GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError *err = nullptr;
    gst_message_parse_error(msg, &err, nullptr);
    text = err->message;
    g_clear_error(&err);
    gst_message_unref(msg);
  }
  gst_element_set_state(element, GST_STATE_NULL);
  gst_element_set_bus(element, nullptr);
  gst_object_unref(bus);
  gst_object_unref(element);
  return text;
}

TEST(ClipperErrors, CudaWithoutCudaIsAnErrorMessage) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  const std::string text = start_error("device=cuda");
  EXPECT_NE(text.find("CUDA"), std::string::npos) << "error: '" << text << "'";
}

TEST(ClipperErrors, UnknownDeviceIsAnErrorMessage) {
  const std::string text = start_error("device=tpu:0");
  EXPECT_NE(text.find("tpu:0"), std::string::npos) << "error: '" << text << "'";
}

TEST(ClipperErrors, DownstreamOnCudaWithoutCudaIsAnErrorMessage) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
  Harness t;
  Answerer answer;
  answer.spec = small_spec();
  answer.device = "cuda:0";
  answer.attach(t.h);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(t.h->element, bus);

  gst_harness_set_src_caps_str(t.h, kRgbCaps);
  EXPECT_NE(gst_harness_push(t.h, pattern_buffer(0)), GST_FLOW_OK);
  GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  ASSERT_NE(msg, nullptr);
  GError *err = nullptr;
  gst_message_parse_error(msg, &err, nullptr);
  EXPECT_NE(std::string(err->message).find("CUDA"), std::string::npos) << err->message;
  g_clear_error(&err);
  gst_message_unref(msg);
  gst_element_set_bus(t.h->element, nullptr);
  gst_object_unref(bus);
}

}  // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new vidcls_test::GstEnvironment);
  return RUN_ALL_TESTS();
}
