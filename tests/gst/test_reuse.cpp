// vividinfer's tubelet reuse on a real encoded video (VP8 in WebM, decoded by decodebin): the
// same pipeline with reuse on and off gives the same scores for every clip, at hops of one tubelet,
// two tubelets, the preset's default (no overlap) and one that is not a multiple of the tubelet,
// for vivit-xs and mini-vivit-xs, through a model swap mid-stream and two flushing seeks; and
// across a caps change (pushed frames of another size).
// Random weights with the head scaled up, so that a tubelet taken from the wrong frames would
// move the scores far beyond the bound.
#include <gst/check/gstharness.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "gst_test_env.h"
#include "gst_test_models.h"
#include "gstvidclsmeta.h"
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"

namespace {

using vidcls_test::scratch;

// Scores of two runs may differ by float rounding only: the spatial encoder runs on a batch of new
// tubelets instead of a whole clip's, which may change the order of a few sums. Measured on these
// models on Debian 12: no difference at all; a tubelet kept across a model swap or a seek moves
// scores by 2e-2 to 0.8 (checked by breaking the ring on purpose).
constexpr double kScoreBound = 1e-4;

// 120 frames (4 s at 30 fps) of colour bars moving sideways, 96x72, VP8 in WebM.
std::string encoded_video() {
  const auto path = (scratch() / "bars.webm").string();
  if (std::filesystem::exists(path)) return path;
  GError *err = nullptr;
  GstElement *p =
      gst_parse_launch(("videotestsrc pattern=smpte horizontal-speed=3 num-buffers=120 ! "
                        "video/x-raw,width=96,height=72,"
                        "framerate=30/1 ! vp8enc deadline=1 ! webmmux ! filesink location=" +
                        path)
                           .c_str(),
                       &err);
  EXPECT_EQ(err, nullptr) << (err ? err->message : "");
  vidcls_test::RunResult r;
  vidcls_test::run_pipeline(p, r, nullptr);
  EXPECT_TRUE(r.eos) << r.error;
  gst_object_unref(p);
  return path;
}

// A checkpoint of `preset` on the tubelet-local input, random weights from `seed`, its head
// scaled up 50 times so that scores spread out.
std::string checkpoint(const std::string &preset, uint64_t seed) {
  const auto path =
      (scratch() / (preset + "-reuse-" + std::to_string(seed) + ".safetensors")).string();
  if (std::filesystem::exists(path)) return path;
  torch::manual_seed(seed);
  auto cfg = vidcls::preset_config(preset, 5);
  cfg["input_transform"] = "tubelet-normal-flow";
  auto model = vidcls::make_model(vidcls::find_preset(preset).architecture, cfg);
  {
    torch::NoGradGuard no_grad;
    for (auto &p : model->named_parameters())
      if (p.key().rfind("head.", 0) == 0) p.value().mul_(50.0);
  }
  vidcls::CheckpointInfo info;
  info.preset = preset;
  info.clip = vidcls::find_preset(preset).clip;
  for (int i = 0; i < 5; ++i) info.labels.push_back("l" + std::to_string(i));
  vidcls::save_checkpoint(path, *model, info);
  return path;
}

struct Result {
  guint64 index;
  std::string model;
  std::vector<double> scores;  // by class id
};

// Pumps the bus until EOS, ERROR or the named element message (when `until` is set).
bool pump(GstElement *pipeline, std::vector<Result> &out, const char *until = nullptr) {
  GstBus *bus = gst_element_get_bus(pipeline);
  bool ok = false;
  for (;;) {
    GstMessage *msg = gst_bus_timed_pop(bus, 120 * GST_SECOND);
    if (msg == nullptr) break;
    const GstStructure *s = gst_message_get_structure(msg);
    const auto type = GST_MESSAGE_TYPE(msg);
    bool done = false;
    if (type == GST_MESSAGE_ERROR) {
      GError *err = nullptr;
      gst_message_parse_error(msg, &err, nullptr);
      ADD_FAILURE() << err->message;
      g_error_free(err);
      done = true;
    } else if (type == GST_MESSAGE_EOS && until == nullptr) {
      ok = done = true;
    } else if (type == GST_MESSAGE_ELEMENT && s && until && gst_structure_has_name(s, until)) {
      ok = done = true;
    } else if (type == GST_MESSAGE_ELEMENT && s &&
               gst_structure_has_name(s, "vidcls-classification")) {
      Result r;
      gst_structure_get_uint64(s, "clip-index", &r.index);
      r.model = gst_structure_get_string(s, "model");
      const GValue *scores = gst_structure_get_value(s, "scores");
      const GValue *ids = gst_structure_get_value(s, "class-ids");
      r.scores.assign(gst_value_array_get_size(scores), 0.0);
      for (guint i = 0; i < gst_value_array_get_size(scores); ++i) {
        const int id = g_value_get_int(gst_value_array_get_value(ids, i));
        r.scores.at(id) = g_value_get_double(gst_value_array_get_value(scores, i));
      }
      out.push_back(r);
    }
    gst_message_unref(msg);
    if (done) break;
  }
  gst_object_unref(bus);
  return ok;
}

struct Runs {
  std::vector<Result> results;
  guint64 computed = 0, reused = 0;
  std::string reuse;
};

// Swaps the model of `infer` before the `at`-th buffer reaches it (in its streaming thread, so
// that the clips before use the first model and those after the second, whatever the timing).
struct MidStreamSwap {
  GstElement *infer;
  std::string path;
  int at, seen = 0;
  std::atomic<bool> changed{false};
};

GstBusSyncReply note_swap(GstBus *, GstMessage *msg, gpointer data) {
  const GstStructure *s = gst_message_get_structure(msg);
  if (s != nullptr && gst_structure_has_name(s, "vidcls-model-changed"))
    static_cast<MidStreamSwap *>(data)->changed = true;
  return GST_BUS_PASS;
}

GstPadProbeReturn swap_before_buffer(GstPad *, GstPadProbeInfo *, gpointer data) {
  auto *swap = static_cast<MidStreamSwap *>(data);
  if (++swap->seen == swap->at) {
    g_object_set(swap->infer, "model", swap->path.c_str(), nullptr);
    for (int i = 0; i < 6000 && !swap->changed; ++i) g_usleep(10000);
    EXPECT_TRUE(swap->changed) << "the second model was not swapped in within 60 s";
  }
  return GST_PAD_PROBE_OK;
}

// Plays the video to its end, the model swapped for another before its 50th frame; seeks back
// to 1.5 s (flushing) and plays to the end; seeks to the start and plays to the end.
Runs run(const std::string &preset, int hop, bool reuse) {
  const std::string desc =
      "filesrc location=" + encoded_video() +
      " ! decodebin ! videoconvert ! vidclsclipper clip-stride=" + std::to_string(hop) +
      " ! vividinfer name=infer mode=sync top-k=5 reuse=" + (reuse ? "true" : "false") +
      " model=" + checkpoint(preset, 1) + " ! fakesink sync=false";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  EXPECT_EQ(err, nullptr) << (err ? err->message : "");
  GstElement *infer = gst_bin_get_by_name(GST_BIN(pipeline), "infer");
  MidStreamSwap swap{infer, checkpoint(preset, 2), 50};
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_set_sync_handler(bus, note_swap, &swap, nullptr);
  GstPad *sink = gst_element_get_static_pad(infer, "sink");
  gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, swap_before_buffer, &swap, nullptr);
  Runs out;
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  EXPECT_TRUE(pump(pipeline, out.results)) << "first run";
  EXPECT_TRUE(swap.changed);
  for (double seconds : {1.5, 0.0}) {
    EXPECT_TRUE(gst_element_seek_simple(
        pipeline, GST_FORMAT_TIME,
        static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_ACCURATE),
        static_cast<gint64>(seconds * GST_SECOND)));
    EXPECT_TRUE(pump(pipeline, out.results)) << "after a seek to " << seconds << " s";
  }
  const vidcls_test::Stats stats(infer);
  out.computed = stats.u64("features-computed");
  out.reused = stats.u64("features-reused");
  const gchar *r = gst_structure_get_string(stats.structure(), "reuse");
  out.reuse = r ? r : "";
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  gst_object_unref(sink);
  gst_object_unref(infer);
  gst_object_unref(pipeline);
  return out;
}

struct Case {
  std::string preset;
  int hop;
};

class TubeletReuse : public ::testing::TestWithParam<Case> {};

TEST_P(TubeletReuse, ScoresEqualThoseOfWholeClips) {
  const auto &c = GetParam();
  const Runs on = run(c.preset, c.hop, true), off = run(c.preset, c.hop, false);
  EXPECT_EQ(on.reuse, "on");
  EXPECT_EQ(off.reuse, "off");
  ASSERT_EQ(on.results.size(), off.results.size());
  ASSERT_GT(on.results.size(), 6u);
  double worst = 0.0, spread = 0.0;
  std::set<std::string> models;
  for (size_t i = 0; i < on.results.size(); ++i) {
    const auto &a = on.results[i], &b = off.results[i];
    EXPECT_EQ(a.index, b.index) << "result " << i;
    EXPECT_EQ(a.model, b.model) << "result " << i;
    models.insert(a.model);
    for (size_t k = 0; k < a.scores.size(); ++k) {
      worst = std::max(worst, std::abs(a.scores[k] - b.scores[k]));
      spread = std::max(spread, std::abs(a.scores[k] - on.results[0].scores[k]));
    }
  }
  EXPECT_LT(worst, kScoreBound) << "largest score difference";
  EXPECT_EQ(models.size(), 2u) << "clips of both models";
  EXPECT_GT(spread, 1e-2) << "the clips' scores differ (the check can see a wrong tubelet)";
  const int64_t tokens = vidcls::find_preset(c.preset).config.at("frames").get<int64_t>() / 2;
  EXPECT_EQ(off.computed, off.results.size() * tokens) << "reuse off: every clip whole";
  EXPECT_EQ(off.reused, 0u);
  EXPECT_EQ(on.computed + on.reused, on.results.size() * tokens);
  if (c.hop == 2) {
    // a new tubelet per clip, but for the first clip of each run (3 runs) and end-of-stream clips
    EXPECT_LT(on.computed, off.computed / 2) << "reused " << on.reused;
  }
  std::printf(
      "%s hop %d: %zu clips, tubelets computed %llu (reuse off: %llu), reused %llu, "
      "largest score difference %.2e\n",
      c.preset.c_str(), c.hop, on.results.size(), static_cast<unsigned long long>(on.computed),
      static_cast<unsigned long long>(off.computed), static_cast<unsigned long long>(on.reused),
      worst);
}

INSTANTIATE_TEST_SUITE_P(Hops, TubeletReuse,
                         ::testing::Values(Case{"vivit-xs", 2}, Case{"vivit-xs", 4},
                                           Case{"vivit-xs", 8}, Case{"vivit-xs", 3},
                                           Case{"mini-vivit-xs", 2}, Case{"mini-vivit-xs", 4},
                                           Case{"mini-vivit-xs", 8}),
                         [](const auto &info) {
                           std::string p = info.param.preset;
                           std::replace(p.begin(), p.end(), '-', '_');
                           return p + "_hop" + std::to_string(info.param.hop);
                         });

// A checkpoint whose input transform looks at the whole clip runs whole clips and says why.
TEST(TubeletReuse, AClipWideInputTransformSaysReuseIsUnavailable) {
  const auto path = vidcls_test::make_checkpoint("vivit-xs");  // the preset's normal-flow
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(
      ("filesrc location=" + encoded_video() +
       " ! decodebin ! videoconvert ! vidclsclipper clip-stride=2 ! vividinfer name=infer "
       "mode=sync model=" +
       path + " ! fakesink sync=false")
          .c_str(),
      &err);
  ASSERT_EQ(err, nullptr);
  GstElement *infer = gst_bin_get_by_name(GST_BIN(pipeline), "infer");
  std::vector<Result> results;
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  EXPECT_TRUE(pump(pipeline, results));
  {
    const vidcls_test::Stats stats(infer);
    const std::string reuse = gst_structure_get_string(stats.structure(), "reuse");
    EXPECT_EQ(reuse.rfind("unavailable: input transform 'normal-flow'", 0), 0u) << reuse;
    EXPECT_EQ(stats.u64("features-reused"), 0u);
    EXPECT_EQ(stats.u64("features-computed"), results.size() * 4);
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(infer);
  gst_object_unref(pipeline);
}

// 40 frames of 80x64, then (a caps change) 40 of 96x72, through the clipper at hop 2 and
// vividinfer: every result's scores by class id, and the tubelets computed.
std::vector<std::vector<double>> across_caps_change(const std::string &model, bool reuse,
                                                    guint64 &computed) {
  GstHarness *h = gst_harness_new_parse(("vidclsclipper clip-stride=2 ! vividinfer mode=sync "
                                         "top-k=5 reuse=" +
                                         std::string(reuse ? "true" : "false") + " model=" + model)
                                            .c_str());
  std::vector<std::vector<double>> out;
  int i = 0;
  for (const auto &size : {std::make_pair(80, 64), std::make_pair(96, 72)}) {
    gst_harness_set_src_caps_str(h, ("video/x-raw,format=RGB,width=" + std::to_string(size.first) +
                                     ",height=" + std::to_string(size.second) + ",framerate=30/1")
                                        .c_str());
    for (int k = 0; k < 40; ++k, ++i) {
      EXPECT_EQ(gst_harness_push(h, vidcls_test::moving_square_frame(
                                        size.first, size.second, i,
                                        gst_util_uint64_scale_int(GST_SECOND, 1, 30))),
                GST_FLOW_OK);
      GstBuffer *buf = gst_harness_pull(h);
      if (auto *res = gst_buffer_get_vidcls_classification_meta(buf)) {
        std::vector<double> scores(5, 0.0);
        for (guint r = 0; r < res->n_results; ++r) scores.at(res->class_ids[r]) = res->scores[r];
        out.push_back(scores);
      }
      gst_buffer_unref(buf);
    }
  }
  GstElement *infer = gst_harness_find_element(h, "vividinfer");
  computed = vidcls_test::Stats(infer).u64("features-computed");
  gst_object_unref(infer);
  gst_harness_teardown(h);
  return out;
}

// A caps change mid-stream (another frame size) starts the clips, and the ring, over.
TEST(TubeletReuse, ACapsChangeStartsOver) {
  const auto model = checkpoint("vivit-xs", 1);
  guint64 computed_on = 0, computed_off = 0;
  const auto on = across_caps_change(model, true, computed_on);
  const auto off = across_caps_change(model, false, computed_off);
  // 20 sampled frames per size: clips at 0, 2, ..., 12, 7 a size
  ASSERT_EQ(on.size(), 14u);
  ASSERT_EQ(off.size(), on.size());
  for (size_t c = 0; c < on.size(); ++c)
    for (size_t k = 0; k < 5; ++k) EXPECT_NEAR(on[c][k], off[c][k], kScoreBound) << "clip " << c;
  EXPECT_EQ(computed_off, 14u * 4u);
  EXPECT_EQ(computed_on, 2u * (4u + 6u)) << "each size: 4 tubelets, then one per clip";
}

}  // namespace

int main(int argc, char **argv) { return vidcls_test::run_element_tests(argc, argv); }
