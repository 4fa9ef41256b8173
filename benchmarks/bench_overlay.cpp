// What vidclsoverlay costs per frame: frames pushed through the element in a GstHarness, for
// each case the mean time per frame over --frames frames, less nothing (the harness's own cost
// is the "nothing to draw" line). Cases: the text blended into the frame with the rendering
// cached (a result every clip of 16 frames: one rendering per 16 frames), re-rendered on every
// frame (a new result each frame, the worst case), and attached as a composition meta for a
// downstream that draws it; and textoverlay drawing the same three lines, for reference.
//
//   bench-overlay --plugin-dir BUILD/gst-plugins [--frames 300] [--sizes 1280x720,1920x1080]
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "gstvidclsmeta.h"

namespace {

struct Case {
  const char *name;
  bool labels;       // results on the buffers
  int every;         // a new result every this many frames
  bool composition;  // downstream draws the composition meta
  bool textoverlay;  // textoverlay with the same three lines, for reference
  bool no_box;       // background-color=0
};

void add_result(GstBuffer *buf, guint64 index) {
  static const char *const labels[] = {"slide_left", "slide_right", "rotate_cw", nullptr};
  // the first score changes the text of every result
  const float scores[] = {0.05f + 0.01f * static_cast<float>(index % 90), 0.04f, 0.01f};
  GstVidclsClip clip{const_cast<gchar *>("bench"),
                     -1,
                     index,
                     index * GST_SECOND,
                     (index + 1) * GST_SECOND,
                     FALSE,
                     0,
                     0,
                     0,
                     0};
  gst_buffer_add_vidcls_classification_meta(buf, &clip, "vivit-xs", 3, labels, scores, nullptr);
}

// Mean microseconds per frame of `c` for frames of `format` at w x h.
double run_case(const Case &c, const std::string &format, int w, int h, int frames) {
  GstHarness *harness = c.textoverlay
                            ? gst_harness_new_with_padnames("textoverlay", "video_sink", "src")
                            : gst_harness_new("vidclsoverlay");
  if (c.no_box) g_object_set(harness->element, "background-color", 0u, nullptr);
  if (c.textoverlay) {
    // vidclsoverlay's default look: font a twentieth of the height, a box, top left
    const std::string font = "Sans Bold " + std::to_string(h / 20) + "px";
    g_object_set(harness->element, "text", "slide_left 0.61\nrotate_cw 0.25\nslide_right 0.15",
                 "font-desc", font.c_str(), "auto-resize", FALSE, "shaded-background", TRUE,
                 "halignment", 0, "valignment", 2, nullptr);
  }
  const std::string caps = "video/x-raw,format=" + format + ",width=" + std::to_string(w) +
                           ",height=" + std::to_string(h) + ",framerate=30/1";
  if (c.composition) {
    gst_harness_add_propose_allocation_meta(harness, GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE,
                                            nullptr);
    gst_harness_set_sink_caps_str(
        harness,
        ("video/x-raw(memory:SystemMemory, meta:GstVideoOverlayComposition),format=" + format +
         ",width=" + std::to_string(w) + ",height=" + std::to_string(h) + ",framerate=30/1")
            .c_str());
  } else {
    gst_harness_set_sink_caps_str(harness, caps.c_str());
  }
  gst_harness_set_src_caps_str(harness, caps.c_str());
  GstVideoInfo info;
  GstCaps *parsed = gst_caps_from_string(caps.c_str());
  gst_video_info_from_caps(&info, parsed);
  gst_caps_unref(parsed);
  GstBuffer *frame = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
  gst_buffer_memset(frame, 0, 0x80, GST_VIDEO_INFO_SIZE(&info));

  double total_us = 0;
  for (int i = -10; i < frames; ++i) {  // 10 frames of warm-up (fonts, first rendering)
    GstBuffer *buf = gst_buffer_copy_deep(frame);
    if (c.labels && (i % c.every == 0 || i < 0)) add_result(buf, static_cast<guint64>(i + 10));
    GST_BUFFER_PTS(buf) = static_cast<GstClockTime>(i + 10) * GST_SECOND / 30;
    const auto t0 = std::chrono::steady_clock::now();
    gst_harness_push(harness, buf);
    GstBuffer *out = gst_harness_pull(harness);
    const auto t1 = std::chrono::steady_clock::now();
    gst_buffer_unref(out);
    if (i >= 0) total_us += std::chrono::duration<double, std::micro>(t1 - t0).count();
  }
  gst_buffer_unref(frame);
  gst_harness_teardown(harness);
  return total_us / frames;
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string part; std::getline(in, part, sep);) out.push_back(part);
  return out;
}

}  // namespace

int main(int argc, char **argv) {
  std::string plugin_dir, sizes = "1280x720,1920x1080", formats = "I420,NV12,BGRx";
  int frames = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--plugin-dir"))
      plugin_dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--frames"))
      frames = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--sizes"))
      sizes = argv[i + 1];
    else if (!std::strcmp(argv[i], "--formats"))
      formats = argv[i + 1];
  }
  if (plugin_dir.empty() || frames <= 0) {
    std::fprintf(stderr,
                 "usage: %s --plugin-dir DIR [--frames N] [--sizes WxH,...] "
                 "[--formats F,...]\n",
                 argv[0]);
    return 2;
  }
  setenv("GST_PLUGIN_PATH", plugin_dir.c_str(), 1);
  // a registry of its own: the build's plugins never enter the user's registry
  const std::string registry = "/tmp/bench-overlay-registry-" + std::to_string(getpid()) + ".bin";
  setenv("GST_REGISTRY", registry.c_str(), 1);
  setenv("GST_REGISTRY_FORK", "no", 1);
  gst_init(nullptr, nullptr);
  GstElementFactory *f = gst_element_factory_find("vidclsoverlay");
  if (f == nullptr) {
    std::fprintf(stderr, "vidclsoverlay not found in %s\n", plugin_dir.c_str());
    return 1;
  }
  gst_object_unref(f);

  const Case cases[] = {
      {"nothing to draw", false, 1, false, false, false},
      {"blend, rendered once per 16 frames", true, 16, false, false, false},
      {"blend, rendered every frame", true, 1, false, false, false},
      {"blend, no box (background-color=0)", true, 16, false, false, true},
      {"composition meta, once per 16 frames", true, 16, true, false, false},
      {"textoverlay, same text (reference)", false, 1, false, true, false},
  };
  std::printf(
      "vidclsoverlay, %d frames per case, mean us per frame (3 label lines, "
      "default font size)\n",
      frames);
  for (const std::string &size : split(sizes, ',')) {
    const auto wh = split(size, 'x');
    if (wh.size() != 2) continue;
    const int w = std::atoi(wh[0].c_str()), h = std::atoi(wh[1].c_str());
    for (const std::string &format : split(formats, ',')) {
      for (const Case &c : cases) {
        std::printf("%5dx%-5d %-5s %-40s %9.1f\n", w, h, format.c_str(), c.name,
                    run_case(c, format, w, h, frames));
        std::fflush(stdout);
      }
    }
  }
  std::remove(registry.c_str());
  return 0;
}
