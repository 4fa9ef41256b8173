// vividinfer and resnetvitinfer: results equal the model run directly on the same clips, the
// feature ring runs the backbone once per frame, EOS clips are classified, and every error a
// user can make ends the pipeline with a message that says what to do.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <torch/utils.h>

#include "gst_test_clip.h"
#include "gst_test_models.h"
#include "gstvidclsmeta.h"
#ifdef VIDCLS_HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"

namespace fs = std::filesystem;

namespace {

using vidcls_test::make_checkpoint;
using vidcls_test::scratch;

// Pushes `n` frames through "vidclsclipper ! <infer>" and returns the output buffers.
std::vector<GstBuffer *> push_frames(GstHarness *h, int n, int w = 80, int hgt = 64) {
  gst_harness_set_src_caps_str(
      h, ("video/x-raw,format=RGB,width=" + std::to_string(w) + ",height=" +
          std::to_string(hgt) + ",framerate=30/1")
             .c_str());
  std::vector<GstBuffer *> out;
  const GstClockTime dur = gst_util_uint64_scale_int(GST_SECOND, 1, 30);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(gst_harness_push(h, vidcls_test::moving_square_frame(w, hgt, i, dur)), GST_FLOW_OK);
    out.push_back(gst_harness_pull(h));
  }
  return out;
}

// Softmax of the model on `clip` [T, C, H, W].
torch::Tensor reference_probs(const std::string &ckpt, const torch::Tensor &clip) {
  auto loaded = vidcls::load_checkpoint(ckpt);
  torch::NoGradGuard no_grad;
  return loaded.model->forward(clip.unsqueeze(0)).softmax(-1)[0];
}

TEST(VividInfer, ScoresEqualTheModelOnTheSameClips) {
  const auto ckpt = make_checkpoint("vivit-xs");
  GstHarness *h = gst_harness_new_parse(
      ("vidclsclipper ! vividinfer mode=sync top-k=3 model=" + ckpt).c_str());
  auto out = push_frames(h, 40);
  int results = 0;
  for (GstBuffer *buf : out) {
    auto *clip = vidcls_test::find_clip_meta(buf);
    auto *res = gst_buffer_get_vidcls_classification_meta(buf);
    ASSERT_EQ(clip == nullptr, res == nullptr) << "a result is on the buffer of its clip";
    if (res != nullptr) {
      ++results;
      auto probs = reference_probs(ckpt, *clip->clip);
      ASSERT_EQ(res->n_results, 3u);
      EXPECT_EQ(res->clip.index, clip->record->index);
      EXPECT_EQ(res->clip.start, clip->record->start);
      EXPECT_EQ(res->clip.end, clip->record->end);
      EXPECT_FALSE(res->clip.partial);
      float prev = 1.0f;
      for (guint i = 0; i < res->n_results; ++i) {
        EXPECT_NEAR(res->scores[i], probs[res->class_ids[i]].item<float>(), 1e-6);
        EXPECT_EQ(std::string(res->labels[i]), "l" + std::to_string(res->class_ids[i]));
        EXPECT_LE(res->scores[i], prev);
        prev = res->scores[i];
      }
      EXPECT_EQ(res->class_ids[0], probs.argmax().item<int64_t>());
    }
    gst_buffer_unref(buf);
  }
  // vivit-xs: 8 frames at stride 2, hop 8 -> clips complete at frames 14 and 30.
  EXPECT_EQ(results, 2);
  GstElement *infer = gst_harness_find_element(h, "vividinfer");
  EXPECT_EQ(vidcls_test::Stats(infer).u64("clips-classified"), 2u);
  gst_object_unref(infer);
  gst_harness_teardown(h);
}

// The statistics are one read-only structure, read at any time; notify::stats is emitted only
// with silent=false (as videorate's counters), once per classified clip.
TEST(VividInfer, StatsAreOneStructureNotifiedOnlyWhenNotSilent) {
  const auto ckpt = make_checkpoint("vivit-xs");
  for (const bool silent : {true, false}) {
    SCOPED_TRACE(silent ? "silent" : "not silent");
    GstHarness *h = gst_harness_new_parse(("vidclsclipper ! vividinfer mode=sync model=" + ckpt +
                                           (silent ? "" : " silent=false"))
                                              .c_str());
    GstElement *infer = gst_harness_find_element(h, "vividinfer");
    int notified = 0;
    auto count = +[](GObject *, GParamSpec *, gpointer n) { ++*static_cast<int *>(n); };
    g_signal_connect(infer, "notify::stats", G_CALLBACK(count), &notified);
    for (GstBuffer *buf : push_frames(h, 40)) gst_buffer_unref(buf);
    {
      const vidcls_test::Stats stats(infer);
      EXPECT_TRUE(gst_structure_has_name(stats.structure(), "vidcls-infer-stats"));
      EXPECT_EQ(stats.u64("clips-classified"), 2u);
      EXPECT_EQ(stats.u64("clips-dropped"), 0u);
      EXPECT_GT(stats.dbl("mean-latency"), 0.0);
      EXPECT_GE(stats.dbl("mean-delay"), stats.dbl("mean-latency"))
          << "the delay holds the forward pass";
      EXPECT_GT(stats.dbl("load-time"), 0.0);
      EXPECT_EQ(stats.uint("instance-streams"), 1u);
      EXPECT_EQ(stats.u64("instance-clips"), 2u);
      EXPECT_EQ(stats.u64("instance-batches"), 2u);
      EXPECT_DOUBLE_EQ(stats.dbl("instance-mean-batch"), 1.0);
      EXPECT_EQ(stats.u64("instance-dropped"), 0u);
      EXPECT_GT(stats.dbl("instance-mean-delay"), 0.0);
      EXPECT_FALSE(gst_structure_has_field(stats.structure(), "backbone-frames"))
          << "resnetvitinfer's field only";
    }
    EXPECT_EQ(notified, silent ? 0 : 2);
    gst_object_unref(infer);
    gst_harness_teardown(h);
  }
}

// Built against GStreamer >= 1.24, every result is also a GstAnalyticsClsMtd in the buffer's
// GstAnalyticsRelationMeta: read back with the analytics API alone, it holds our labels and
// confidences, best first.
TEST(VividInfer, ResultsAreAlsoGStreamerAnalyticsClassifications) {
#ifndef VIDCLS_HAVE_GST_ANALYTICS
  GTEST_SKIP() << "built against GStreamer " << GST_VERSION_MAJOR << "." << GST_VERSION_MINOR
               << ", which has no analytics library (1.24+)";
#else
  const auto ckpt = make_checkpoint("vivit-xs");
  GstHarness *h = gst_harness_new_parse(
      ("vidclsclipper ! vividinfer mode=sync top-k=4 model=" + ckpt).c_str());
  auto out = push_frames(h, 40);
  int with_mtd = 0;
  for (GstBuffer *buf : out) {
    auto *res = gst_buffer_get_vidcls_classification_meta(buf);
    GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta(buf);
    ASSERT_EQ(res == nullptr, rmeta == nullptr) << "a ClsMtd exactly where our meta is";
    if (rmeta == nullptr) {
      gst_buffer_unref(buf);
      continue;
    }
    gpointer state = nullptr;
    GstAnalyticsMtd mtd;
    int found = 0;
    while (gst_analytics_relation_meta_iterate(rmeta, &state, gst_analytics_cls_mtd_get_mtd_type(),
                                               &mtd)) {
      ++found;
      auto *cls = reinterpret_cast<GstAnalyticsClsMtd *>(&mtd);
      ASSERT_EQ(gst_analytics_cls_mtd_get_length(cls), res->n_results);
      for (guint i = 0; i < res->n_results; ++i) {
        EXPECT_STREQ(g_quark_to_string(gst_analytics_cls_mtd_get_quark(cls, i)), res->labels[i]);
        EXPECT_FLOAT_EQ(gst_analytics_cls_mtd_get_level(cls, i), res->scores[i]);
        if (i > 0) {
          EXPECT_LE(gst_analytics_cls_mtd_get_level(cls, i),
                    gst_analytics_cls_mtd_get_level(cls, i - 1));
        }
      }
      // A label looks its confidence up by name, as analytics consumers do.
      EXPECT_EQ(gst_analytics_cls_mtd_get_index_by_quark(cls, g_quark_from_string(res->labels[0])),
                0);
    }
    EXPECT_EQ(found, 1);
    with_mtd += found;
    gst_buffer_unref(buf);
  }
  EXPECT_EQ(with_mtd, 2);
  gst_harness_teardown(h);
#endif
}

// A resnet18-tvit-xs checkpoint whose backbone sees `input` (random weights).
std::string resnet_checkpoint(const std::string &input) {
  const auto path = (scratch() / ("resnet-" + input + ".safetensors")).string();
  if (fs::exists(path)) return path;
  torch::manual_seed(2);
  auto cfg = vidcls::preset_config("resnet18-tvit-xs", 5);
  cfg["input"] = input;
  auto model = vidcls::make_model("resnet-tvit", cfg);
  vidcls::CheckpointInfo info;
  info.preset = "resnet18-tvit-xs";
  info.clip = vidcls::find_preset("resnet18-tvit-xs").clip;
  for (int i = 0; i < 5; ++i) info.labels.push_back("l" + std::to_string(i));
  vidcls::save_checkpoint(path, *model, info);
  return path;
}

// resnetvitinfer: overlapping clips (hop 2 of T = 9) run the backbone once per sampled frame (a
// motion backbone once per pair of consecutive sampled frames) and give the same scores as the
// full model on each clip, for every backbone input.
class ResnetVitRing : public ::testing::TestWithParam<std::string> {};

TEST_P(ResnetVitRing, FeatureRingRunsTheBackboneOncePerFrame) {
  const auto ckpt = resnet_checkpoint(GetParam());
  GstHarness *h = gst_harness_new_parse(
      ("vidclsclipper clip-stride=2 ! resnetvitinfer mode=sync model=" + ckpt).c_str());
  const int frames = 40;  // stride 2 -> 20 sampled frames -> clips at 9, 11, ..., 19: 6 clips
  auto out = push_frames(h, frames);
  int results = 0;
  for (GstBuffer *buf : out) {
    auto *clip = vidcls_test::find_clip_meta(buf);
    auto *res = gst_buffer_get_vidcls_classification_meta(buf);
    if (res != nullptr) {
      ++results;
      auto probs = reference_probs(ckpt, *clip->clip);
      for (guint i = 0; i < res->n_results; ++i) {
        EXPECT_NEAR(res->scores[i], probs[res->class_ids[i]].item<float>(), 1e-5);
      }
    }
    gst_buffer_unref(buf);
  }
  EXPECT_EQ(results, 6);
  GstElement *infer = gst_harness_find_element(h, "resnetvitinfer");
  const guint64 backbone = vidcls_test::Stats(infer).u64("backbone-frames");
  if (GetParam() == "rgb")
    EXPECT_EQ(backbone, 19u) << "each of the 19 sampled frames in a clip once; recomputing: 54";
  else
    EXPECT_EQ(backbone, 18u) << "each of the 18 pairs (0, 1) ... (17, 18) once; recomputing: 48";
  gst_object_unref(infer);
  gst_harness_teardown(h);
}

INSTANTIATE_TEST_SUITE_P(Inputs, ResnetVitRing, ::testing::Values("rgb", "motion", "two-stream"),
                         [](const auto &info) {
                           return info.param == "two-stream" ? std::string("two_stream")
                                                             : info.param;
                         });

// The clip completed at EOS (eos-policy=pad) is classified and marked partial on the bus.
TEST(VividInfer, EndOfStreamClipIsClassified) {
  const auto ckpt = make_checkpoint("vivit-xs");
  GstElement *pipeline = gst_parse_launch(
      ("videotestsrc num-buffers=20 ! video/x-raw,format=RGB,width=64,height=48,framerate=30/1 "
       "! vidclsclipper eos-policy=pad ! vividinfer mode=sync model=" +
       ckpt + " ! fakesink")
          .c_str(),
      nullptr);
  ASSERT_NE(pipeline, nullptr);
  vidcls_test::RunResult r;
  vidcls_test::run_pipeline(pipeline, r, "vidcls-classification");
  gst_object_unref(pipeline);
  ASSERT_TRUE(r.eos) << r.error << " " << r.debug;
  // 20 frames at stride 2 = 10 sampled: one full clip (0..7) and one padded (8, 9).
  ASSERT_EQ(r.messages.size(), 2u);
  gboolean partial = TRUE;
  guint64 index = 9;
  gst_structure_get(r.messages[0], "partial", G_TYPE_BOOLEAN, &partial, "clip-index",
                    G_TYPE_UINT64, &index, nullptr);
  EXPECT_FALSE(partial);
  EXPECT_EQ(index, 0u);
  gst_structure_get(r.messages[1], "partial", G_TYPE_BOOLEAN, &partial, "clip-index",
                    G_TYPE_UINT64, &index, nullptr);
  EXPECT_TRUE(partial);
  EXPECT_EQ(index, 1u);
  const GValue *labels = gst_structure_get_value(r.messages[1], "labels");
  ASSERT_NE(labels, nullptr);
  EXPECT_EQ(gst_value_array_get_size(labels), 5u);
  EXPECT_NE(gst_structure_get_string(r.messages[1], "label"), nullptr);
}

// Every classified clip reaches the elements downstream in-band, once: as a meta on a buffer,
// or (the end-of-stream clip; async results ready at EOS) as a "vidcls-classification" custom
// downstream event before EOS. A clip whose labels all fall below `threshold` still gets a meta,
// with no results, though no bus message.
struct Downstream {
  std::vector<guint64> clips;  // clip index of each meta and event, in arrival order
  std::vector<guint> n_results;
  int events = 0;
  bool result_after_eos = false;
  bool eos = false;
};

GstPadProbeReturn record_results(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *d = static_cast<Downstream *>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    gpointer state = nullptr;
    while (GstMeta *m = gst_buffer_iterate_meta_filtered(
               buf, &state, GST_VIDCLS_CLASSIFICATION_META_API_TYPE)) {
      auto *cm = reinterpret_cast<GstVidclsClassificationMeta *>(m);
      d->clips.push_back(cm->clip.index);
      d->n_results.push_back(cm->n_results);
    }
    return GST_PAD_PROBE_OK;
  }
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(ev) == GST_EVENT_EOS) d->eos = true;
  const GstStructure *s = gst_event_get_structure(ev);
  if (GST_EVENT_TYPE(ev) == GST_EVENT_CUSTOM_DOWNSTREAM && s != nullptr &&
      gst_structure_has_name(s, "vidcls-classification")) {
    guint64 index = 0;
    EXPECT_TRUE(gst_structure_get_uint64(s, "clip-index", &index));
    const GValue *labels = gst_structure_get_value(s, "labels");
    d->clips.push_back(index);
    d->n_results.push_back(labels ? gst_value_array_get_size(labels) : 0);
    d->events++;
    d->result_after_eos |= d->eos;
  }
  return GST_PAD_PROBE_OK;
}

void check_every_result_downstream(const std::string &mode, double threshold) {
  const auto ckpt = make_checkpoint("vivit-xs");
  // 44 frames at stride 2 = 22 sampled: two clips of 8 (vivit-xs: hop 8) and the padded
  // end-of-stream clip of the last 6.
  GstElement *pipeline = gst_parse_launch(
      ("videotestsrc num-buffers=44 ! video/x-raw,format=RGB,width=64,height=48,framerate=30/1 "
       "! vidclsclipper eos-policy=pad ! vividinfer max-pending=64 mode=" + mode +
       " threshold=" + std::to_string(threshold) + " model=" + ckpt + " ! fakesink name=sink")
          .c_str(),
      nullptr);
  ASSERT_NE(pipeline, nullptr);
  GstElement *sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  GstPad *pad = gst_element_get_static_pad(sink, "sink");
  Downstream d;
  gst_pad_add_probe(pad,
                    static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                                 GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
                    record_results, &d, nullptr);
  vidcls_test::RunResult r;
  vidcls_test::run_pipeline(pipeline, r, "vidcls-classification");
  gst_object_unref(pad);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
  ASSERT_TRUE(r.eos) << r.error << " " << r.debug;
  SCOPED_TRACE("mode=" + mode + " threshold=" + std::to_string(threshold));
  std::vector<guint64> expected;
  for (guint64 i = 0; i < d.clips.size(); ++i) expected.push_back(i);
  EXPECT_EQ(d.clips.size(), 3u);
  EXPECT_EQ(d.clips, expected) << "each clip once, in order";
  EXPECT_GE(d.events, 1) << "the end-of-stream clip has no buffer to carry it";
  EXPECT_FALSE(d.result_after_eos);
  for (guint n : d.n_results) EXPECT_EQ(n, threshold >= 1.0 ? 0u : 5u);
  EXPECT_EQ(r.messages.size(), threshold >= 1.0 ? 0u : 3u);
}

TEST(VividInfer, EveryResultReachesDownstreamOnce) {
  check_every_result_downstream("sync", 0.0);
  check_every_result_downstream("async", 0.0);
  check_every_result_downstream("sync", 1.0);
}

// In sync mode a buffer that completes a clip waits for the model: the element adds its
// inference time (the warm-up clip's until clips are classified) to the latency query.
TEST(VividInfer, SyncModeReportsItsLatency) {
  const auto ckpt = make_checkpoint("vivit-xs");
  GstHarness *h = gst_harness_new_parse(("vividinfer mode=sync model=" + ckpt).c_str());
  gst_harness_set_src_caps_str(h, "video/x-raw,format=RGB,width=64,height=64,framerate=30/1");
  gst_harness_set_upstream_latency(h, 0);
  const GstClockTime latency = gst_harness_query_latency(h);
  EXPECT_GT(latency, 0u);
  EXPECT_LT(latency, 10 * GST_SECOND);
  gst_harness_teardown(h);

  h = gst_harness_new_parse(("vividinfer mode=async model=" + ckpt).c_str());
  gst_harness_set_src_caps_str(h, "video/x-raw,format=RGB,width=64,height=64,framerate=30/1");
  gst_harness_set_upstream_latency(h, 0);
  EXPECT_EQ(gst_harness_query_latency(h), 0u) << "async mode never holds a buffer";
  gst_harness_teardown(h);
}

// Properties changed from other threads while clips are classified: no crash, no deadlock.
TEST(VividInfer, PropertyStress) {
  const auto ckpt = make_checkpoint("vivit-xs");
  GstHarness *h = gst_harness_new_parse(
      ("vidclsclipper clip-stride=1 ! vividinfer name=infer mode=sync model=" + ckpt).c_str());
  GstElement *infer = gst_harness_find_element(h, "vividinfer");
  GValue k = G_VALUE_INIT, thr = G_VALUE_INIT, batch = G_VALUE_INIT;
  g_value_init(&k, G_TYPE_UINT);
  g_value_set_uint(&k, 2);
  g_value_init(&thr, G_TYPE_DOUBLE);
  g_value_set_double(&thr, 0.2);
  g_value_init(&batch, G_TYPE_UINT);
  g_value_set_uint(&batch, 3);
  GstHarnessThread *t1 = gst_harness_stress_property_start_full(h, "top-k", &k, 100);
  GstHarnessThread *t2 = gst_harness_stress_property_start_full(h, "threshold", &thr, 100);
  GstHarnessThread *t3 = gst_harness_stress_property_start_full(h, "batch-size", &batch, 100);
  auto out = push_frames(h, 60);
  for (GstBuffer *b : out) gst_buffer_unref(b);
  EXPECT_GT(gst_harness_stress_thread_stop(t1), 0u);
  EXPECT_GT(gst_harness_stress_thread_stop(t2), 0u);
  EXPECT_GT(gst_harness_stress_thread_stop(t3), 0u);
  // 60 frames at stride 2 = 30 sampled, T = 8, hop 1 -> 23 clips
  EXPECT_EQ(vidcls_test::Stats(infer).u64("clips-classified"), 23u);
  gst_object_unref(infer);
  g_value_unset(&k);
  g_value_unset(&thr);
  g_value_unset(&batch);
  gst_harness_teardown(h);
}

struct ErrorCase {
  const char *name;
  std::string element_args;  // what follows "vividinfer "
  std::string clipper_args;
  std::string expect;        // in the error message or its debug string
};

class InferErrors : public ::testing::TestWithParam<int> {};

std::vector<ErrorCase> error_cases() {
  const auto good = make_checkpoint("vivit-xs");
  const auto resnet = make_checkpoint("resnet18-tvit-xs");
  const auto corrupt = (scratch() / "corrupt.safetensors").string();
  {
    std::ifstream in(good, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(corrupt, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  }
  const auto garbage = (scratch() / "garbage.safetensors").string();
  std::ofstream(garbage) << "this is not a checkpoint at all, just text";
  return {
      {"no-model", "", "", "model"},
      {"missing-file", "model=" + (scratch() / "nope.safetensors").string(), "", "not found"},
      {"truncated", "model=" + corrupt, "", corrupt},
      {"garbage", "model=" + garbage, "", "garbage.safetensors"},
      {"wrong-architecture", "model=" + resnet, "", "resnetvitinfer"},
      {"no-cuda", "device=cuda model=" + good, "", "device"},
      {"fp16-on-cpu", "device=cpu precision=fp16 model=" + good, "", "fp16"},
      {"clip-does-not-fit", "model=" + good, "clip-length=4", "clip-length"},
  };
}

TEST_P(InferErrors, PipelineFailsWithAMessageAUserCanActOn) {
  const auto c = error_cases().at(GetParam());
  SCOPED_TRACE(c.name);
  GstElement *pipeline = gst_parse_launch(
      ("videotestsrc num-buffers=30 ! video/x-raw,format=RGB,width=64,height=64 ! "
       "vidclsclipper " +
       c.clipper_args + " ! vividinfer " + c.element_args + " ! fakesink")
          .c_str(),
      nullptr);
  ASSERT_NE(pipeline, nullptr);
  vidcls_test::RunResult r;
  vidcls_test::run_pipeline(pipeline, r, nullptr, 60);
  gst_object_unref(pipeline);
  EXPECT_FALSE(r.eos);
  ASSERT_FALSE(r.error.empty()) << c.name << ": no error posted";
  EXPECT_NE((r.error + " " + r.debug).find(c.expect), std::string::npos)
      << c.name << ": '" << r.error << "' / '" << r.debug << "' does not mention '" << c.expect
      << "'";
}

INSTANTIATE_TEST_SUITE_P(Cases, InferErrors, ::testing::Range(0, 8));

}  // namespace

int main(int argc, char **argv) { return vidcls_test::run_element_tests(argc, argv); }
