// The feature ring on its own: overlapping clips of a ResNet + Temporal ViT (random weights) give
// the logits of the whole clips, with each sampled frame (or motion pair) through the backbone
// once, for every backbone input; a new epoch, another stream and a reset start over; tracked
// objects of one stream keep rings of their own. The same for ViViT and Mini-ViViT, whose tokens
// are tubelets: each through the spatial encoder once at hops that are multiples of the tubelet,
// every clip's own at other hops, and whole clips for an input transform that looks at the whole
// clip or an element with reuse off.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "engine/feature_ring.h"
#include "vidcls/clip_sampling.h"
#include "vidcls/registry.h"

namespace {

using vidcls::engine::FeatureRing;
using vidcls::engine::FeatureRunner;
using vidcls::engine::InferenceModel;
using vidcls::engine::Job;
using vidcls::engine::WholeClipRunner;

InferenceModel resnet_model(const std::string &input) {
  torch::manual_seed(3);
  auto cfg = vidcls::preset_config("resnet18-tvit-xs", 4);
  cfg["input"] = input;
  InferenceModel m;
  m.model = vidcls::make_model("resnet-tvit", cfg);
  m.model->eval();
  m.info.labels = {"a", "b", "c", "d"};
  return m;
}

// Clip `index` of a stream of sampled frames, hop `hop`: frames index*hop ... + T - 1.
Job clip_of(const torch::Tensor &frames, int64_t T, int64_t hop, uint64_t index,
            const std::shared_ptr<FeatureRing> &ring, const std::string &stream = "s",
            uint64_t epoch = 0) {
  Job j;
  j.clip = frames.narrow(0, index * hop, T);
  j.record.stream = stream;
  j.record.epoch = epoch;
  j.record.index = index;
  j.record.first_sample = index * hop;
  j.record.n_frames = T;
  j.stream = ring;
  return j;
}

class FeatureRingTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FeatureRingTest, OverlappingClipsGiveTheWholeClipsLogitsWithEachFrameOnce) {
  torch::NoGradGuard no_grad;
  const auto m = resnet_model(GetParam());
  const auto shape = m.model->input_shape();
  const int64_t T = shape.frames, hop = 2, clips = 5;
  torch::manual_seed(4);
  const auto frames =
      torch::randn({(clips - 1) * hop + T, shape.channels, shape.height, shape.width});
  vidcls::engine::FeatureCounters counters;
  auto ring = std::make_shared<FeatureRing>(&counters);
  FeatureRunner runner;
  WholeClipRunner whole;
  for (uint64_t i = 0; i < clips; ++i) {
    const std::vector<Job> jobs = {clip_of(frames, T, hop, i, ring)};
    const auto reused = runner.logits(m, jobs);
    const auto recomputed = whole.logits(m, jobs);
    EXPECT_TRUE(torch::allclose(reused, recomputed, 1e-5, 1e-5))
        << "clip " << i << ": max difference " << (reused - recomputed).abs().max().item<float>();
  }
  // rgb: each of the sampled frames once; motion inputs: each consecutive pair once.
  const int64_t context = m.model->per_frame_backbone()->frame_context();
  EXPECT_EQ(counters.computed.load(), static_cast<uint64_t>(frames.size(0) - context))
      << "recomputing would run " << clips * (T - context);
}

INSTANTIATE_TEST_SUITE_P(Inputs, FeatureRingTest, ::testing::Values("rgb", "motion", "two-stream"));

TEST(FeatureRing, ANewEpochAnotherStreamOrAResetStartsOver) {
  torch::NoGradGuard no_grad;
  const auto m = resnet_model("rgb");
  const auto shape = m.model->input_shape();
  const int64_t T = shape.frames;
  torch::manual_seed(5);
  const auto a = torch::randn({T + 1, shape.channels, shape.height, shape.width});
  const auto b = torch::randn({T + 1, shape.channels, shape.height, shape.width});
  vidcls::engine::FeatureCounters counters;
  auto ring = std::make_shared<FeatureRing>(&counters);
  FeatureRunner runner;
  WholeClipRunner whole;
  runner.logits(m, {clip_of(a, T, 1, 0, ring)});
  EXPECT_EQ(counters.computed.load(), static_cast<uint64_t>(T));
  // The same sample indices after a flush (a new epoch) hold other frames: all are run again.
  const Job after_flush = clip_of(b, T, 1, 0, ring, "s", 1);
  EXPECT_TRUE(
      torch::allclose(runner.logits(m, {after_flush}), whole.logits(m, {after_flush}), 1e-5, 1e-5));
  EXPECT_EQ(counters.computed.load(), static_cast<uint64_t>(2 * T));
  const Job other_stream = clip_of(a, T, 1, 0, ring, "t", 1);
  EXPECT_TRUE(torch::allclose(runner.logits(m, {other_stream}), whole.logits(m, {other_stream}),
                              1e-5, 1e-5));
  EXPECT_EQ(counters.computed.load(), static_cast<uint64_t>(3 * T));
  ring->request_reset();  // a model swap: features of the old backbone are no use
  runner.logits(m, {clip_of(a, T, 1, 0, ring, "t", 1)});
  EXPECT_EQ(counters.computed.load(), static_cast<uint64_t>(4 * T));
}

TEST(FeatureRing, ABatchOfTwoStreamsKeepsTheirFeaturesApart) {
  torch::NoGradGuard no_grad;
  const auto m = resnet_model("motion");
  const auto shape = m.model->input_shape();
  const int64_t T = shape.frames;
  torch::manual_seed(6);
  const auto a = torch::randn({T + 2, shape.channels, shape.height, shape.width});
  const auto b = torch::randn({T + 2, shape.channels, shape.height, shape.width});
  vidcls::engine::FeatureCounters ca, cb;
  auto ra = std::make_shared<FeatureRing>(&ca), rb = std::make_shared<FeatureRing>(&cb);
  FeatureRunner runner;
  WholeClipRunner whole;
  for (uint64_t i = 0; i < 3; ++i) {
    // Both streams use the same sample indices: only the ring tells their features apart.
    const std::vector<Job> jobs = {clip_of(a, T, 1, i, ra, "a"), clip_of(b, T, 1, i, rb, "b")};
    EXPECT_TRUE(torch::allclose(runner.logits(m, jobs), whole.logits(m, jobs), 1e-5, 1e-5));
  }
  EXPECT_EQ(ca.computed.load(), static_cast<uint64_t>(T + 1));
  EXPECT_EQ(cb.computed.load(), static_cast<uint64_t>(T + 1));
}

TEST(FeatureRing, TrackedObjectsOfOneStreamKeepRingsOfTheirOwn) {
  torch::NoGradGuard no_grad;
  const auto m = resnet_model("rgb");
  const auto shape = m.model->input_shape();
  const int64_t T = shape.frames, clips = 3;
  torch::manual_seed(7);
  // Two people in one stream: their crops differ, their tracks' frame indices are the same and
  // their epochs are their own.
  const auto a = torch::randn({T + clips - 1, shape.channels, shape.height, shape.width});
  const auto b = torch::randn({T + clips - 1, shape.channels, shape.height, shape.width});
  vidcls::engine::FeatureCounters counters;
  auto ring = std::make_shared<FeatureRing>(&counters);
  FeatureRunner runner;
  WholeClipRunner whole;
  auto object_clip = [&](const torch::Tensor &frames, int64_t id, uint64_t epoch, uint64_t i) {
    Job j = clip_of(frames, T, 1, i, ring, "s", epoch);
    j.record.object_id = id;
    return j;
  };
  for (uint64_t i = 0; i < clips; ++i) {
    // one batch with both people's clips (the clipper sends them on the same frame)
    const std::vector<Job> jobs = {object_clip(a, 7, 3, i), object_clip(b, 9, 4, i)};
    EXPECT_TRUE(torch::allclose(runner.logits(m, jobs), whole.logits(m, jobs), 1e-5, 1e-5))
        << "clip " << i;
  }
  EXPECT_EQ(counters.computed.load(), static_cast<uint64_t>(2 * (T + clips - 1)))
      << "each person's frames once, neither taking the other's";
  EXPECT_EQ(ring->tracks(), 2u);
  // A track's leftover clip at its end frees its ring; the other person's stays.
  Job last = object_clip(a, 7, 3, 0);
  last.clip = a.narrow(0, clips, T - 1);
  last.record.index = clips;
  last.record.first_sample = clips;
  last.record.n_frames = T - 1;
  last.record.partial = true;
  EXPECT_TRUE(torch::allclose(runner.logits(m, {last}), whole.logits(m, {last}), 1e-5, 1e-5));
  EXPECT_EQ(counters.computed.load(), static_cast<uint64_t>(2 * (T + clips - 1)))
      << "the leftover clip's frames were all in person 7's ring";
  EXPECT_EQ(ring->tracks(), 1u);
}

TEST(FeatureRing, ObjectRingsAreBounded) {
  torch::NoGradGuard no_grad;
  const auto m = resnet_model("rgb");
  const auto shape = m.model->input_shape();
  const int64_t T = shape.frames;
  torch::manual_seed(8);
  const auto frames = torch::randn({T, shape.channels, shape.height, shape.width});
  vidcls::engine::FeatureCounters counters;
  auto ring = std::make_shared<FeatureRing>(&counters);
  FeatureRunner runner;
  // ids that change with every clip (a tracker that loses everyone): rings stay bounded
  for (int64_t id = 0; id < static_cast<int64_t>(FeatureRing::kMaxTracks) + 20; ++id) {
    Job j = clip_of(frames, T, 1, 0, ring, "s", static_cast<uint64_t>(id));
    j.record.object_id = id;
    runner.logits(m, {j});
  }
  EXPECT_EQ(ring->tracks(), FeatureRing::kMaxTracks);
}

// A ViViT preset with random weights and the given input transform.
InferenceModel vivit_model(const std::string &preset, const std::string &input_transform) {
  torch::manual_seed(11);
  auto cfg = vidcls::preset_config(preset, 4);
  cfg["input_transform"] = input_transform;
  InferenceModel m;
  m.model = vidcls::make_model(preset.rfind("mini", 0) == 0 ? "mini-vivit" : "vivit", cfg);
  m.model->eval();
  m.info.labels = {"a", "b", "c", "d"};
  return m;
}

// Largest absolute difference between two logits tensors.
float max_difference(const torch::Tensor &a, const torch::Tensor &b) {
  return (a - b).abs().max().item<float>();
}

struct TubeletCase {
  std::string preset, input;
  int64_t hop;
};

class TubeletRingTest : public ::testing::TestWithParam<TubeletCase> {};

TEST_P(TubeletRingTest, OverlappingClipsGiveTheWholeClipsLogits) {
  torch::NoGradGuard no_grad;
  const auto &c = GetParam();
  const auto m = vivit_model(c.preset, c.input);
  const auto shape = m.model->input_shape();
  const int64_t T = shape.frames, hop = c.hop, clips = 6, tubelet = 2, partial = 5;
  torch::manual_seed(12);
  // the clips and a partial clip of 5 frames after them (the end of a stream)
  const auto frames = torch::randn({std::max((clips - 1) * hop + T, clips * hop + partial),
                                    shape.channels, shape.height, shape.width});
  vidcls::engine::FeatureCounters counters;
  auto ring = std::make_shared<FeatureRing>(&counters);
  FeatureRunner runner;
  WholeClipRunner whole;
  std::set<std::pair<int64_t, int64_t>> windows;  // first and last sampled frame of each tubelet
  for (int64_t i = 0; i <= clips; ++i) {
    const int64_t n = i < clips ? T : partial;
    Job job = clip_of(frames, n, hop, i, ring);
    job.record.partial = i == clips;
    const uint64_t before = counters.computed.load();
    const auto reused = runner.logits(m, {job});
    const auto recomputed = whole.logits(m, {job});
    EXPECT_LT(max_difference(reused, recomputed), 1e-5f) << "clip " << i;
    const auto rows = vidcls::clip_rows(n, T);
    for (int64_t k = 0; k < T; k += tubelet)
      windows.emplace(i * hop + rows[k], i * hop + rows[k + 1]);
    if (hop == tubelet && i > 0 && i < clips) {
      EXPECT_EQ(counters.computed.load() - before, 1u) << "clip " << i << ": one new tubelet";
    }
  }
  // Each distinct tubelet once: at hops that are multiples of the tubelet the clips share them;
  // at other hops a clip shares only those that happen to line up with an earlier clip's.
  EXPECT_EQ(counters.computed.load(), windows.size());
  EXPECT_EQ(counters.computed.load() + counters.reused.load(),
            static_cast<uint64_t>((clips + 1) * T / tubelet));
}

INSTANTIATE_TEST_SUITE_P(Hops, TubeletRingTest,
                         ::testing::Values(TubeletCase{"vivit-xs", "tubelet-normal-flow", 2},
                                           TubeletCase{"vivit-xs", "tubelet-normal-flow", 4},
                                           TubeletCase{"vivit-xs", "tubelet-normal-flow", 8},
                                           TubeletCase{"vivit-xs", "tubelet-normal-flow", 3},
                                           TubeletCase{"vivit-xs", "none", 2},
                                           TubeletCase{"vivit-xs", "none", 3},
                                           TubeletCase{"mini-vivit-xs", "tubelet-normal-flow", 2},
                                           TubeletCase{"mini-vivit-xs", "tubelet-normal-flow", 4},
                                           TubeletCase{"mini-vivit-xs", "none", 8}),
                         [](const auto &info) {
                           std::string name = info.param.preset + "_" + info.param.input + "_hop" +
                                              std::to_string(info.param.hop);
                           for (auto &ch : name)
                             if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST(TubeletRing, AClipWideInputTransformOrReuseOffRunsWholeClips) {
  torch::NoGradGuard no_grad;
  const auto flow = vivit_model("vivit-xs", "normal-flow");
  EXPECT_NE(flow.model->token_sequence()->token_reuse_blocker().find("whole clip"),
            std::string::npos);
  const auto local = vivit_model("vivit-xs", "tubelet-normal-flow");
  const auto shape = flow.model->input_shape();
  const int64_t T = shape.frames, hop = 2, clips = 3;
  torch::manual_seed(13);
  const auto frames =
      torch::randn({(clips - 1) * hop + T, shape.channels, shape.height, shape.width});
  vidcls::engine::FeatureCounters on, off;
  auto reusing = std::make_shared<FeatureRing>(&on),
       recomputing = std::make_shared<FeatureRing>(&off);
  recomputing->reuse = false;
  FeatureRunner runner;
  WholeClipRunner whole;
  for (uint64_t i = 0; i < clips; ++i) {
    const std::vector<Job> jobs = {clip_of(frames, T, hop, i, reusing, "a"),
                                   clip_of(frames, T, hop, i, recomputing, "b")};
    // normal-flow: the tubelets of a clip depend on the whole clip; both run whole, exactly
    EXPECT_TRUE(torch::equal(runner.logits(flow, jobs), whole.logits(flow, jobs)));
    // one batch, one element reusing and one not: each row its clip's logits
    const auto mixed = runner.logits(local, jobs), reference = whole.logits(local, jobs);
    EXPECT_LT(max_difference(mixed, reference), 1e-5f) << "clip " << i;
    EXPECT_TRUE(torch::equal(mixed[1], whole.logits(local, {jobs[1]})[0]))
        << "the element with reuse off ran whole";
  }
  EXPECT_EQ(off.computed.load(), static_cast<uint64_t>(2 * clips * T / 2));
  EXPECT_EQ(off.reused.load(), 0u);
  // normal-flow: every tubelet of every clip; tubelet-normal-flow: 4, then 1 per clip
  EXPECT_EQ(on.computed.load(), static_cast<uint64_t>(clips * T / 2 + T / 2 + clips - 1));
  EXPECT_EQ(on.reused.load(), static_cast<uint64_t>((clips - 1) * (T / 2 - 1)));
}

TEST(TubeletRing, ABatchOfTwoStreamsRunsTheirNewTubeletsTogether) {
  torch::NoGradGuard no_grad;
  const auto m = vivit_model("mini-vivit-xs", "tubelet-normal-flow");
  const auto shape = m.model->input_shape();
  const int64_t T = shape.frames, hop = 2, clips = 4;
  torch::manual_seed(15);
  const auto a = torch::randn({(clips - 1) * hop + T, shape.channels, shape.height, shape.width});
  const auto b = torch::randn_like(a);
  vidcls::engine::FeatureCounters ca, cb;
  auto ra = std::make_shared<FeatureRing>(&ca), rb = std::make_shared<FeatureRing>(&cb);
  FeatureRunner runner;
  WholeClipRunner whole;
  for (uint64_t i = 0; i < clips; ++i) {
    // the same sample indices in both streams: only their rings tell the tubelets apart
    const std::vector<Job> jobs = {clip_of(a, T, hop, i, ra, "a"), clip_of(b, T, hop, i, rb, "b")};
    EXPECT_LT(max_difference(runner.logits(m, jobs), whole.logits(m, jobs)), 1e-5f) << i;
  }
  for (const auto *c : {&ca, &cb}) {
    EXPECT_EQ(c->computed.load(), static_cast<uint64_t>(T / 2 + clips - 1));
    EXPECT_EQ(c->reused.load(), static_cast<uint64_t>((clips - 1) * (T / 2 - 1)));
  }
}

TEST(TubeletRing, AnotherModelStartsOverWithoutAReset) {
  torch::NoGradGuard no_grad;
  auto first = vivit_model("vivit-xs", "none");
  auto second = vivit_model("vivit-xs", "none");
  second.model->named_parameters()["tubelet.weight"].mul_(-1.0);
  first.generation = 1;
  second.generation = 2;  // a swap lands between two batches, its reset perhaps later
  const auto shape = first.model->input_shape();
  const int64_t T = shape.frames;
  torch::manual_seed(14);
  const auto frames = torch::randn({T + 2, shape.channels, shape.height, shape.width});
  vidcls::engine::FeatureCounters counters;
  auto ring = std::make_shared<FeatureRing>(&counters);
  FeatureRunner runner;
  WholeClipRunner whole;
  runner.logits(first, {clip_of(frames, T, 2, 0, ring)});
  const Job next = clip_of(frames, T, 2, 1, ring);
  EXPECT_LT(max_difference(runner.logits(second, {next}), whole.logits(second, {next})), 1e-5f);
  EXPECT_EQ(counters.computed.load(), static_cast<uint64_t>(T));
}

}  // namespace
