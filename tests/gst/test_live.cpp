// A live source into a model too slow for real time: frames keep flowing at the source's rate,
// the inference element drops clips by policy and counts them, and memory stays bounded.
// No test-only hooks: the real elements, a real preset (mini-vivit-ti, 16 x 224 x 224, about
// 0.7 s per clip on this CPU) and a clip every 4th frame (7.5 clips/s) at 30 frames/s.
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include <torch/utils.h>

#include "gst_test_env.h"
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"

namespace fs = std::filesystem;

namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

GstPadProbeReturn count_buffer(GstPad *, GstPadProbeInfo *, gpointer data) {
  static_cast<std::atomic<int> *>(data)->fetch_add(1);
  return GST_PAD_PROBE_OK;
}

TEST(Live, FramesKeepFlowingWhileSlowInferenceDropsClips) {
  const auto dir = fs::temp_directory_path() / ("vidcls-live-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto ckpt = (dir / "mini-vivit-ti.safetensors").string();
  {
    torch::manual_seed(0);
    auto model = vidcls::make_preset_model("mini-vivit-ti", 10);
    vidcls::CheckpointInfo info;
    info.preset = "mini-vivit-ti";
    info.clip = vidcls::find_preset("mini-vivit-ti").clip;
    vidcls::save_checkpoint(ckpt, *model, info);
  }
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(
      ("videotestsrc is-live=true pattern=ball ! "
       "video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! "
       "vidclsclipper clip-stride=1 ! vividinfer name=infer max-pending=2 drop=oldest model=" +
       ckpt + " ! fakesink name=sink sync=true")
          .c_str(),
      &err);
  ASSERT_EQ(err, nullptr) << err->message;
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstElement *infer = gst_bin_get_by_name(GST_BIN(pipeline), "infer");
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  std::atomic<int> frames{0};
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_buffer, &frames, nullptr);

  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  ASSERT_EQ(gst_element_get_state(pipeline, nullptr, nullptr, 60 * GST_SECOND),
            GST_STATE_CHANGE_SUCCESS);

  // Let the first clips reach the model, then measure over a fixed window.
  auto wait = [&](double seconds) {
    GstMessage *msg = gst_bus_timed_pop_filtered(
        bus, static_cast<GstClockTime>(seconds * GST_SECOND),
        static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS));
    if (msg != nullptr) {
      GError *e = nullptr;
      if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) gst_message_parse_error(msg, &e, nullptr);
      ADD_FAILURE() << "pipeline stopped: " << (e ? e->message : "EOS");
      if (e) g_error_free(e);
      gst_message_unref(msg);
      return false;
    }
    return true;
  };
  ASSERT_TRUE(wait(3.0));
  const long rss_start = rss_kib();
  const int frames_start = frames.load();
  const gint64 t0 = g_get_monotonic_time();
  ASSERT_TRUE(wait(10.0));
  const double elapsed = (g_get_monotonic_time() - t0) / 1e6;
  const int flowed = frames.load() - frames_start;
  const long rss_end = rss_kib();
  guint64 classified = 0, dropped = 0;
  double latency = 0;
  {
    const vidcls_test::Stats stats(infer);
    classified = stats.u64("clips-classified");
    dropped = stats.u64("clips-dropped");
    latency = stats.dbl("mean-latency");
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);

  const double fps = flowed / elapsed;
  std::printf("live: %.1f frames/s over %.1f s (source 30), %llu clips classified, %llu dropped, "
              "mean inference %.0f ms, RSS %ld -> %ld MiB\n",
              fps, elapsed, static_cast<unsigned long long>(classified),
              static_cast<unsigned long long>(dropped), latency, rss_start / 1024, rss_end / 1024);
  EXPECT_GT(fps, 27.0) << "frames must keep flowing at the source rate";
  EXPECT_GT(dropped, 0u) << "a model this slow must drop clips";
  EXPECT_GT(classified, 0u);
  EXPECT_LT(rss_end - rss_start, 200 * 1024) << "memory must stay bounded";

  gst_object_unref(pad);
  gst_object_unref(sink);
  gst_object_unref(infer);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new vidcls_test::GstEnvironment);
  return RUN_ALL_TESTS();
}
