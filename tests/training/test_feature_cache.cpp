// Training on cached backbone features: for every input of ResNet + Temporal ViT, the rows the
// feature cache gives a training or evaluation window are the features, and give the scores,
// that forward() computes on that window's clip (the padded end-of-video window included).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include <torch/utils.h>

#include "vidcls/registry.h"
#include "vidcls/resnet_tvit.h"
#include "vidcls/train/feature_cache.h"
#include "vidcls/train/transforms.h"

namespace {

class FeatureCache : public ::testing::TestWithParam<std::string> {};

TEST_P(FeatureCache, CachedRowsAreWhatForwardComputesOnTheClip) {
  torch::manual_seed(3);
  auto cfg = vidcls::preset_config("resnet18-tvit-xs", 4);
  cfg["input"] = GetParam();
  auto model = std::dynamic_pointer_cast<vidcls::ResNetTViTImpl>(
      vidcls::make_model("resnet-tvit", cfg));
  model->eval();
  auto spec = vidcls::find_preset("resnet18-tvit-xs").clip;
  // 31 decoded frames of a textured video, every second one sampled: 16 sampled frames.
  const auto frames = torch::randint(0, 256, {31, 72, 80, 3}, torch::kUInt8);
  std::vector<int64_t> sampled;
  for (int64_t i = 0; i < 31; i += 2) sampled.push_back(i);
  const int64_t n = static_cast<int64_t>(sampled.size()), T = spec.frames;
  const auto cache =
      vidcls::train::sampled_frame_features(*model, frames, sampled, spec, torch::kCPU);
  ASSERT_EQ(cache.size(0), n + 1);

  std::vector<vidcls::ClipRecord> windows =
      vidcls::train::eval_windows(n, spec, 0);  // the clipper's, the padded last one included
  std::mt19937_64 rng(5);
  for (int i = 0; i < 6; ++i) windows.push_back(vidcls::train::random_window_record(n, T, rng));
  vidcls::ClipRecord short_end;  // a window of the last 3 sampled frames, padded to T
  short_end.first_sample = n - 3;
  short_end.n_frames = 3;
  windows.push_back(short_end);
  torch::NoGradGuard no_grad;
  for (const auto &w : windows) {
    SCOPED_TRACE("window at " + std::to_string(w.first_sample) + ", " +
                 std::to_string(w.n_frames) + " frames");
    const auto idx = vidcls::train::window_frame_indices(sampled, w, T);
    const auto clip =
        vidcls::preprocess_frames(frames.index_select(0, torch::tensor(idx)), spec).unsqueeze(0);
    const auto cached = cache.index_select(
        0, vidcls::train::feature_rows(w, n, T, model->frame_context()));
    const int64_t tokens = model->cfg().tokens(), skip = T - tokens;
    const auto direct = model->frame_features(clip[0].narrow(0, skip, tokens),
                                              clip[0].narrow(0, 0, tokens));
    ASSERT_EQ(cached.sizes(), direct.sizes());
    EXPECT_TRUE(torch::allclose(cached, direct, 1e-5, 1e-4));
    EXPECT_TRUE(torch::allclose(model->classify_features(cached.unsqueeze(0)).softmax(-1),
                                model->forward(clip).softmax(-1), 1e-5, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(Inputs, FeatureCache,
                         ::testing::Values("rgb", "motion", "motion-stabilised", "two-stream"),
                         [](const auto &info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
