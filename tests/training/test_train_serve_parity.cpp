// Train-serve parity (the preprocessing contract, docs/architecture.md): on real encoded videos,
// the clip tensors of training's evaluation path (decode_video -> sampled_frame_indices ->
// eval_windows -> eval_crops, what vidcls-eval runs) are bit for bit the tensors vidclsclipper
// attaches in
//   filesrc ! decodebin ! vidclsclipper eos-policy=P ! vividinfer model=M ! fakesink
// and the scores vividinfer posts equal the model run on the evaluation tensors, and the ones
// vidcls-eval writes in its JSON; with eos-policy=partial too, where the clipper sends the short
// end-of-stream clip as it is and the element completes it by the contract's rule. And the clip
// cache's evaluation frames give the pipeline's clips up to the rounding of stored pixels. The same
// for each person's clips of a video with several people (PersonParity).
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "gst_test_clip.h"
#include "vidcls/checkpoint.h"
#include "vidcls/registry.h"
#include "vidcls/train/clip_cache.h"
#include "vidcls/train/evaluation.h"
#include "vidcls/train/synth.h"
#include "vidcls/train/transforms.h"
#include "vidcls/train/video_reader.h"

namespace fs = std::filesystem;
namespace train = vidcls::train;

namespace {

fs::path scratch() {
  static const fs::path dir = [] {
    auto d = fs::temp_directory_path() / ("vidcls-parity-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// One clip as vidclsclipper handed it to vividinfer.
struct PipelineClip {
  uint64_t index = 0, first_sample = 0;
  bool partial = false;
  torch::Tensor tensor;
};

struct Collected {
  std::mutex lock;
  std::vector<PipelineClip> clips;
};

void collect_meta(Collected &c, GstBuffer *buf) {
  if (const GstVidclsClipMeta *m = vidcls_test::find_clip_meta(buf)) {
    std::lock_guard<std::mutex> g(c.lock);
    c.clips.push_back({m->record->index, m->record->first_sample, m->record->partial != FALSE,
                       m->clip->to(torch::kCPU).clone()});
  }
}

GstPadProbeReturn on_infer_sink(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto &c = *static_cast<Collected *>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    collect_meta(c, GST_PAD_PROBE_INFO_BUFFER(info));
  } else if (GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info)) {
    // The end-of-stream clip travels in a serialized event (no buffer is left to carry it).
    const GstStructure *s = gst_event_get_structure(ev);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_CUSTOM_DOWNSTREAM && s != nullptr &&
        gst_structure_has_name(s, "vidcls-eos-clip")) {
      if (const GValue *v = gst_structure_get_value(s, "carrier"))
        collect_meta(c, gst_value_get_buffer(v));
    }
  }
  return GST_PAD_PROBE_OK;
}

struct Case {
  const char *name;
  train::SynthLayout layout;
  int frame_stride;
  double sample_rate;
  int hop;
  const char *eos_policy;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << c.name << " (eos-policy=" << c.eos_policy << ")";
}

// The clips vidclsclipper hands to vividinfer for `video`, and the bus messages.
struct PipelineRun {
  Collected clips;
  vidcls_test::RunResult run;
};

void run_pipeline(const std::string &video, const std::string &ckpt, const std::string &policy,
                  PipelineRun &out) {
  // Nothing set on the clipper but the end-of-stream policy: the spec comes from the checkpoint.
  const std::string desc =
      "filesrc location=\"" + video + "\" ! decodebin ! vidclsclipper eos-policy=" + policy +
      " ! vividinfer name=infer mode=sync top-k=2 model=\"" + ckpt + "\" ! fakesink";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  ASSERT_EQ(err, nullptr) << err->message;
  GstElement *infer = gst_bin_get_by_name(GST_BIN(pipeline), "infer");
  GstPad *sink = gst_element_get_static_pad(infer, "sink");
  gst_pad_add_probe(
      sink,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      on_infer_sink, &out.clips, nullptr);
  vidcls_test::run_pipeline(pipeline, out.run, "vidcls-classification");
  gst_object_unref(sink);
  gst_object_unref(infer);
  gst_object_unref(pipeline);
  ASSERT_TRUE(out.run.eos) << out.run.error << "\n" << out.run.debug;
}

// Synthetic motion videos: 45 frames (no clip length divides it: an end-of-stream clip is left),
// 70 x 94 (odd aspect, neither side the model's).
std::vector<train::SynthItem> write_videos(train::SynthLayout layout, const fs::path &out) {
  train::SynthOptions so;
  so.layout = layout;
  so.out = out.string();
  so.classes = 2;
  so.videos_per_class = 2;
  so.subjects = 2;
  so.frames = 45;
  so.size = 70;
  so.fps = 15;
  so.seed = 11;
  return train::write_synth_dataset(so);
}

class TrainServeParity : public ::testing::TestWithParam<Case> {};

// A random vivit-xs with the case's clip spec, and two classes (the synth set's first two).
std::string write_checkpoint(const Case &c, const fs::path &dir) {
  torch::manual_seed(3);
  auto model = vidcls::make_preset_model("vivit-xs", 2);
  vidcls::CheckpointInfo info;
  info.preset = "vivit-xs";
  info.labels = {train::synth_motion_names()[0], train::synth_motion_names()[1]};
  info.clip = vidcls::find_preset("vivit-xs").clip;
  info.clip.frame_stride = c.frame_stride;
  info.clip.sample_rate = c.sample_rate;
  info.clip.hop = c.hop;
  const auto path = (dir / "model.safetensors").string();
  vidcls::save_checkpoint(path, *model, info);
  return path;
}

TEST_P(TrainServeParity, ClipTensorsAreIdenticalAndScoresEqualTheEvaluationPath) {
  const Case &c = GetParam();
  const fs::path dir = scratch() / c.name;
  fs::create_directories(dir);

  const fs::path data = dir / "data";
  const auto items = write_videos(c.layout, data);
  ASSERT_FALSE(items.empty());
  const std::string video = (data / items.front().file).string();
  const std::string ckpt = write_checkpoint(c, dir);
  const auto loaded = vidcls::load_checkpoint(ckpt);
  const vidcls::ClipSpec &spec = loaded.info.clip;

  // Training's evaluation path, as vidcls-eval cuts a decoded video (all windows, centre crop).
  const auto dv = train::decode_video(video);
  const auto sampled = train::sampled_frame_indices(
      dv.pts_ns.data(), static_cast<int64_t>(dv.pts_ns.size()), spec, dv.fps);
  const auto windows = train::eval_windows(static_cast<int64_t>(sampled.size()), spec, 0);
  ASSERT_GE(windows.size(), 2u);
  std::vector<torch::Tensor> eval_clips;
  for (const auto &w : windows) {
    const auto idx =
        torch::tensor(train::window_frame_indices(sampled, w, spec.frames), torch::kInt64);
    eval_clips.push_back(train::eval_crops(dv.frames.index_select(0, idx), spec, 1).at(0));
  }
  torch::Tensor eval_probs;
  {
    torch::NoGradGuard no_grad;
    eval_probs = torch::softmax(loaded.model->forward(torch::stack(eval_clips)), 1);
  }

  // The live pipeline.
  PipelineRun live;
  run_pipeline(video, ckpt, c.eos_policy, live);
  if (HasFatalFailure()) return;
  const auto &got = live.clips;
  const auto &run = live.run;
  ASSERT_TRUE(windows.back().partial) << "the case must end in a short clip";

  ASSERT_EQ(got.clips.size(), windows.size());
  ASSERT_EQ(run.messages.size(), windows.size());
  for (size_t k = 0; k < windows.size(); ++k) {
    SCOPED_TRACE("clip " + std::to_string(k));
    const auto &p = got.clips[k];
    EXPECT_EQ(p.index, windows[k].index);
    EXPECT_EQ(p.first_sample, windows[k].first_sample);
    EXPECT_EQ(p.partial, windows[k].partial);
    torch::Tensor clip = p.tensor;
    if (p.partial && std::string(c.eos_policy) == "partial") {
      // The short clip as it is, made whole by the inference element as training makes it.
      ASSERT_EQ(static_cast<uint64_t>(p.tensor.size(0)), windows[k].n_frames);
      clip = vidcls::complete_clip(p.tensor, spec.frames);
    }
    ASSERT_TRUE(clip.sizes().equals(eval_clips[k].sizes()));
    EXPECT_TRUE(torch::equal(clip, eval_clips[k]))
        << "max |difference| " << (clip - eval_clips[k]).abs().max().item<float>();

    const GstStructure *m = run.messages[k];
    guint64 index = 0;
    ASSERT_TRUE(gst_structure_get_uint64(m, "clip-index", &index));
    EXPECT_EQ(index, windows[k].index);
    const GValue *ids = gst_structure_get_value(m, "class-ids");
    const GValue *scores = gst_structure_get_value(m, "scores");
    ASSERT_EQ(gst_value_array_get_size(ids), 2u);
    for (guint i = 0; i < 2; ++i) {
      const int id = g_value_get_int(gst_value_array_get_value(ids, i));
      const double score = g_value_get_double(gst_value_array_get_value(scores, i));
      EXPECT_NEAR(score, eval_probs[static_cast<int64_t>(k)][id].item<double>(), 1e-6);
    }
  }

  // vidcls-eval itself, on the dataset folder: its per-clip scores for this video are the
  // pipeline's. (MSR layout: the tool takes a dataset, and every layout decodes the same way.)
  if (c.layout != train::SynthLayout::kMsr) return;
  const char *eval_tool = std::getenv("VIDCLS_EVAL");
  ASSERT_NE(eval_tool, nullptr) << "VIDCLS_EVAL is not set (run through meson test)";
  const fs::path json_path = dir / "eval" / "result.json";
  const std::string cmd = std::string(eval_tool) + " --model '" + ckpt + "' --data '" +
                          data.string() + "' --side all --views 0x1 -q --json '" +
                          json_path.string() + "' > '" + (dir / "eval.log").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "vidcls-eval failed: see " << dir / "eval.log";
  const auto j = nlohmann::json::parse(std::ifstream(json_path));
  const nlohmann::json *entry = nullptr;
  for (const auto &v : j.at("videos"))
    if (fs::path(v.at("path").get<std::string>()) == fs::path(video)) entry = &v;
  ASSERT_NE(entry, nullptr) << video << " is not in vidcls-eval's JSON";
  const auto &clips = entry->at("clips");
  ASSERT_EQ(clips.size(), windows.size());
  for (size_t k = 0; k < windows.size(); ++k) {
    const GstStructure *m = run.messages[k];
    double top_score = 0;
    ASSERT_TRUE(gst_structure_get_double(m, "score", &top_score));
    EXPECT_EQ(clips[k].at("label").get<std::string>(), gst_structure_get_string(m, "label"));
    EXPECT_NEAR(clips[k].at("score").get<double>(), top_score, 1e-6) << "clip " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Videos, TrainServeParity,
    ::testing::Values(Case{"mjpeg_avi_stride2", train::SynthLayout::kMsr, 2, 0, 8, "pad"},
                      Case{"mjpeg_avi_partial", train::SynthLayout::kMsr, 2, 0, 8, "partial"},
                      Case{"mpeg4_mp4_overlapping", train::SynthLayout::kKinetics400, 1, 0, 3,
                           "pad"},
                      Case{"vp8_webm_rate10", train::SynthLayout::kFolder, 1, 10.0, 5, "partial"}),
    [](const ::testing::TestParamInfo<Case> &info) { return std::string(info.param.name); });

// Dense evaluation views (hop of one tubelet, every window) of a ViViT on a tubelet-local input:
// vidcls-eval computes each distinct tubelet once, and the logits are the whole views' forward.
TEST(DenseViews, EvaluationSharesTubeletsAndGivesTheWholeViewsLogits) {
  const fs::path dir = scratch() / "dense";
  fs::create_directories(dir);
  const auto items = write_videos(train::SynthLayout::kMsr, dir / "data");
  const auto video =
      std::find_if(items.begin(), items.end(), [](const auto &i) { return !i.corrupt; });
  ASSERT_NE(video, items.end());
  for (const std::string preset : {"vivit-xs", "mini-vivit-xs"}) {
    torch::manual_seed(5);
    auto cfg = vidcls::preset_config(preset, 2);
    cfg["input_transform"] = "tubelet-normal-flow";
    auto model = vidcls::make_model(vidcls::find_preset(preset).architecture, cfg);
    model->eval();
    auto spec = vidcls::find_preset(preset).clip;
    spec.hop = 2;
    const auto frames = train::decoded_frames((dir / "data" / video->file).string(), spec);
    for (int spatial : {1, 3}) {
      const auto views = train::video_views(frames, spec, {0, spatial});
      int64_t computed = 0;
      torch::NoGradGuard no_grad;
      const auto shared = train::view_logits(*model, frames, views, torch::kCPU, &computed);
      const auto whole = model->forward(views.clips);
      EXPECT_LT((shared - whole).abs().max().item<float>(), 1e-5f) << preset << " x" << spatial;
      const int64_t clips = static_cast<int64_t>(views.windows.size());
      EXPECT_GE(clips, 8);
      // the windows' tubelets: 4 for the first clip, then one per clip (the padded end clip
      // repeats its last frame), for each crop
      EXPECT_LT(computed, clips * spatial * 2) << "of " << clips * spatial * 4;
    }
  }
}

// The trainer chooses best.safetensors on clips cut from the clip cache, whose validation and test
// frames are stored at the spec's crop short side (cache_options_for): such a clip is the
// pipeline's up to the rounding of the stored pixels, at most 0.5 / 255 / std per value.
TEST(CacheParity, EvaluationClipsFromTheCacheAreThePipelinesUpToRounding) {
  const fs::path dir = scratch() / "cache";
  fs::create_directories(dir);
  const Case c{"cache", train::SynthLayout::kMsr, 2, 0, 8, "pad"};
  const fs::path data = dir / "data";
  ASSERT_FALSE(write_videos(c.layout, data).empty());
  const std::string ckpt = write_checkpoint(c, dir);
  const auto loaded = vidcls::load_checkpoint(ckpt);
  const vidcls::ClipSpec &spec = loaded.info.clip;
  train::build_cache(data.string(), (dir / "cache").string(), train::cache_options_for(spec));
  const auto cache = train::ClipCache::open((dir / "cache").string());
  const double bound = 0.5 / (255.0 * *std::min_element(spec.std.begin(), spec.std.end())) + 1e-5;
  ASSERT_FALSE(cache.indices("test").empty());
  for (size_t i : cache.indices("test")) {
    SCOPED_TRACE(cache.item(i).path);
    const auto views = train::video_views(train::cached_frames(cache, i, spec), spec, {0, 1});
    PipelineRun live;
    run_pipeline(cache.item(i).path, ckpt, "pad", live);
    if (HasFatalFailure()) return;
    ASSERT_EQ(live.clips.clips.size(), views.windows.size());
    double worst = 0;
    for (size_t k = 0; k < views.windows.size(); ++k) {
      const auto d = (live.clips.clips[k].tensor - views.clips[static_cast<int64_t>(k)]).abs();
      worst = std::max(worst, d.max().item<double>());
    }
    std::printf("%s: max |cache clip - pipeline clip| %.6f (bound %.6f)\n",
                fs::path(cache.item(i).path).filename().c_str(), worst, bound);
    EXPECT_LE(worst, bound);
    EXPECT_GT(worst, 0) << "stored pixels are rounded: some value should differ";
  }
}

// ------------------------------------------------------------------ per-person clips

// One person's clip as vidclsclipper handed it to vividinfer.
struct PersonClip {
  int64_t object_id = -1;
  uint64_t index = 0, first_sample = 0;
  bool partial = false;
  torch::Tensor tensor;
};

struct PersonClips {
  std::mutex lock;
  std::vector<PersonClip> clips;
};

void collect_person_metas(PersonClips &c, GstBuffer *buf) {
  for (const GstVidclsClipMeta *m : vidcls_test::find_clip_metas(buf)) {
    std::lock_guard<std::mutex> g(c.lock);
    c.clips.push_back({m->record->object_id, m->record->index, m->record->first_sample,
                       m->record->partial, m->clip->to(torch::kCPU).clone()});
  }
}

GstPadProbeReturn on_person_sink(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto &c = *static_cast<PersonClips *>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    collect_person_metas(c, GST_PAD_PROBE_INFO_BUFFER(info));
  } else if (GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info)) {
    const GstStructure *s = gst_event_get_structure(ev);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_CUSTOM_DOWNSTREAM && s != nullptr &&
        gst_structure_has_name(s, "vidcls-eos-clip")) {
      if (const GValue *v = gst_structure_get_value(s, "carrier"))
        collect_person_metas(c, gst_value_get_buffer(v));
    }
  }
  return GST_PAD_PROBE_OK;
}

// Per-person clips of an ava dataset (vidcls-synth --layout ava): the pipeline, with the boxes
// replayed from the same CSV that training reads (vidclsroireplay format=ava), cuts every person's
// clips bit for bit as training's evaluation path does (decoded_person_frames, what vidcls-eval
// runs), its scores are vidcls-eval's, and the clip cache's person crops give the same clips up
// to the rounding of stored pixels.
TEST(PersonParity, EachPersonsClipsAreTheEvaluationPathsAndTheCachesUpToRounding) {
  const fs::path dir = scratch() / "people";
  fs::create_directories(dir);
  train::SynthOptions so;
  so.layout = train::SynthLayout::kAva;
  so.out = (dir / "data").string();
  so.classes = 2;
  so.videos_per_class = 4;
  so.frames = 45;
  so.size = 70;
  so.fps = 15;
  so.seed = 11;
  const auto items = train::write_synth_dataset(so);
  const Case c{"people", train::SynthLayout::kAva, 2, 0, 8, "pad"};
  const std::string ckpt = write_checkpoint(c, dir);
  const auto loaded = vidcls::load_checkpoint(ckpt);
  const vidcls::ClipSpec &spec = loaded.info.clip;
  const auto ds = train::read_dataset(so.out);
  ASSERT_EQ(ds.layout, "ava");
  ASSERT_FALSE(ds.test.empty());
  // The first video of val.csv (the test side) and its people.
  const std::string video = ds.test.front().path;
  const std::string id = fs::path(video).stem().string();
  std::vector<train::VideoItem> people;
  for (const auto &item : ds.test)
    if (item.path == video) people.push_back(item);
  ASSERT_GE(people.size(), 2u);

  const std::string desc = "filesrc location=\"" + video +
                           "\" ! decodebin ! vidclsroireplay format=ava location=\"" + so.out +
                           "/val.csv\" video-id=" + id +
                           " max-gap=1500000000 ! vidclsclipper inference-region=roi-list "
                           "eos-policy=pad ! vividinfer name=infer mode=sync top-k=2 model=\"" +
                           ckpt + "\" ! fakesink";
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(desc.c_str(), &err);
  ASSERT_EQ(err, nullptr) << err->message;
  GstElement *infer = gst_bin_get_by_name(GST_BIN(pipeline), "infer");
  GstPad *sink = gst_element_get_static_pad(infer, "sink");
  PersonClips live;
  gst_pad_add_probe(
      sink,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      on_person_sink, &live, nullptr);
  vidcls_test::RunResult run;
  vidcls_test::run_pipeline(pipeline, run, "vidcls-classification");
  gst_object_unref(sink);
  gst_object_unref(infer);
  gst_object_unref(pipeline);
  ASSERT_TRUE(run.eos) << run.error << "\n" << run.debug;

  train::build_cache(so.out, (dir / "cache").string(), train::cache_options_for(spec));
  const auto cache = train::ClipCache::open((dir / "cache").string());
  const double bound = 0.5 / (255.0 * *std::min_element(spec.std.begin(), spec.std.end())) + 1e-5;
  size_t messages = 0;
  for (const auto &person : people) {
    SCOPED_TRACE(person.id);
    const auto frames = train::decoded_person_frames(person, spec);
    const auto views = train::video_views(frames, spec, {0, 1});
    std::vector<const PersonClip *> got;
    for (const auto &p : live.clips)
      if (p.object_id == person.object_id) got.push_back(&p);
    ASSERT_EQ(got.size(), views.windows.size());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k]->index, views.windows[k].index);
      EXPECT_EQ(got[k]->first_sample, views.windows[k].first_sample);
      EXPECT_EQ(got[k]->partial, views.windows[k].partial);
      EXPECT_TRUE(torch::equal(got[k]->tensor, views.clips[static_cast<int64_t>(k)]))
          << "clip " << k << ": max |difference| "
          << (got[k]->tensor - views.clips[static_cast<int64_t>(k)]).abs().max().item<float>();
    }
    // the cache's crops of the person (test side: stored at the spec's short side)
    std::optional<size_t> cached;
    for (size_t i : cache.indices("test"))
      if (cache.item(i).key() == person.key()) cached = i;
    ASSERT_TRUE(cached.has_value());
    const auto from_cache =
        train::video_views(train::cached_frames(cache, *cached, spec), spec, {0, 1});
    ASSERT_EQ(from_cache.windows.size(), views.windows.size());
    const double worst = (from_cache.clips - views.clips).abs().max().item<double>();
    std::printf("%s: max |cache clip - pipeline clip| %.6f (bound %.6f)\n", person.id.c_str(),
                worst, bound);
    EXPECT_LE(worst, bound);
    messages += got.size();
  }
  EXPECT_EQ(run.messages.size(), messages);

  // vidcls-eval on the dataset folder: per person, the pipeline's scores
  const char *eval_tool = std::getenv("VIDCLS_EVAL");
  ASSERT_NE(eval_tool, nullptr) << "VIDCLS_EVAL is not set (run through meson test)";
  const fs::path json_path = dir / "eval.json";
  const std::string cmd = std::string(eval_tool) + " --model '" + ckpt + "' --data '" + so.out +
                          "' --views 0x1 -q --json '" + json_path.string() + "' > '" +
                          (dir / "eval.log").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "vidcls-eval failed: see " << dir / "eval.log";
  const auto j = nlohmann::json::parse(std::ifstream(json_path));
  std::map<std::string, std::vector<double>> eval_scores;
  for (const auto &v : j.at("videos")) {
    for (const auto &clip : v.at("clips"))
      eval_scores[v.at("path").get<std::string>()].push_back(clip.at("score").get<double>());
  }
  std::map<gint64, std::vector<double>> live_scores;
  for (const GstStructure *m : run.messages) {
    gint64 object = -1;
    double score = 0;
    ASSERT_TRUE(gst_structure_get_int64(m, "object-id", &object));
    ASSERT_TRUE(gst_structure_get_double(m, "score", &score));
    live_scores[object].push_back(score);
  }
  for (const auto &person : people) {
    SCOPED_TRACE(person.id);
    const auto &want = eval_scores[person.key()];
    const auto &have = live_scores[person.object_id];
    ASSERT_EQ(have.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(have[k], want[k], 1e-6) << "clip " << k;
  }
}

}  // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new vidcls_test::GstEnvironment);
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  fs::remove_all(scratch(), ec);
  return rc;
}
