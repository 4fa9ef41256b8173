// The per-frame feature ring on its own: overlapping clips of a ResNet + Temporal ViT (random
// weights) give the logits of the whole clips, with each sampled frame (or motion pair) through
// the backbone once, for every backbone input; a new epoch, another stream and a reset start over;
// tracked objects of one stream keep rings of their own.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "engine/feature_ring.h"
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
  std::atomic<uint64_t> computed{0};
  auto ring = std::make_shared<FeatureRing>(&computed);
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
  EXPECT_EQ(computed.load(), static_cast<uint64_t>(frames.size(0) - context))
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
  std::atomic<uint64_t> computed{0};
  auto ring = std::make_shared<FeatureRing>(&computed);
  FeatureRunner runner;
  WholeClipRunner whole;
  runner.logits(m, {clip_of(a, T, 1, 0, ring)});
  EXPECT_EQ(computed.load(), static_cast<uint64_t>(T));
  // The same sample indices after a flush (a new epoch) hold other frames: all are run again.
  const Job after_flush = clip_of(b, T, 1, 0, ring, "s", 1);
  EXPECT_TRUE(
      torch::allclose(runner.logits(m, {after_flush}), whole.logits(m, {after_flush}), 1e-5, 1e-5));
  EXPECT_EQ(computed.load(), static_cast<uint64_t>(2 * T));
  const Job other_stream = clip_of(a, T, 1, 0, ring, "t", 1);
  EXPECT_TRUE(torch::allclose(runner.logits(m, {other_stream}), whole.logits(m, {other_stream}),
                              1e-5, 1e-5));
  EXPECT_EQ(computed.load(), static_cast<uint64_t>(3 * T));
  ring->request_reset();  // a model swap: features of the old backbone are no use
  runner.logits(m, {clip_of(a, T, 1, 0, ring, "t", 1)});
  EXPECT_EQ(computed.load(), static_cast<uint64_t>(4 * T));
}

TEST(FeatureRing, ABatchOfTwoStreamsKeepsTheirFeaturesApart) {
  torch::NoGradGuard no_grad;
  const auto m = resnet_model("motion");
  const auto shape = m.model->input_shape();
  const int64_t T = shape.frames;
  torch::manual_seed(6);
  const auto a = torch::randn({T + 2, shape.channels, shape.height, shape.width});
  const auto b = torch::randn({T + 2, shape.channels, shape.height, shape.width});
  std::atomic<uint64_t> ca{0}, cb{0};
  auto ra = std::make_shared<FeatureRing>(&ca), rb = std::make_shared<FeatureRing>(&cb);
  FeatureRunner runner;
  WholeClipRunner whole;
  for (uint64_t i = 0; i < 3; ++i) {
    // Both streams use the same sample indices: only the ring tells their features apart.
    const std::vector<Job> jobs = {clip_of(a, T, 1, i, ra, "a"), clip_of(b, T, 1, i, rb, "b")};
    EXPECT_TRUE(torch::allclose(runner.logits(m, jobs), whole.logits(m, jobs), 1e-5, 1e-5));
  }
  EXPECT_EQ(ca.load(), static_cast<uint64_t>(T + 1));
  EXPECT_EQ(cb.load(), static_cast<uint64_t>(T + 1));
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
  std::atomic<uint64_t> computed{0};
  auto ring = std::make_shared<FeatureRing>(&computed);
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
  EXPECT_EQ(computed.load(), static_cast<uint64_t>(2 * (T + clips - 1)))
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
  EXPECT_EQ(computed.load(), static_cast<uint64_t>(2 * (T + clips - 1)))
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
  std::atomic<uint64_t> computed{0};
  auto ring = std::make_shared<FeatureRing>(&computed);
  FeatureRunner runner;
  // ids that change with every clip (a tracker that loses everyone): rings stay bounded
  for (int64_t id = 0; id < static_cast<int64_t>(FeatureRing::kMaxTracks) + 20; ++id) {
    Job j = clip_of(frames, T, 1, 0, ring, "s", static_cast<uint64_t>(id));
    j.record.object_id = id;
    runner.logits(m, {j});
  }
  EXPECT_EQ(ring->tracks(), FeatureRing::kMaxTracks);
}

}  // namespace
