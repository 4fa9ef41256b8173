// Shared set-up for the GStreamer element tests: the build's plugins only, a private registry,
// and small helpers for pipelines. Torch-free, so the result elements' tests use it too
// (gst_test_clip.h adds the clip meta).
#pragma once

#include <gst/gst.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

namespace vidcls_test {

// gst_init with GST_PLUGIN_PATH = the build's plugin folder (VIDCLS_PLUGIN_DIR, set by meson) and
// a registry of this test binary's own, so no installed or stale plugin is picked up; fails
// unless every element of `needed` can be made.
class GstEnvironment : public ::testing::Environment {
 public:
  GstEnvironment(std::initializer_list<const char *> needed = {"vidclsclipper"})
      : needed_(needed) {}
  void SetUp() override {
    const char *dir = std::getenv("VIDCLS_PLUGIN_DIR");
    ASSERT_NE(dir, nullptr) << "VIDCLS_PLUGIN_DIR is not set (run through meson test)";
    setenv("GST_PLUGIN_PATH", dir, 1);
    registry_ = std::filesystem::temp_directory_path() /
                ("vidcls-registry-" + std::to_string(::getpid()) + ".bin");
    setenv("GST_REGISTRY", registry_.c_str(), 1);
    setenv("GST_REGISTRY_FORK", "no", 1);
    gst_init(nullptr, nullptr);
    for (const char *name : needed_) {
      GstElementFactory *f = gst_element_factory_find(name);
      ASSERT_NE(f, nullptr) << name << " was not found (vidcls plugins in " << dir
                            << ", GStreamer's in the system)";
      gst_object_unref(f);
    }
  }
  void TearDown() override { std::filesystem::remove(registry_); }

 private:
  std::vector<const char *> needed_;
  std::filesystem::path registry_;
};

// Frame `i` of an RGB stream: a square moving sideways over a gradient that changes with `i`, so
// that consecutive clips differ; timestamps of a stream of frames `dur` long.
inline GstBuffer *moving_square_frame(int w, int h, int i, GstClockTime dur) {
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, w * h * 3, nullptr);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      guint8 *p = map.data + (y * w + x) * 3;
      const bool in = std::abs(x - (5 + 2 * i) % w) < 8 && std::abs(y - h / 2) < 8;
      p[0] = in ? 250 : static_cast<guint8>((x * 3 + i) & 0xff);
      p[1] = in ? 30 : static_cast<guint8>((y * 5) & 0xff);
      p[2] = static_cast<guint8>((x + y + 7 * i) & 0xff);
    }
  }
  gst_buffer_unmap(buf, &map);
  GST_BUFFER_PTS(buf) = i * dur;
  GST_BUFFER_DURATION(buf) = dur;
  return buf;
}

// An inference element's `stats` structure, read once; a missing field fails the test.
class Stats {
 public:
  explicit Stats(GstElement *element) { g_object_get(element, "stats", &s_, nullptr); }
  ~Stats() {
    if (s_ != nullptr) gst_structure_free(s_);
  }
  Stats(const Stats &) = delete;
  Stats &operator=(const Stats &) = delete;
  guint64 u64(const char *field) const {
    guint64 v = 0;
    EXPECT_TRUE(s_ != nullptr && gst_structure_get_uint64(s_, field, &v)) << "stats." << field;
    return v;
  }
  guint uint(const char *field) const {
    guint v = 0;
    EXPECT_TRUE(s_ != nullptr && gst_structure_get_uint(s_, field, &v)) << "stats." << field;
    return v;
  }
  double dbl(const char *field) const {
    double v = 0;
    EXPECT_TRUE(s_ != nullptr && gst_structure_get_double(s_, field, &v)) << "stats." << field;
    return v;
  }
  const GstStructure *structure() const { return s_; }

 private:
  GstStructure *s_ = nullptr;
};

// Runs a pipeline to EOS or ERROR (or `timeout_s`), collecting element messages with the given
// structure name. Returns the error message (empty on EOS).
struct RunResult {
  bool eos = false;
  std::string error;       // message of the first ERROR
  std::string debug;       // its debug string
  std::vector<GstStructure *> messages;  // owned copies
  ~RunResult() {
    for (auto *s : messages) gst_structure_free(s);
  }
};

inline void run_pipeline(GstElement *pipeline, RunResult &out, const char *message_name,
                         double timeout_s = 120.0) {
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(timeout_s * 1e6);
  for (;;) {
    const gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0) break;
    GstMessage *msg = gst_bus_timed_pop(bus, left * GST_USECOND);
    if (msg == nullptr) break;
    bool done = false;
    switch (GST_MESSAGE_TYPE(msg)) {
      case GST_MESSAGE_EOS:
        out.eos = true;
        done = true;
        break;
      case GST_MESSAGE_ERROR: {
        GError *err = nullptr;
        gchar *dbg = nullptr;
        gst_message_parse_error(msg, &err, &dbg);
        out.error = err->message;
        out.debug = dbg ? dbg : "";
        g_error_free(err);
        g_free(dbg);
        done = true;
        break;
      }
      case GST_MESSAGE_ELEMENT: {
        const GstStructure *s = gst_message_get_structure(msg);
        if (message_name && s && gst_structure_has_name(s, message_name)) {
          out.messages.push_back(gst_structure_copy(s));
        }
        break;
      }
      default:
        break;
    }
    gst_message_unref(msg);
    if (done) break;
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
}

}  // namespace vidcls_test
