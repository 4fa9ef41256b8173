// The preprocessing contract: a frame becomes the documented tensor.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "vidcls/clip_spec.h"

namespace {

vidcls::ClipSpec spec(int w, int h, vidcls::ResizeMode mode) {
  vidcls::ClipSpec s;
  s.width = w;
  s.height = h;
  s.resize = mode;
  s.mean = {0.5f, 0.25f, 0.0f};
  s.std = {0.5f, 0.25f, 1.0f};
  return s;
}

TEST(ClipSpec, NormalisesPerChannel) {
  auto frame = torch::full({6, 8, 3}, 255, torch::kUInt8);
  auto out = vidcls::preprocess_frame(frame, spec(8, 6, vidcls::ResizeMode::kStretch));
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 6, 8}));
  EXPECT_EQ(out.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(out[0].mean().item<float>(), (1.0 - 0.5) / 0.5, 1e-6);
  EXPECT_NEAR(out[1].mean().item<float>(), (1.0 - 0.25) / 0.25, 1e-6);
  EXPECT_NEAR(out[2].mean().item<float>(), 1.0, 1e-6);
}

TEST(ClipSpec, CropTakesTheCentreAfterScalingTheShortSide) {
  // 40 x 80 frame: left half black, centre white, right black; crop 20x20 of short side 20.
  auto frame = torch::zeros({40, 80, 3}, torch::kUInt8);
  frame.narrow(1, 30, 20).fill_(255);
  auto s = spec(20, 20, vidcls::ResizeMode::kCrop);
  s.mean = {0, 0, 0};
  s.std = {1, 1, 1};
  auto out = vidcls::preprocess_frame(frame, s);  // scaled to 20 x 40, centre 20 x 20
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 20, 20}));
  // the white band (15 .. 25 after scaling) lies in the centre 20 columns (10 .. 30) -> 5 .. 15
  EXPECT_NEAR(out[0][10][10].item<float>(), 1.0, 1e-3);
  EXPECT_NEAR(out[0][10][0].item<float>(), 0.0, 1e-3);
  EXPECT_NEAR(out[0][10][19].item<float>(), 0.0, 1e-3);
}

TEST(ClipSpec, LetterboxPadsWithTheMeanColour) {
  auto frame = torch::full({10, 40, 3}, 200, torch::kUInt8);
  auto out = vidcls::preprocess_frame(frame, spec(40, 40, vidcls::ResizeMode::kLetterbox));
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{3, 40, 40}));
  EXPECT_EQ(out[0][0][0].item<float>(), 0.0f);   // padding: (mean - mean) / std
  EXPECT_EQ(out[1][39][20].item<float>(), 0.0f);
  EXPECT_GT(out[0][20][20].item<float>(), 0.5f);  // picture
}

TEST(ClipSpec, BatchEqualsFrameByFrame) {
  auto frames = torch::randint(0, 256, {3, 30, 50, 3}, torch::kUInt8);
  auto s = spec(16, 16, vidcls::ResizeMode::kCrop);
  auto batch = vidcls::preprocess_frames(frames, s);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(torch::equal(batch[i], vidcls::preprocess_frame(frames[i], s)));
  }
}

TEST(ClipSpec, JsonRoundTripAndValidation) {
  vidcls::ClipSpec s;
  s.frames = 12;
  s.sample_rate = 7.5;
  s.hop = 4;
  s.resize = vidcls::ResizeMode::kLetterbox;
  nlohmann::json j = s;
  EXPECT_EQ(j["layout"], "TCHW");
  auto back = j.get<vidcls::ClipSpec>();
  EXPECT_EQ(back.frames, 12);
  EXPECT_DOUBLE_EQ(back.sample_rate, 7.5);
  EXPECT_EQ(back.resize, vidcls::ResizeMode::kLetterbox);
  s.hop = 0;
  EXPECT_THROW(s.validate(), std::invalid_argument);
  EXPECT_THROW(vidcls::resize_mode_from_string("fill"), std::invalid_argument);
  EXPECT_THROW(vidcls::preprocess_frame(torch::zeros({4, 4, 3}), vidcls::ClipSpec{}),
               c10::Error);  // float frames are not the contract
}

}  // namespace
