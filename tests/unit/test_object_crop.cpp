// The per-object crop rule (object_crop.h): where a tracked object's clips are cut from, that
// every box a detector or tracker may send gives a region inside the frame or none, and that a
// region's model input is the whole-frame preprocessing of that region.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "vidcls/clip_spec.h"
#include "vidcls/object_crop.h"

namespace {

using vidcls::Box;
using vidcls::ObjectCrop;
using vidcls::PixelRect;

void expect_rect(const std::optional<PixelRect> &r, int64_t top, int64_t left, int64_t h,
                 int64_t w) {
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->top, top);
  EXPECT_EQ(r->left, left);
  EXPECT_EQ(r->height, h);
  EXPECT_EQ(r->width, w);
}

TEST(ObjectCrop, TheBoxWidenedByTheMarginAndMadeSquareAroundItsCentre) {
  // A 20 x 40 person at (50, 30) in a 200 x 160 frame: +10 % on each side is 24 x 48, square
  // 48 x 48 around the centre (60, 50).
  expect_rect(vidcls::object_region({50, 30, 20, 40}, 160, 200, ObjectCrop{}), 26, 36, 48, 48);
  // Not square, no margin: the box itself.
  expect_rect(vidcls::object_region({50, 30, 20, 40}, 160, 200, ObjectCrop{0.0, false}), 30, 50, 40,
              20);
}

TEST(ObjectCrop, ARegionOverAnEdgeMovesInsideAndOneTooLargeIsCutToTheFrame) {
  // At the left edge: the 48 x 48 region starts at column 0 instead of -12, its size kept.
  expect_rect(vidcls::object_region({-2, 30, 20, 40}, 160, 200, ObjectCrop{}), 26, 0, 48, 48);
  // At the bottom right corner.
  expect_rect(vidcls::object_region({190, 150, 20, 40}, 160, 200, ObjectCrop{}), 112, 152, 48, 48);
  // Taller than the frame: all rows; the width of the square region (168) still fits.
  expect_rect(vidcls::object_region({90, 10, 20, 140}, 160, 200, ObjectCrop{}), 0, 16, 160, 168);
}

TEST(ObjectCrop, BoxesWithoutAnAreaInTheFrameHaveNoRegion) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const ObjectCrop rule;
  for (const Box &b : {Box{nan, 10, 10, 10}, Box{10, 10, inf, 10}, Box{10, 10, 0, 10},
                       Box{10, 10, 10, -5}, Box{200, 10, 10, 10}, Box{-30, 10, 20, 10},
                       Box{10, 160, 10, 10}, Box{10, -1e300, 10, 10}}) {
    EXPECT_FALSE(vidcls::object_region(b, 160, 200, rule).has_value())
        << b.x << " " << b.y << " " << b.w << " " << b.h;
  }
  EXPECT_FALSE(vidcls::object_region({10, 10, 10, 10}, 0, 200, rule).has_value());
}

TEST(ObjectCrop, AnyFiniteBoxThatOverlapsGivesARegionInsideTheFrame) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> pos(-400, 600), size(-10, 900), huge(-1e300, 1e300);
  std::uniform_int_distribution<int> pick(0, 9);
  int regions = 0;
  for (int i = 0; i < 20000; ++i) {
    Box b{pos(rng), pos(rng), size(rng), size(rng)};
    if (pick(rng) == 0) b.w = std::abs(huge(rng));
    if (pick(rng) == 0) b.x = huge(rng);
    const ObjectCrop rule{std::uniform_real_distribution<double>(0, 2)(rng), pick(rng) < 5};
    const auto r = vidcls::object_region(b, 160, 200, rule);
    if (!r) continue;
    ++regions;
    ASSERT_GE(r->top, 0);
    ASSERT_GE(r->left, 0);
    ASSERT_GE(r->height, 1);
    ASSERT_GE(r->width, 1);
    ASSERT_LE(r->top + r->height, 160);
    ASSERT_LE(r->left + r->width, 200);
  }
  EXPECT_GT(regions, 1000);
}

TEST(ObjectCrop, ARegionsInputIsTheWholeFramePreprocessingOfThatRegion) {
  torch::manual_seed(3);
  const auto frames = torch::randint(0, 256, {3, 120, 160, 3}, torch::kUInt8);
  vidcls::ClipSpec spec;
  spec.width = spec.height = 32;
  const std::vector<PixelRect> regions = {{10, 20, 50, 50}, {0, 0, 120, 160}, {70, 101, 50, 59}};
  const auto got = vidcls::preprocess_regions(frames, regions, spec);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{3, 3, 32, 32}));
  for (int i = 0; i < 3; ++i) {
    const auto &r = regions[i];
    const auto copy =
        frames[i].narrow(0, r.top, r.height).narrow(1, r.left, r.width).contiguous().unsqueeze(0);
    EXPECT_TRUE(torch::equal(got[i], vidcls::preprocess_frames(copy, spec)[0])) << "region " << i;
  }
  EXPECT_THROW(
      vidcls::preprocess_regions(frames, {{0, 0, 121, 10}, {0, 0, 1, 1}, {0, 0, 1, 1}}, spec),
      c10::Error);
}

TEST(ObjectCrop, TheRuleTravelsInTheClipSpec) {
  vidcls::ClipSpec spec;
  spec.object = {0.25, false};
  nlohmann::json j = spec;
  const auto back = j.get<vidcls::ClipSpec>();
  EXPECT_EQ(back.object.margin, 0.25);
  EXPECT_FALSE(back.object.square);
  EXPECT_TRUE(vidcls::same_clip_spec(spec, back));
  vidcls::ClipSpec other = spec;
  other.object.square = true;
  EXPECT_FALSE(vidcls::same_clip_spec(spec, other)) << "another crop rule cuts other clips";
  // A checkpoint written before per-object clips has no "object": the default rule.
  j.erase("object");
  const auto old = j.get<vidcls::ClipSpec>();
  EXPECT_EQ(old.object.margin, ObjectCrop{}.margin);
  EXPECT_EQ(old.object.square, ObjectCrop{}.square);
  spec.object.margin = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(spec.validate(), std::invalid_argument);
  spec.object.margin = -0.1;
  EXPECT_THROW(spec.validate(), std::invalid_argument);
}

}  // namespace
