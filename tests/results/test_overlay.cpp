// vidclsoverlay: the labels and open actions drawn where they were asked, and nowhere else.
//
// Frames go through the element with classification and action metas attached (as an inference
// element and vidclsaction attach them); input and output frames are rendered to PNG (pngenc),
// decoded again (pngdec) and compared pixel by pixel. Both ways of drawing are covered: blended
// into the frame, for every format of the pad template, and attached as a
// GstVideoOverlayCompositionMeta when downstream announces it draws one. The last test runs a
// real pipeline: a vidcls-synth video, vidclsclipper and vividinfer with an untrained checkpoint.
//
// VIDCLS_OVERLAY_PNG_DIR, when set, keeps the PNGs there to look at.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../gst/gst_test_env.h"
#include "gstvidclsevents.h"
#include "gstvidclsmeta.h"

namespace fs = std::filesystem;
using vidcls::gst::ActionEvent;

namespace {

constexpr int kWidth = 320;
constexpr int kHeight = 240;
constexpr int kFont = 16;
constexpr int kXOffset = 10;
constexpr int kYOffset = 12;

// The formats of vidclsoverlay's pad templates (checked against them in a test below).
const std::vector<std::string> kFormats = {
    "I420",      "YV12",      "NV12",      "NV21",      "NV16",      "NV24",  "Y42B",
    "Y444",      "Y41B",      "YUY2",      "UYVY",      "YVYU",      "AYUV",  "VUYA",
    "A420",      "RGBA",      "BGRA",      "ARGB",      "ABGR",      "RGBx",  "BGRx",
    "xRGB",      "xBGR",      "RGB",       "BGR",       "RGB16",     "BGR16", "GRAY8",
    "GRAY16_LE", "I420_10LE", "I422_10LE", "Y444_10LE", "P010_10LE", "v210"};

fs::path scratch() {
  static const fs::path dir = [] {
    auto d = fs::temp_directory_path() / ("vidcls-overlay-test-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// Where the PNGs go: VIDCLS_OVERLAY_PNG_DIR, or the scratch folder removed at the end.
fs::path png_dir() {
  static const fs::path dir = [] {
    const char *keep = std::getenv("VIDCLS_OVERLAY_PNG_DIR");
    fs::path d = keep != nullptr ? fs::path(keep) : scratch() / "png";
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string raw_caps(const std::string &format, int w = kWidth, int h = kHeight,
                     const std::string &features = "") {
  return "video/x-raw" + features + ",format=" + format + ",width=" + std::to_string(w) +
         ",height=" + std::to_string(h) + ",framerate=30/1";
}

const char *const kCompositionFeatures = "(memory:SystemMemory, meta:GstVideoOverlayComposition)";

// One buffer through a fresh harness of `launch` (a gst_parse_launch bin), after EOS; `caps`
// gets the caps it came out with.
GstBuffer *convert(const std::string &launch, const std::string &in_caps, GstBuffer *in,
                   GstCaps **caps = nullptr) {
  GstHarness *h = gst_harness_new_parse(launch.c_str());
  gst_harness_set_src_caps_str(h, in_caps.c_str());
  EXPECT_EQ(gst_harness_push(h, gst_buffer_ref(in)), GST_FLOW_OK) << launch;
  gst_harness_push_event(h, gst_event_new_eos());
  GstBuffer *out = gst_harness_try_pull(h);
  EXPECT_NE(out, nullptr) << launch << " gave no buffer for " << in_caps;
  if (caps != nullptr) *caps = gst_pad_get_current_caps(h->sinkpad);
  gst_harness_teardown(h);
  return out;
}

// A frame with texture everywhere and no dark pixel (a dimmed box over it always shows), made
// in RGBA and converted to `format` by videoconvert.
GstBuffer *test_frame(const std::string &format, int w = kWidth, int h = kHeight) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGBA, w, h);
  GstBuffer *rgba = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
  GstVideoFrame frame;
  EXPECT_TRUE(gst_video_frame_map(&frame, &info, rgba, GST_MAP_WRITE));
  for (int y = 0; y < h; ++y) {
    guint8 *row = static_cast<guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
                  y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
    for (int x = 0; x < w; ++x) {
      row[4 * x + 0] = static_cast<guint8>(90 + (x * 3) % 110);
      row[4 * x + 1] = static_cast<guint8>(90 + (y * 5) % 110);
      row[4 * x + 2] = static_cast<guint8>(90 + ((x + y) * 7) % 110);
      row[4 * x + 3] = 255;
    }
  }
  gst_video_frame_unmap(&frame);
  if (format == "RGBA") return rgba;
  GstBuffer *out = convert("videoconvert ! capsfilter caps=" + raw_caps(format, w, h),
                           raw_caps("RGBA", w, h), rgba);
  gst_buffer_unref(rgba);
  return out;
}

struct Image {
  int w = 0, h = 0;
  std::vector<guint8> rgba;
  const guint8 *at(int x, int y) const { return &rgba[(static_cast<size_t>(y) * w + x) * 4]; }
};

// A PNG decoded by pngdec, as RGBA.
Image decode_png(GstBuffer *png) {
  Image img;
  GstCaps *caps = nullptr;
  GstBuffer *raw = convert("pngdec ! videoconvert ! capsfilter caps=video/x-raw,format=RGBA",
                           "image/png", png, &caps);
  GstVideoInfo info;
  if (raw == nullptr || caps == nullptr || !gst_video_info_from_caps(&info, caps)) {
    ADD_FAILURE() << "pngdec failed";
    if (raw != nullptr) gst_buffer_unref(raw);
    if (caps != nullptr) gst_caps_unref(caps);
    return img;
  }
  gst_caps_unref(caps);
  GstVideoFrame frame;
  EXPECT_TRUE(gst_video_frame_map(&frame, &info, raw, GST_MAP_READ));
  img.w = GST_VIDEO_INFO_WIDTH(&info);
  img.h = GST_VIDEO_INFO_HEIGHT(&info);
  img.rgba.resize(static_cast<size_t>(img.w) * img.h * 4);
  for (int y = 0; y < img.h; ++y) {
    std::copy_n(static_cast<const guint8 *>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
                    y * GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0),
                img.w * 4, &img.rgba[static_cast<size_t>(y) * img.w * 4]);
  }
  gst_video_frame_unmap(&frame);
  gst_buffer_unref(raw);
  return img;
}

// `buf` (caps `caps`) rendered to PNG by pngenc, written to png_dir()/name, and decoded again.
Image png_roundtrip(GstBuffer *buf, const std::string &caps, const std::string &name) {
  GstBuffer *png = convert("videoconvert ! pngenc snapshot=false", caps, buf);
  if (png == nullptr) return Image();
  GstMapInfo map;
  EXPECT_TRUE(gst_buffer_map(png, &map, GST_MAP_READ));
  std::ofstream(png_dir() / name, std::ios::binary)
      .write(reinterpret_cast<const char *>(map.data), static_cast<std::streamsize>(map.size));
  gst_buffer_unmap(png, &map);
  Image img = decode_png(png);
  gst_buffer_unref(png);
  return img;
}

// The bounding box of the pixels that differ between two images (x1, y1 exclusive).
struct Box {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  long count = 0;  // differing pixels
  bool empty() const { return count == 0; }
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
};

std::ostream &operator<<(std::ostream &os, const Box &b) {
  return os << "[" << b.x0 << "," << b.y0 << " - " << b.x1 << "," << b.y1 << ") " << b.count
            << " px";
}

Box diff_box(const Image &a, const Image &b) {
  Box box;
  box.x0 = a.w;
  box.y0 = a.h;
  for (int y = 0; y < a.h; ++y) {
    for (int x = 0; x < a.w; ++x) {
      if (std::equal(a.at(x, y), a.at(x, y) + 4, b.at(x, y))) continue;
      box.count++;
      box.x0 = std::min(box.x0, x);
      box.y0 = std::min(box.y0, y);
      box.x1 = std::max(box.x1, x + 1);
      box.y1 = std::max(box.y1, y + 1);
    }
  }
  return box;
}

// Pixels inside `box` that `after` shows brighter than `before`: the background box only dims,
// so these are the text.
long text_pixels(const Image &before, const Image &after, const Box &box) {
  long n = 0;
  for (int y = box.y0; y < box.y1; ++y) {
    for (int x = box.x0; x < box.x1; ++x) {
      const guint8 *b = before.at(x, y), *a = after.at(x, y);
      n += a[0] + a[1] + a[2] > b[0] + b[1] + b[2] + 60;
    }
  }
  return n;
}

// ------------------------------------------------------------------ results on buffers

void add_classification(GstBuffer *buf, const std::vector<std::string> &labels,
                        const std::vector<float> &scores, guint64 index = 0,
                        gint64 object_id = -1) {
  std::vector<const gchar *> c_labels;
  for (const auto &l : labels) c_labels.push_back(l.c_str());
  c_labels.push_back(nullptr);
  GstVidclsClip clip{const_cast<gchar *>("stream"),
                     object_id,
                     index,
                     index * GST_SECOND,
                     (index + 1) * GST_SECOND,
                     FALSE,
                     0,
                     0,
                     0,
                     0};
  gst_buffer_add_vidcls_classification_meta(buf, &clip, "vivit-xs",
                                            static_cast<guint>(labels.size()), c_labels.data(),
                                            scores.data(), nullptr);
}

ActionEvent action(GstVidclsActionPhase phase, guint64 id, const std::string &label,
                   GstClockTime start) {
  ActionEvent a;
  a.phase = phase;
  a.stream_id = "stream";
  a.id = id;
  a.label = label;
  a.start = start;
  a.end = phase == GST_VIDCLS_ACTION_PHASE_END ? start + 2 * GST_SECOND : GST_CLOCK_TIME_NONE;
  a.peak_score = 0.9f;
  a.mean_score = 0.8f;
  a.n_clips = 3;
  a.model = "vivit-xs";
  return a;
}

// The "vidcls-classification" structure as the inference elements post and forward it.
GstStructure *classification_structure(const std::vector<std::string> &labels,
                                       const std::vector<double> &scores) {
  GValue lv = G_VALUE_INIT, sv = G_VALUE_INIT;
  gst_value_array_init(&lv, labels.size());
  gst_value_array_init(&sv, scores.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    GValue l = G_VALUE_INIT, s = G_VALUE_INIT;
    g_value_init(&l, G_TYPE_STRING);
    g_value_set_string(&l, labels[i].c_str());
    gst_value_array_append_and_take_value(&lv, &l);
    g_value_init(&s, G_TYPE_DOUBLE);
    g_value_set_double(&s, scores[i]);
    gst_value_array_append_and_take_value(&sv, &s);
  }
  GstStructure *st = gst_structure_new(
      "vidcls-classification", "stream-id", G_TYPE_STRING, "stream", "object-id", G_TYPE_INT64,
      static_cast<gint64>(-1), "clip-index", G_TYPE_UINT64, static_cast<guint64>(7), "start",
      G_TYPE_UINT64, static_cast<guint64>(0), "end", G_TYPE_UINT64, GST_SECOND, "model",
      G_TYPE_STRING, "vivit-xs", nullptr);
  gst_structure_take_value(st, "labels", &lv);
  gst_structure_take_value(st, "scores", &sv);
  return st;
}

// ------------------------------------------------------------------ the element in a harness

// vidclsoverlay with `props` ("name=value ..."), between a source of `format` frames and a sink
// that takes them plainly or, with `composition`, with the composition caps feature and the
// meta announced in its allocation answer (as a compositing sink does).
struct Overlay {
  GstHarness *h = nullptr;
  GstBus *bus = nullptr;
  std::string caps;
  int frame = 0;

  Overlay(const std::string &format, const std::string &props, bool composition = false,
          int w = kWidth, int h_ = kHeight) {
    h = gst_harness_new("vidclsoverlay");
    bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
    set(props);
    caps = raw_caps(format, w, h_);
    if (composition) {
      gst_harness_add_propose_allocation_meta(h, GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE,
                                              nullptr);
      gst_harness_set_sink_caps_str(h, raw_caps(format, w, h_, kCompositionFeatures).c_str());
    } else {
      gst_harness_set_sink_caps_str(h, caps.c_str());
    }
    gst_harness_set_src_caps_str(h, caps.c_str());
  }
  ~Overlay() {
    gst_element_set_bus(h->element, nullptr);
    gst_object_unref(bus);
    gst_harness_teardown(h);
  }
  void set(const std::string &props) {
    std::istringstream in(props);
    for (std::string kv; in >> kv;) {
      const auto eq = kv.find('=');
      gst_util_set_object_arg(G_OBJECT(h->element), kv.substr(0, eq).c_str(),
                              kv.substr(eq + 1).c_str());
    }
  }
  // Pushes `in` (the caller keeps its reference: the element must not write into it) and
  // returns what comes out.
  GstBuffer *push(GstBuffer *in) {
    GstBuffer *b = gst_buffer_copy(in);  // shares the memory; carries in's metas
    GST_BUFFER_PTS(b) = frame * GST_SECOND / 30;
    GST_BUFFER_DURATION(b) = GST_SECOND / 30;
    frame++;
    EXPECT_EQ(gst_harness_push(h, b), GST_FLOW_OK);
    return gst_harness_pull(h);
  }
  // The first warning posted since the last call, or "".
  std::string warning() {
    std::string text;
    while (GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
      GError *err = nullptr;
      gst_message_parse_warning(msg, &err, nullptr);
      if (text.empty()) text = err->message;
      g_error_free(err);
      gst_message_unref(msg);
    }
    return text;
  }
};

// The composition's one rectangle, as downstream would draw it.
struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
  guint seqnum = 0;  // of the composition: the same number is the same (cached) rendering
};

bool composition_rect(GstBuffer *buf, Rect *r) {
  GstVideoOverlayCompositionMeta *m = gst_buffer_get_video_overlay_composition_meta(buf);
  if (m == nullptr || gst_video_overlay_composition_n_rectangles(m->overlay) != 1) return false;
  guint w = 0, h = 0;
  gst_video_overlay_rectangle_get_render_rectangle(
      gst_video_overlay_composition_get_rectangle(m->overlay, 0), &r->x, &r->y, &w, &h);
  r->w = static_cast<int>(w);
  r->h = static_cast<int>(h);
  r->seqnum = gst_video_overlay_composition_get_seqnum(m->overlay);
  return true;
}

bool same_bytes(GstBuffer *a, GstBuffer *b) {
  GstMapInfo ma, mb;
  if (!gst_buffer_map(a, &ma, GST_MAP_READ)) return false;
  if (!gst_buffer_map(b, &mb, GST_MAP_READ)) {
    gst_buffer_unmap(a, &ma);
    return false;
  }
  const bool same = ma.size == mb.size && std::equal(ma.data, ma.data + ma.size, mb.data);
  gst_buffer_unmap(b, &mb);
  gst_buffer_unmap(a, &ma);
  return same;
}

// A frame with two labels and one open action: three lines.
GstBuffer *labelled_frame(const std::string &format) {
  GstBuffer *buf = test_frame(format);
  add_classification(buf, {"slide_left", "slide_right", "rotate_cw"}, {0.93f, 0.05f, 0.02f});
  vidcls::gst::attach_action(
      buf, action(GST_VIDCLS_ACTION_PHASE_START, 0, "waving", 3 * GST_SECOND / 2));
  return buf;
}

const char *const kAsked = "font-size=16 x-offset=10 y-offset=12 top-k=2";

// ------------------------------------------------------------------ blended into the frame

struct BlendCase {
  std::string format;
  std::string position;
};

void PrintTo(const BlendCase &c, std::ostream *os) { *os << c.format << "/" << c.position; }

class OverlayBlend : public ::testing::TestWithParam<BlendCase> {};

// The frame changes inside the text box anchored where position, x-offset and y-offset ask, of
// the height three lines of 16 px take, and nowhere else; the labels are drawn in it. The box
// is where the composition meta path says it is. Chroma subsampling blurs the edge by up to two
// chroma samples (one in the blend, one when videoconvert upsamples for the PNG).
TEST_P(OverlayBlend, DrawsOnlyInsideTheAskedBox) {
  const BlendCase c = GetParam();
  const std::string props = std::string(kAsked) + " position=" + c.position;
  GstBuffer *in = labelled_frame(c.format);

  Overlay blend(c.format, props);
  GstBuffer *out = blend.push(in);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(gst_buffer_get_video_overlay_composition_meta(out), nullptr)
      << "drawn into the frame: no meta for a downstream that does not draw it";
  Overlay meta(c.format, props, true);
  GstBuffer *with_meta = meta.push(in);
  Rect r;
  ASSERT_TRUE(composition_rect(with_meta, &r));

  const std::string stem = "blend-" + c.format + "-" + c.position;
  const Image before = png_roundtrip(in, blend.caps, stem + "-in.png");
  const Image after = png_roundtrip(out, blend.caps, stem + "-out.png");
  ASSERT_EQ(before.w, kWidth);
  ASSERT_EQ(after.w, kWidth);
  const Box box = diff_box(before, after);
  ASSERT_FALSE(box.empty()) << "nothing drawn";

  const GstVideoFormatInfo *finfo =
      gst_video_format_get_info(gst_video_format_from_string(c.format.c_str()));
  const int mx = finfo->w_sub[1] > 0 ? 2 << finfo->w_sub[1] : 0;
  const int my = finfo->h_sub[1] > 0 ? 2 << finfo->h_sub[1] : 0;
  const bool right = c.position.find("right") != std::string::npos;
  const bool bottom = c.position.find("bottom") != std::string::npos;
  // the asked corner
  EXPECT_NEAR(right ? kWidth - box.x1 : box.x0, kXOffset, mx) << box;
  EXPECT_NEAR(bottom ? kHeight - box.y1 : box.y0, kYOffset, my) << box;
  // three lines of 16 px (and the box's padding); as wide as the longest line, "● waving since
  // 1.5 s" (20 characters), can be: at least half, at most 3/4 of the font size per character
  EXPECT_GE(box.height(), 3 * kFont) << box;
  EXPECT_LE(box.height(), 3 * kFont * 3 / 2 + kFont + 2 * my) << box;
  EXPECT_GE(box.width(), 20 * kFont / 2) << box;
  EXPECT_LE(box.width(), 20 * kFont * 3 / 4 + kFont + 2 * mx) << box;
  // the rectangle the composition meta path attaches, to the subsampling margin
  EXPECT_NEAR(box.x0, r.x, mx);
  EXPECT_NEAR(box.y0, r.y, my);
  EXPECT_NEAR(box.x1, r.x + r.w, mx);
  EXPECT_NEAR(box.y1, r.y + r.h, my);
  // the box is filled (the background dims every pixel) and holds the text
  EXPECT_GT(box.count, box.width() * box.height() * 8 / 10) << box;
  EXPECT_GT(text_pixels(before, after, box), 300) << "no text in " << box;

  gst_buffer_unref(with_meta);
  gst_buffer_unref(out);
  gst_buffer_unref(in);
}

std::vector<BlendCase> blend_cases() {
  std::vector<BlendCase> cases;
  for (const auto &f : kFormats) {
    for (const char *p : {"top-left", "bottom-right"}) cases.push_back({f, p});
  }
  cases.push_back({"I420", "top-right"});
  cases.push_back({"RGBA", "bottom-left"});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Formats, OverlayBlend, ::testing::ValuesIn(blend_cases()),
                         [](const ::testing::TestParamInfo<BlendCase> &info) {
                           std::string name = info.param.format + "_" + info.param.position;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(Overlay, PadTemplatesListTheTestedFormats) {
  GstElementFactory *f = gst_element_factory_find("vidclsoverlay");
  ASSERT_NE(f, nullptr);
  for (const GList *l = gst_element_factory_get_static_pad_templates(f); l; l = l->next) {
    auto *tmpl = static_cast<GstStaticPadTemplate *>(l->data);
    GstCaps *caps = gst_static_caps_get(&tmpl->static_caps);
    for (guint i = 0; i < gst_caps_get_size(caps); ++i) {
      const GValue *formats = gst_structure_get_value(gst_caps_get_structure(caps, i), "format");
      ASSERT_TRUE(GST_VALUE_HOLDS_LIST(formats));
      std::vector<std::string> listed;
      for (guint j = 0; j < gst_value_list_get_size(formats); ++j)
        listed.emplace_back(g_value_get_string(gst_value_list_get_value(formats, j)));
      EXPECT_EQ(listed, kFormats) << tmpl->name_template;
    }
    gst_caps_unref(caps);
  }
  gst_object_unref(f);
}

// Caps negotiation refuses what it cannot draw into: other formats, other memory.
TEST(Overlay, RefusesOtherFormatsAndMemory) {
  GstElement *overlay = gst_element_factory_make("vidclsoverlay", nullptr);
  GstPad *sink = gst_element_get_static_pad(overlay, "sink");
  for (const std::string &caps_str :
       {raw_caps("NV12_4L4"), raw_caps("RGB8P"), raw_caps("GRAY10_LE32"),
        raw_caps("NV12", kWidth, kHeight, "(memory:GLMemory)"), std::string("image/png")}) {
    GstCaps *caps = gst_caps_from_string(caps_str.c_str());
    EXPECT_FALSE(gst_pad_query_accept_caps(sink, caps)) << caps_str;
    gst_caps_unref(caps);
  }
  GstCaps *ok = gst_caps_from_string(raw_caps("NV12").c_str());
  EXPECT_TRUE(gst_pad_query_accept_caps(sink, ok));
  gst_caps_unref(ok);
  gst_object_unref(sink);
  gst_object_unref(overlay);
}

// ------------------------------------------------------------------ composition meta

// A downstream that draws compositions (a GL sink, a compositor) gets the frame untouched with
// the composition attached at the asked place; drawing that composition gives, byte for byte,
// the frame the blend path makes.
TEST(Overlay, AttachesTheCompositionWhenDownstreamDrawsIt) {
  for (const char *format : {"I420", "NV12", "RGBA", "BGRx"}) {
    SCOPED_TRACE(format);
    GstBuffer *in = labelled_frame(format);
    Overlay meta(format, std::string(kAsked) + " position=top-left", true);
    GstBuffer *out = meta.push(in);
    ASSERT_NE(out, nullptr);
    GstCaps *out_caps = gst_pad_get_current_caps(meta.h->sinkpad);
    EXPECT_TRUE(gst_caps_features_contains(gst_caps_get_features(out_caps, 0),
                                           GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION));
    gst_caps_unref(out_caps);
    EXPECT_TRUE(same_bytes(in, out)) << "pixels changed although downstream draws the meta";
    Rect r;
    ASSERT_TRUE(composition_rect(out, &r));
    EXPECT_EQ(r.x, kXOffset);
    EXPECT_EQ(r.y, kYOffset);
    EXPECT_GE(r.h, 3 * kFont);
    EXPECT_LE(r.h, 3 * kFont * 3 / 2 + kFont);

    GstVideoInfo info;
    GstCaps *caps = gst_caps_from_string(meta.caps.c_str());
    ASSERT_TRUE(gst_video_info_from_caps(&info, caps));
    gst_caps_unref(caps);
    GstBuffer *drawn = gst_buffer_copy_deep(in);
    GstVideoFrame frame;
    ASSERT_TRUE(gst_video_frame_map(&frame, &info, drawn, GST_MAP_READWRITE));
    gst_video_overlay_composition_blend(gst_buffer_get_video_overlay_composition_meta(out)->overlay,
                                        &frame);
    gst_video_frame_unmap(&frame);
    Overlay blend(format, std::string(kAsked) + " position=top-left");
    GstBuffer *blended = blend.push(in);
    EXPECT_TRUE(same_bytes(drawn, blended));
    gst_buffer_unref(blended);
    gst_buffer_unref(drawn);
    gst_buffer_unref(out);
    gst_buffer_unref(in);
  }
}

// Downstream takes the caps feature but does not say it draws the meta (fakesink, a plain
// appsink): the text is drawn into the frame.
TEST(Overlay, BlendsWhenDownstreamTakesTheFeatureButNotTheMeta) {
  GstHarness *h = gst_harness_new("vidclsoverlay");
  gst_util_set_object_arg(G_OBJECT(h->element), "font-size", "16");
  gst_harness_set_sink_caps_str(h, raw_caps("I420", kWidth, kHeight, kCompositionFeatures).c_str());
  gst_harness_set_src_caps_str(h, raw_caps("I420").c_str());
  GstBuffer *in = labelled_frame("I420");
  ASSERT_EQ(gst_harness_push(h, gst_buffer_copy(in)), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull(h);
  EXPECT_EQ(gst_buffer_get_video_overlay_composition_meta(out), nullptr);
  EXPECT_FALSE(same_bytes(in, out));
  gst_buffer_unref(out);
  gst_buffer_unref(in);
  gst_harness_teardown(h);
}

// ------------------------------------------------------------------ what is shown, and when

// The latest classification is held on the frames that carry none, with the same rendering
// (no re-rendering per frame); a new one is rendered once; one with no label clears the lines.
TEST(Overlay, HoldsTheLatestResultAndRendersOnlyWhenItChanges) {
  Overlay o("I420", kAsked, true);
  GstBuffer *plain = test_frame("I420");
  GstBuffer *first = gst_buffer_copy(plain);
  add_classification(first, {"slide_left", "slide_right"}, {0.93f, 0.05f}, 0);
  Rect r1, r2, r3, r4;
  GstBuffer *out = o.push(first);
  ASSERT_TRUE(composition_rect(out, &r1));
  gst_buffer_unref(out);
  for (int i = 0; i < 3; ++i) {
    out = o.push(plain);
    ASSERT_TRUE(composition_rect(out, &r2)) << "the result is held until the next";
    EXPECT_EQ(r2.seqnum, r1.seqnum) << "re-rendered although the text did not change";
    gst_buffer_unref(out);
  }
  GstBuffer *second = gst_buffer_copy(plain);
  add_classification(second, {"rotate_counterclockwise", "slide_left"}, {0.61f, 0.30f}, 1);
  out = o.push(second);
  ASSERT_TRUE(composition_rect(out, &r3));
  EXPECT_NE(r3.seqnum, r1.seqnum);
  EXPECT_GT(r3.w, r1.w) << "a longer label gives a wider box";
  EXPECT_EQ(r3.h, r1.h);
  gst_buffer_unref(out);
  out = o.push(plain);
  ASSERT_TRUE(composition_rect(out, &r4));
  EXPECT_EQ(r4.seqnum, r3.seqnum);
  gst_buffer_unref(out);

  GstBuffer *nothing = gst_buffer_copy(plain);
  add_classification(nothing, {}, {}, 2);  // no label passed the threshold
  out = o.push(nothing);
  EXPECT_EQ(gst_buffer_get_video_overlay_composition_meta(out), nullptr);
  gst_buffer_unref(out);
  for (GstBuffer *b : {first, second, nothing, plain}) gst_buffer_unref(b);
}

// A tracked object's box on a frame, as a tracker puts it there (DL Streamer's "object_id").
void add_roi(GstBuffer *buf, gint id, guint x, guint y, guint w, guint h) {
  GstVideoRegionOfInterestMeta *m =
      gst_buffer_add_video_region_of_interest_meta(buf, "person", x, y, w, h);
  gst_video_region_of_interest_meta_add_param(
      m, gst_structure_new("object_id", "id", G_TYPE_INT, id, nullptr));
}

void add_object_classification(GstBuffer *buf, const std::string &label, gint64 object_id, int x,
                               int y, int w, int h) {
  const gchar *labels[] = {label.c_str(), nullptr};
  const float scores[] = {0.9f};
  GstVidclsClip clip{const_cast<gchar *>("stream"), object_id, 0, 0, GST_SECOND, FALSE, x, y, w, h};
  gst_buffer_add_vidcls_classification_meta(buf, &clip, "vivit-xs", 1, labels, scores, nullptr);
}

// Every rectangle of the buffer's composition meta.
std::vector<Rect> composition_rects(GstBuffer *buf) {
  std::vector<Rect> out;
  GstVideoOverlayCompositionMeta *m = gst_buffer_get_video_overlay_composition_meta(buf);
  for (guint i = 0; m != nullptr && i < gst_video_overlay_composition_n_rectangles(m->overlay);
       ++i) {
    Rect r;
    guint w = 0, h = 0;
    gst_video_overlay_rectangle_get_render_rectangle(
        gst_video_overlay_composition_get_rectangle(m->overlay, i), &r.x, &r.y, &w, &h);
    r.w = static_cast<int>(w);
    r.h = static_cast<int>(h);
    out.push_back(r);
  }
  return out;
}

// A per-object result is drawn at its object, not as the frame's labels: the box outlined and a
// text box just above it; it follows the object's box on later frames, falls back to the box of
// the result where frames carry no boxes at all, and is gone when the frame's boxes do not
// include the object.
TEST(Overlay, DrawsPerObjectResultsAtTheObject) {
  Overlay o("RGBA", kAsked, true);
  GstBuffer *plain = test_frame("RGBA");
  GstBuffer *first = gst_buffer_copy(plain);
  add_roi(first, 3, 100, 90, 60, 100);
  add_object_classification(first, "waving", 3, 100, 90, 60, 100);
  GstBuffer *out = o.push(first);
  auto rects = composition_rects(out);
  ASSERT_EQ(rects.size(), 5u) << "four edges and one text box, no frame-level box";
  // the outline: four rectangles on the box's edges
  int x0 = kWidth, y0 = kHeight, x1 = 0, y1 = 0;
  for (size_t i = 0; i < 4; ++i) {
    x0 = std::min(x0, rects[i].x);
    y0 = std::min(y0, rects[i].y);
    x1 = std::max(x1, rects[i].x + rects[i].w);
    y1 = std::max(y1, rects[i].y + rects[i].h);
    EXPECT_TRUE(rects[i].w <= 4 || rects[i].h <= 4) << "an edge, not a filled box";
  }
  EXPECT_EQ(x0, 100);
  EXPECT_EQ(y0, 90);
  EXPECT_EQ(x1, 160);
  EXPECT_EQ(y1, 190);
  // the text box: one 16 px line, its bottom on the box's top, its left on the box's left
  const Rect label = rects[4];
  EXPECT_EQ(label.x, 100);
  EXPECT_EQ(label.y + label.h, 90);
  EXPECT_GE(label.h, kFont);
  EXPECT_LE(label.h, 2 * kFont);
  gst_buffer_unref(out);

  // the object moved: the drawing follows its box on the frame
  GstBuffer *moved = gst_buffer_copy(plain);
  add_roi(moved, 3, 20, 5, 40, 50);
  out = o.push(moved);
  rects = composition_rects(out);
  ASSERT_EQ(rects.size(), 5u);
  EXPECT_EQ(rects[0].x, 20);
  EXPECT_EQ(rects[0].y, 5);
  EXPECT_EQ(rects[4].x, 20);
  EXPECT_EQ(rects[4].y, 5) << "no room above: at the top inside the box";
  gst_buffer_unref(out);

  // frames without any boxes: the box the result was computed on
  out = o.push(plain);
  rects = composition_rects(out);
  ASSERT_EQ(rects.size(), 5u);
  EXPECT_EQ(rects[0].x, 100);
  EXPECT_EQ(rects[0].y, 90);
  gst_buffer_unref(out);

  // boxes of other objects only: object 3 has left the frame
  GstBuffer *others = gst_buffer_copy(plain);
  add_roi(others, 4, 10, 10, 20, 20);
  out = o.push(others);
  EXPECT_EQ(gst_buffer_get_video_overlay_composition_meta(out), nullptr);
  gst_buffer_unref(out);

  // show-objects=false draws nothing of them
  o.set("show-objects=false");
  out = o.push(first);
  EXPECT_EQ(gst_buffer_get_video_overlay_composition_meta(out), nullptr);
  gst_buffer_unref(out);
  for (GstBuffer *b : {first, moved, others, plain}) gst_buffer_unref(b);
}

// Drawn into the frame, the object's outline and label change pixels only at the object.
TEST(Overlay, BlendsPerObjectResultsOnlyAtTheObject) {
  Overlay o("RGBA", kAsked);
  GstBuffer *in = test_frame("RGBA");
  add_roi(in, 8, 150, 120, 80, 100);
  add_object_classification(in, "running", 8, 150, 120, 80, 100);
  GstBuffer *out = o.push(in);
  const Image before = png_roundtrip(in, o.caps, "object-in.png");
  const Image after = png_roundtrip(out, o.caps, "object-out.png");
  const Box box = diff_box(before, after);
  ASSERT_FALSE(box.empty()) << "nothing drawn";
  EXPECT_EQ(box.x0, 150) << box;
  EXPECT_GE(box.x1, 230) << "the outline's right edge, or the label beyond it " << box;
  EXPECT_EQ(box.y1, 220) << box;
  EXPECT_LT(box.y0, 120) << "the label above the box " << box;
  EXPECT_GE(box.y0, 120 - 2 * kFont) << box;
  // the inside of the box is left alone (only the label's text box overlaps it)
  long changed_inside = 0;
  for (int y = 130; y < 210; ++y)
    for (int x = 160; x < 220; ++x)
      changed_inside += !std::equal(before.at(x, y), before.at(x, y) + 4, after.at(x, y));
  EXPECT_EQ(changed_inside, 0);
  gst_buffer_unref(out);
  gst_buffer_unref(in);
}

int lines_height(int lines) { return lines * kFont; }

// An action is shown from its start to its end, as one more line; show-actions=false hides it.
TEST(Overlay, ShowsActionsFromStartToEnd) {
  Overlay o("NV12", kAsked, true);
  GstBuffer *plain = test_frame("NV12");
  GstBuffer *labels = gst_buffer_copy(plain);
  add_classification(labels, {"slide_left", "slide_right"}, {0.93f, 0.05f});
  Rect two, three, four, back;
  GstBuffer *out = o.push(labels);
  ASSERT_TRUE(composition_rect(out, &two));
  gst_buffer_unref(out);

  GstBuffer *start = gst_buffer_copy(plain);
  vidcls::gst::attach_action(start, action(GST_VIDCLS_ACTION_PHASE_START, 0, "waving", 0));
  out = o.push(start);
  ASSERT_TRUE(composition_rect(out, &three));
  EXPECT_GT(three.h - two.h, lines_height(1) * 9 / 10) << "one more line";
  gst_buffer_unref(out);

  GstBuffer *start2 = gst_buffer_copy(plain);
  vidcls::gst::attach_action(start2, action(GST_VIDCLS_ACTION_PHASE_START, 1, "clapping", 0));
  out = o.push(start2);
  ASSERT_TRUE(composition_rect(out, &four));
  EXPECT_GT(four.h - three.h, lines_height(1) * 9 / 10);
  gst_buffer_unref(out);

  o.set("show-actions=false");
  out = o.push(plain);
  ASSERT_TRUE(composition_rect(out, &back));
  EXPECT_EQ(back.h, two.h) << "show-actions=false";
  gst_buffer_unref(out);
  o.set("show-actions=true");

  GstBuffer *end = gst_buffer_copy(plain);
  vidcls::gst::attach_action(end, action(GST_VIDCLS_ACTION_PHASE_END, 0, "waving", 0));
  vidcls::gst::attach_action(end, action(GST_VIDCLS_ACTION_PHASE_END, 1, "clapping", 0));
  out = o.push(end);
  ASSERT_TRUE(composition_rect(out, &back));
  EXPECT_EQ(back.h, two.h) << "ended actions are no longer shown";
  EXPECT_EQ(back.w, two.w);
  gst_buffer_unref(out);
  for (GstBuffer *b : {labels, start, start2, end, plain}) gst_buffer_unref(b);
}

// top-k limits the lines (0: all the result has), show-scores=false leaves the numbers out.
TEST(Overlay, TopKAndShowScores) {
  GstBuffer *buf = test_frame("RGBA");
  add_classification(buf, {"slide_left", "slide_right", "rotate_cw"}, {0.5f, 0.3f, 0.2f});
  auto rect_for = [&](const std::string &props) {
    Overlay o("RGBA", "font-size=16 " + props, true);
    GstBuffer *out = o.push(buf);
    Rect r;
    EXPECT_TRUE(composition_rect(out, &r)) << props;
    gst_buffer_unref(out);
    return r;
  };
  const Rect k1 = rect_for("top-k=1"), k2 = rect_for("top-k=2"), all = rect_for("top-k=0");
  const Rect k5 = rect_for("top-k=5"), no_scores = rect_for("top-k=1 show-scores=false");
  EXPECT_GT(k2.h - k1.h, lines_height(1) * 9 / 10);
  EXPECT_GT(all.h - k2.h, lines_height(1) * 9 / 10);
  EXPECT_EQ(k5.h, all.h) << "no more lines than the result has";
  EXPECT_LT(no_scores.w, k1.w);
  EXPECT_EQ(no_scores.h, k1.h);
  gst_buffer_unref(buf);
}

// Results that came as events (no buffer carried them upstream) are shown on the next frames;
// a flush clears what is shown, and so does the stream-start of another stream.
TEST(Overlay, ResultEventsFlushAndStreamChange) {
  Overlay o("I420", kAsked, true);
  GstBuffer *plain = test_frame("I420");
  EXPECT_TRUE(gst_harness_push_event(
      o.h, vidcls::gst::result_event_new(classification_structure({"grow"}, {0.7}))));
  Rect one, two;
  GstBuffer *out = o.push(plain);
  ASSERT_TRUE(composition_rect(out, &one)) << "the classification event is shown";
  gst_buffer_unref(out);
  EXPECT_TRUE(gst_harness_push_event(
      o.h, vidcls::gst::result_event_new(vidcls::gst::action_structure(
               action(GST_VIDCLS_ACTION_PHASE_START, 4, "shrink", GST_SECOND)))));
  out = o.push(plain);
  ASSERT_TRUE(composition_rect(out, &two));
  EXPECT_GT(two.h - one.h, lines_height(1) * 9 / 10) << "the action event is shown";
  gst_buffer_unref(out);

  EXPECT_TRUE(gst_harness_push_event(o.h, gst_event_new_flush_start()));
  EXPECT_TRUE(gst_harness_push_event(o.h, gst_event_new_flush_stop(TRUE)));
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  EXPECT_TRUE(gst_harness_push_event(o.h, gst_event_new_segment(&segment)));
  out = o.push(plain);
  EXPECT_EQ(gst_buffer_get_video_overlay_composition_meta(out), nullptr) << "flush clears";
  gst_buffer_unref(out);

  GstBuffer *labelled = gst_buffer_copy(plain);
  add_classification(labelled, {"grow"}, {0.7f});
  gst_buffer_unref(o.push(labelled));
  out = o.push(plain);
  EXPECT_NE(gst_buffer_get_video_overlay_composition_meta(out), nullptr);
  gst_buffer_unref(out);
  EXPECT_TRUE(gst_harness_push_event(o.h, gst_event_new_stream_start("another-stream")));
  EXPECT_TRUE(gst_harness_push_event(o.h, gst_event_new_segment(&segment)));
  out = o.push(plain);
  EXPECT_EQ(gst_buffer_get_video_overlay_composition_meta(out), nullptr)
      << "another stream's frames do not show this stream's labels";
  gst_buffer_unref(out);
  gst_buffer_unref(labelled);
  gst_buffer_unref(plain);
}

// position and the offsets are read while playing: the next frame's box moves.
TEST(Overlay, PositionChangesWhilePlaying) {
  Overlay o("BGRx", kAsked, true);
  GstBuffer *buf = labelled_frame("BGRx");
  Rect tl, br;
  GstBuffer *out = o.push(buf);
  ASSERT_TRUE(composition_rect(out, &tl));
  gst_buffer_unref(out);
  o.set("position=bottom-right x-offset=20 y-offset=30");
  out = o.push(buf);
  ASSERT_TRUE(composition_rect(out, &br));
  gst_buffer_unref(out);
  EXPECT_EQ(tl.x, kXOffset);
  EXPECT_EQ(tl.y, kYOffset);
  EXPECT_EQ(br.x + br.w, kWidth - 20);
  EXPECT_EQ(br.y + br.h, kHeight - 30);
  EXPECT_EQ(br.w, tl.w);
  EXPECT_EQ(br.h, tl.h);
  gst_buffer_unref(buf);
}

// A font family that is not installed: a warning that names it, and the text is still drawn
// (in the default family).
TEST(Overlay, UnknownFontWarnsAndDrawsWithTheDefault) {
  Overlay o("RGBA", std::string(kAsked) + " font-desc=NoSuchFamilyAtAll", true);
  GstBuffer *buf = labelled_frame("RGBA");
  GstBuffer *out = o.push(buf);
  Rect r;
  EXPECT_TRUE(composition_rect(out, &r));
  const std::string warning = o.warning();
  EXPECT_NE(warning.find("NoSuchFamilyAtAll"), std::string::npos) << warning;
  gst_buffer_unref(out);
  o.set("font-desc=Sans");
  out = o.push(buf);
  EXPECT_TRUE(composition_rect(out, &r));
  EXPECT_EQ(o.warning(), "") << "a generic family is no reason to warn";
  gst_buffer_unref(out);
  g_object_set(o.h->element, "font-desc", "DejaVu Serif Italic", nullptr);
  gst_buffer_unref(o.push(buf));
  EXPECT_EQ(o.warning(), "");
  gst_buffer_unref(buf);
}

// font-size in pixels; at 0 the size in font-desc ("24px": pixels, "18": points at 96 dpi),
// or else a twentieth of the frame height, at least 10 px.
TEST(Overlay, FontSizeFromPropertyFontDescOrFrame) {
  GstBuffer *buf = test_frame("I420");
  add_classification(buf, {"slide_left"}, {0.9f});
  auto height_for = [&](const std::string &font_desc, const std::string &size, int w, int h) {
    Overlay o("I420", "font-size=" + size, true, w, h);
    g_object_set(o.h->element, "font-desc", font_desc.c_str(), nullptr);
    GstBuffer *frame = test_frame("I420", w, h);
    gst_buffer_copy_into(frame, buf, GST_BUFFER_COPY_META, 0, -1);
    GstBuffer *out = o.push(frame);
    Rect r;
    EXPECT_TRUE(composition_rect(out, &r)) << font_desc << " " << size;
    gst_buffer_unref(out);
    gst_buffer_unref(frame);
    return r.h;
  };
  const int px16 = height_for("Sans Bold", "16", kWidth, kHeight);
  const int px32 = height_for("Sans Bold", "32", kWidth, kHeight);
  EXPECT_GT(px32, px16 + 16);
  EXPECT_EQ(height_for("Sans Bold 32px", "0", kWidth, kHeight), px32);
  EXPECT_EQ(height_for("Sans Bold 24", "0", kWidth, kHeight), px32) << "24 pt = 32 px";
  EXPECT_EQ(height_for("Sans Bold 10px", "16", kWidth, kHeight), px16) << "font-size wins";
  EXPECT_EQ(height_for("Sans Bold", "0", 640, 320), px16) << "320 / 20 = 16 px";
  EXPECT_EQ(height_for("Sans Bold", "0", 160, 120), height_for("Sans Bold", "10", 160, 120))
      << "at least 10 px";
  gst_buffer_unref(buf);
}

// A text box larger than the frame is cut to the frame, never drawn outside it.
TEST(Overlay, BoxLargerThanTheFrameIsClipped) {
  Overlay o("I420", "font-size=64 position=bottom-right", false, 96, 64);
  GstBuffer *in = test_frame("I420", 96, 64);
  add_classification(in, {"a_rather_long_label", "another_one"}, {0.5f, 0.4f});
  GstBuffer *out = o.push(in);
  ASSERT_NE(out, nullptr);
  EXPECT_FALSE(same_bytes(in, out));
  gst_buffer_unref(out);
  gst_buffer_unref(in);
}

// ------------------------------------------------------------------ a real pipeline

struct PipelineRun {
  bool eos = false;
  std::string error;
  std::vector<GstClockTime> clip_ends;  // "end" of each vidcls-classification message
};

PipelineRun run_launch(const std::string &launch) {
  PipelineRun r;
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(launch.c_str(), &err);
  if (err != nullptr) {
    r.error = err->message;
    g_error_free(err);
    return r;
  }
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  for (bool done = false; !done;) {
    GstMessage *msg = gst_bus_timed_pop(bus, 90 * GST_SECOND);
    if (msg == nullptr) break;
    switch (GST_MESSAGE_TYPE(msg)) {
      case GST_MESSAGE_EOS:
        r.eos = done = true;
        break;
      case GST_MESSAGE_ERROR: {
        GError *e = nullptr;
        gst_message_parse_error(msg, &e, nullptr);
        r.error = e->message;
        g_error_free(e);
        done = true;
        break;
      }
      case GST_MESSAGE_ELEMENT: {
        const GstStructure *s = gst_message_get_structure(msg);
        guint64 end = 0;
        if (gst_structure_has_name(s, "vidcls-classification") &&
            gst_structure_get_uint64(s, "end", &end))
          r.clip_ends.push_back(end);
        break;
      }
      default:
        break;
    }
    gst_message_unref(msg);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
  return r;
}

Image decode_png_file(const fs::path &path) {
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  GstBuffer *png = gst_buffer_new_memdup(bytes.data(), bytes.size());
  Image img = decode_png(png);
  gst_buffer_unref(png);
  return img;
}

bool run_tool(const std::string &cmd) {
  const std::string line = cmd + " > " + (scratch() / "tool.log").string() + " 2>&1";
  return std::system(line.c_str()) == 0;
}

// A synthetic motion video through vidclsclipper and vividinfer (an untrained vivit-xs), then
// a tee: one branch as it is, the other through vidclsoverlay, both to PNG files. The frames
// before the first result are untouched; from the frame that completed the first clip on, every
// frame differs in the top-left text box only. The overlay draws on its own copy: the other
// branch, sharing the decoded frames, never shows text.
TEST(OverlayPipeline, SynthVideoClassifiedAndLabelled) {
  const char *synth = std::getenv("VIDCLS_SYNTH");
  const char *init = std::getenv("VIDCLS_INIT");
  if (synth == nullptr || init == nullptr) GTEST_SKIP() << "VIDCLS_SYNTH / VIDCLS_INIT not set";
  const fs::path dir = scratch() / "pipeline";
  const fs::path frames = png_dir() / "pipeline";
  fs::create_directories(frames);
  ASSERT_TRUE(run_tool(std::string(synth) + " --out " + (dir / "data").string() +
                       " --classes 2 --videos-per-class 1 --subjects 1 --frames 40 --size 120 "
                       "--fps 15 --seed 5 -q"));
  const std::string model = (dir / "m.safetensors").string();
  ASSERT_TRUE(run_tool(std::string(init) + " --preset vivit-xs --num-classes 2 --out " + model));
  const std::string video = (dir / "data" / "a01_s01_e01_rgb.avi").string();
  ASSERT_TRUE(fs::exists(video));

  const PipelineRun r =
      run_launch("filesrc location=" + video +
                 " ! decodebin ! videoconvert ! video/x-raw,format=I420 ! "
                 "vidclsclipper ! vividinfer model=" +
                 model +
                 " ! tee name=t "
                 "t. ! queue ! videoconvert ! pngenc snapshot=false ! multifilesink location=" +
                 (frames / "in-%03d.png").string() +
                 " "
                 "t. ! queue ! vidclsoverlay font-size=12 x-offset=4 y-offset=4 ! videoconvert ! "
                 "pngenc snapshot=false ! multifilesink location=" +
                 (frames / "out-%03d.png").string());
  ASSERT_TRUE(r.eos) << r.error;
  ASSERT_FALSE(r.clip_ends.empty()) << "no classification";
  // The first clip's result rides on the frame that completed it: the one ending at its end.
  // Rounded: on Debian 13 (GStreamer 1.26) that end comes out just short of frame 15's start,
  // on Debian 12 exactly on it.
  const int first =
      static_cast<int>(gst_util_uint64_scale_round(r.clip_ends.front(), 15, GST_SECOND)) - 1;
  ASSERT_GT(first, 0);

  int n = 0;
  for (;; ++n) {
    char name[32];
    g_snprintf(name, sizeof name, "%03d.png", n);
    if (!fs::exists(frames / ("in-" + std::string(name)))) break;
    const Image in = decode_png_file(frames / ("in-" + std::string(name)));
    const Image out = decode_png_file(frames / ("out-" + std::string(name)));
    ASSERT_EQ(in.w, 160);
    ASSERT_EQ(out.w, in.w);
    const Box box = diff_box(in, out);
    if (n < first) {
      EXPECT_TRUE(box.empty()) << "frame " << n << " before the first result: " << box;
      continue;
    }
    ASSERT_FALSE(box.empty()) << "frame " << n << " has no labels";
    EXPECT_NEAR(box.x0, 4, 4) << n;
    EXPECT_NEAR(box.y0, 4, 4) << n;
    // two labels (the model has two classes) of 12 px
    EXPECT_LE(box.y1, 4 + 2 * 12 * 3 / 2 + 12 + 4) << n;
    EXPECT_LE(box.x1, 160) << n;
    EXPECT_GT(text_pixels(in, out, box), 30) << n;
  }
  EXPECT_EQ(n, 40);
}

}  // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(
      new vidcls_test::GstEnvironment({"vidclsoverlay", "videoconvert", "pngenc", "pngdec"}));
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  fs::remove_all(scratch(), ec);
  return rc;
}
