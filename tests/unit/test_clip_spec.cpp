// The preprocessing contract: a frame becomes the documented tensor.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <torch/types.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>

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

// The contract written with plain torch ops: float, bilinear interpolate (antialiased when either
// side shrinks), crop / pad, normalise. The library's CPU path resizes straight from the uint8
// pixels and must agree with it up to float rounding. Sizes and the centre follow torchvision's
// Resize and CenterCrop: the long side int(short_side * long / short), the offset Python's
// round(room / 2) (half to even: nearbyint in the default rounding mode).
torch::Tensor reference(const torch::Tensor &frames, const vidcls::ClipSpec &s,
                        int64_t top = -1, int64_t left = -1) {
  namespace F = torch::nn::functional;
  const int64_t H = frames.size(1), W = frames.size(2), h = s.height, w = s.width;
  int64_t nh = h, nw = w;
  auto scaled = [](int64_t n, double k) { return std::max<int64_t>(1, std::lround(n * k)); };
  if (s.resize == vidcls::ResizeMode::kCrop) {
    const int64_t side = s.short_side > 0 ? s.short_side : std::max(h, w);
    const auto trunc = [&](int64_t n) {
      return static_cast<int64_t>(static_cast<double>(side) * n / std::min(H, W));
    };
    nh = std::max(h, H <= W ? side : trunc(H));
    nw = std::max(w, H <= W ? trunc(W) : side);
  } else if (s.resize == vidcls::ResizeMode::kLetterbox) {
    const double k = std::min(static_cast<double>(h) / H, static_cast<double>(w) / W);
    nh = std::min(h, scaled(H, k));
    nw = std::min(w, scaled(W, k));
  }
  auto x = frames.permute({0, 3, 1, 2}).to(torch::kFloat32);
  if (nh != H || nw != W) {
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{nh, nw})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(nh < H || nw < W));
  }
  auto mean = torch::tensor({s.mean[0], s.mean[1], s.mean[2]}).mul(255).view({1, 3, 1, 1});
  auto sd = torch::tensor({s.std[0], s.std[1], s.std[2]}).mul(255).view({1, 3, 1, 1});
  x = (x - mean) / sd;
  if (s.resize == vidcls::ResizeMode::kLetterbox) {
    return F::pad(x, F::PadFuncOptions({(w - nw) / 2, w - nw - (w - nw) / 2, (h - nh) / 2,
                                        h - nh - (h - nh) / 2}));
  }
  const auto centre = [](int64_t room) { return static_cast<int64_t>(std::nearbyint(room / 2.0)); };
  return x.narrow(2, top < 0 ? centre(nh - h) : top, h)
      .narrow(3, left < 0 ? centre(nw - w) : left, w);
}

TEST(ClipSpec, AgreesWithTorchInterpolateForEverySizeAndMode) {
  torch::manual_seed(3);
  struct Case {
    int64_t H, W;
    int w, h, short_side;
    vidcls::ResizeMode mode;
  };
  const Case cases[] = {
      {240, 320, 64, 64, 0, vidcls::ResizeMode::kCrop},      // the xs presets from QVGA
      {96, 128, 64, 64, 73, vidcls::ResizeMode::kCrop},      // through a short side of 73
      {240, 320, 224, 224, 256, vidcls::ResizeMode::kCrop},  // one side grows, one shrinks
      {37, 53, 16, 16, 0, vidcls::ResizeMode::kCrop},        // odd sizes
      {24, 32, 64, 64, 0, vidcls::ResizeMode::kCrop},        // upscaling only
      {64, 64, 64, 64, 0, vidcls::ResizeMode::kCrop},        // nothing to resize
      {1080, 1920, 224, 224, 256, vidcls::ResizeMode::kCrop},
      {30, 50, 20, 16, 0, vidcls::ResizeMode::kStretch},
      {97, 31, 40, 40, 0, vidcls::ResizeMode::kLetterbox},
      {10, 40, 40, 40, 0, vidcls::ResizeMode::kLetterbox},
  };
  for (const auto &c : cases) {
    auto s = spec(c.w, c.h, c.mode);
    s.short_side = c.short_side;
    // Both a contiguous batch and the strided view a packed RGBx frame gives.
    auto frames = torch::randint(0, 256, {2, c.H, c.W, 4}, torch::kUInt8).narrow(3, 0, 3);
    auto got = vidcls::preprocess_frames(frames, s);
    auto want = reference(frames, s);
    ASSERT_EQ(got.sizes(), want.sizes()) << c.H << "x" << c.W;
    EXPECT_TRUE(got.is_contiguous());
    const double err = (got - want).abs().max().item<double>();
    EXPECT_LT(err, 2e-5) << c.H << "x" << c.W << " -> " << c.w << "x" << c.h << " "
                          << vidcls::to_string(c.mode);
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

// Training's random crops and multi-view testing move the crop through the contract itself: the
// crop at an offset is the same resized frame, cut elsewhere; offsets beyond the room are clamped.
TEST(ClipSpec, CropOffsetCutsTheSameResizedFrameElsewhere) {
  torch::manual_seed(5);
  auto s = spec(32, 32, vidcls::ResizeMode::kCrop);
  s.short_side = 40;
  const auto frames = torch::randint(0, 256, {2, 60, 90, 3}, torch::kUInt8);
  const auto plan = vidcls::plan_resize(60, 90, s);
  EXPECT_EQ(plan.resized_h, 40);
  EXPECT_EQ(plan.resized_w, 60);
  EXPECT_EQ(plan.top, 4);
  EXPECT_EQ(plan.left, 14);
  for (auto [top, left] : {std::pair<int64_t, int64_t>{0, 0}, {8, 28}, {3, 11}}) {
    const auto got = vidcls::preprocess_frames(frames, s, {top, left});
    EXPECT_LT((got - reference(frames, s, top, left)).abs().max().item<double>(), 2e-5)
        << top << ", " << left;
  }
  // Centred by default, clamped to the room (8 rows, 28 columns) when asked for more.
  EXPECT_TRUE(torch::equal(vidcls::preprocess_frames(frames, s, {-1, -1}),
                           vidcls::preprocess_frames(frames, s)));
  EXPECT_TRUE(torch::equal(vidcls::preprocess_frames(frames, s, {100, 100}),
                           vidcls::preprocess_frames(frames, s, {8, 28})));
}

// The clip cache stores frames resized by the same weights, without normalisation.
TEST(ClipSpec, ResizeFramesIsTheContractWithoutNormalisation) {
  torch::manual_seed(6);
  const auto frames = torch::randint(0, 256, {2, 50, 70, 3}, torch::kUInt8);
  const auto [h, w] = vidcls::short_side_size(50, 70, 36);
  EXPECT_EQ(h, 36);
  EXPECT_EQ(w, 50);  // 70 * 36 / 50 = 50.4
  const auto portrait = vidcls::short_side_size(70, 50, 36);
  EXPECT_EQ(portrait.first, 50);
  EXPECT_EQ(portrait.second, 36);
  auto stretch = spec(static_cast<int>(w), static_cast<int>(h), vidcls::ResizeMode::kStretch);
  stretch.mean = {0, 0, 0};
  stretch.std = {1.0f / 255, 1.0f / 255, 1.0f / 255};
  const auto got = vidcls::resize_frames(frames, h, w);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{2, 3, h, w}));
  EXPECT_LT((got - reference(frames, stretch)).abs().max().item<double>(), 5e-3);
  EXPECT_GE(got.min().item<float>(), 0.0f);
  EXPECT_LE(got.max().item<float>(), 255.0f);
}

// A clip ring's slot is written in place, with what preprocess_frames returns.
TEST(ClipSpec, PreprocessIntoARingSlotWritesTheSameTensor) {
  torch::manual_seed(7);
  const auto s = spec(16, 12, vidcls::ResizeMode::kLetterbox);
  const auto frame = torch::randint(0, 256, {1, 30, 50, 3}, torch::kUInt8);
  auto ring = torch::full({4, 3, 12, 16}, 7.0f);
  const float *before = ring.data_ptr<float>();
  vidcls::preprocess_frames_into(frame, s, ring.narrow(0, 2, 1));
  EXPECT_EQ(ring.data_ptr<float>(), before);
  EXPECT_TRUE(torch::equal(ring[2], vidcls::preprocess_frames(frame, s)[0]));
  EXPECT_TRUE(torch::equal(ring[1], torch::full({3, 12, 16}, 7.0f)));  // the others untouched
  EXPECT_THROW(vidcls::preprocess_frames_into(frame, s, ring.narrow(0, 0, 2)), c10::Error);
}

// The one rule for a clip shorter than T: its last frame repeated.
TEST(ClipSpec, ShortClipsAreCompletedWithTheirLastFrame) {
  const auto clip = torch::arange(3, torch::kFloat32).view({3, 1, 1, 1}).expand({3, 3, 2, 2});
  const auto whole = vidcls::complete_clip(clip, 5);
  ASSERT_EQ(whole.size(0), 5);
  const std::vector<float> firsts = {0, 1, 2, 2, 2};
  for (int64_t t = 0; t < 5; ++t) EXPECT_EQ(whole[t][0][0][0].item<float>(), firsts[t]);
  EXPECT_TRUE(vidcls::complete_clip(whole, 5).is_same(whole));
  EXPECT_THROW(vidcls::complete_clip(whole, 4), c10::Error);
}

}  // namespace
