// The training clips' mirrors (left-right, top-bottom, in time) and the labels they swap.
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vidcls/registry.h"
#include "vidcls/train/transforms.h"

namespace vt = vidcls::train;
using ::testing::HasSubstr;

namespace {

// Each mirror is drawn with probability 1/2 after the window and the crop, and is exactly a
// flip of the clip the same draws give without it (time: frames; top-bottom: rows; left-right:
// columns); what was drawn is reported.
TEST(TrainClip, MirrorsAreFlipsOfTheSameClipAndSayWhatWasDrawn) {
  const auto spec = vidcls::find_preset("vivit-xs").clip;
  const auto frames = torch::randint(0, 256, {40, 72, 96, 3}, torch::kUInt8);
  std::vector<int64_t> sampled;
  for (int64_t i = 0; i < 40; i += 2) sampled.push_back(i);
  vt::Augmentation plain, mirrored;
  mirrored.flip = mirrored.vflip = mirrored.reverse = true;
  int drawn[3] = {0, 0, 0};
  const int n = 64;
  for (int seed = 0; seed < n; ++seed) {
    std::mt19937_64 a(seed), b(seed);
    const auto clip = vt::train_clip(frames, sampled, spec, plain, a);
    vt::Mirrors did;
    const auto m = vt::train_clip(frames, sampled, spec, mirrored, b, &did);
    std::vector<int64_t> dims;
    if (did.t) dims.push_back(0);
    if (did.v) dims.push_back(2);
    if (did.h) dims.push_back(3);
    ASSERT_TRUE(torch::equal(m, dims.empty() ? clip : clip.flip(dims))) << "seed " << seed;
    drawn[0] += did.h;
    drawn[1] += did.v;
    drawn[2] += did.t;
  }
  for (int k = 0; k < 3; ++k) {
    EXPECT_GT(drawn[k], n / 4) << "mirror " << k;
    EXPECT_LT(drawn[k], 3 * n / 4) << "mirror " << k;
  }
}

TEST(LabelSwaps, PairsSwapTheirClassesAndTheMirrorsCompose) {
  const std::vector<std::string> classes = {"slide_left", "slide_right", "grow", "shrink",
                                            "wave"};
  vt::LabelSwaps swaps;
  swaps.h = vt::parse_label_swaps("slide_left:slide_right", classes, "--flip-swap");
  swaps.t = vt::parse_label_swaps("slide_right:slide_left,shrink:grow", classes, "--reverse-swap");
  EXPECT_EQ(swaps.h, (std::vector<int64_t>{1, 0, 2, 3, 4}));
  EXPECT_EQ(swaps.t, (std::vector<int64_t>{1, 0, 3, 2, 4}));
  vt::Mirrors h, t, both;
  h.h = true;
  t.t = true;
  both.h = both.t = true;
  EXPECT_EQ(swaps(0, vt::Mirrors{}), 0);
  EXPECT_EQ(swaps(0, h), 1);
  EXPECT_EQ(swaps(2, h), 2);
  EXPECT_EQ(swaps(2, t), 3);
  EXPECT_EQ(swaps(0, both), 0);  // flipped and reversed: slide_left again
  EXPECT_EQ(swaps(3, both), 2);
  EXPECT_EQ(swaps(4, both), 4);
  h.v = true;  // a top-bottom flip without a map keeps the label
  EXPECT_EQ(swaps(0, h), 1);
}

TEST(LabelSwaps, WhatCannotBeMappedIsAnErrorNamingTheOption) {
  const std::vector<std::string> classes = {"slide_left", "slide_right", "wave"};
  auto error_of = [&](const std::string &pairs) {
    try {
      vt::parse_label_swaps(pairs, classes, "--flip-swap");
    } catch (const std::invalid_argument &e) {
      return std::string(e.what());
    }
    return std::string("(taken)");
  };
  EXPECT_THAT(error_of("slide_left:jump"),
              HasSubstr("--flip-swap: no class 'jump' in the dataset (its classes: slide_left, "
                        "slide_right, wave)"));
  EXPECT_THAT(error_of("slide_left:slide_right,wave:slide_left"), HasSubstr("named twice"));
  EXPECT_THAT(error_of("wave:wave"), HasSubstr("paired with itself"));
  for (const char *malformed : {"", "slide_left", "slide_left:", ":wave",
                                "slide_left:slide_right:wave", "slide_left:slide_right,"})
    EXPECT_THAT(error_of(malformed), HasSubstr("expected comma-separated pairs")) << malformed;
}

}  // namespace
