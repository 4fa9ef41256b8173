// AVA's frame mAP (frame_map.h) on cases worked out by hand: ranking, one truth box per
// detection, IoU 0.5, precision made non-increasing, classes without truth left out of the mean.
#include <gtest/gtest.h>

#include "vidcls/train/frame_map.h"

namespace {

using vidcls::Box;
using vidcls::train::FrameDetection;
using vidcls::train::FrameTruth;

const Box kLeft{0.0, 0.0, 0.4, 0.5}, kRight{0.5, 0.0, 0.4, 0.5};

TEST(FrameMap, RanksDetectionsPerClassAndAveragesOverClassesWithTruth) {
  const std::vector<FrameTruth> truth = {
      {"a", 1, kLeft, 0}, {"a", 1, kRight, 1}, {"b", 1, kLeft, 0}};
  const std::vector<FrameDetection> dets = {{"a", 1, kLeft, {0.9f, 0.1f, 0.f}},
                                            {"a", 1, kRight, {0.4f, 0.6f, 0.f}},
                                            {"b", 1, kLeft, {0.3f, 0.7f, 0.f}}};
  const auto m = vidcls::train::frame_map(dets, truth, 3);
  // class 0: TP (0.9), FP (0.4: the right box is no class-0 truth), TP (0.3):
  // precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 1/2 x 1 + 1/2 x 2/3
  EXPECT_NEAR(m.ap[0], 0.5 + 1.0 / 3, 1e-9);
  // class 1: FP (0.7, frame b has no class-1 truth), TP (0.6), FP: precision 0, 1/2, 1/3 at
  // recall 0, 1, 1 -> 1 x 1/2
  EXPECT_NEAR(m.ap[1], 0.5, 1e-9);
  EXPECT_EQ(m.ap[2], -1) << "no truth: no AP";
  EXPECT_NEAR(m.map, (0.5 + 1.0 / 3 + 0.5) / 2, 1e-9);
}

TEST(FrameMap, ADetectionMatchesOnlyAtIoUHalfOrMoreAndOnlyOnce) {
  const std::vector<FrameTruth> truth = {{"a", 2, kLeft, 0}};
  // IoU of the shifted box with kLeft: 0.2 x 0.5 / (0.2 + 0.2 - 0.1) = 1/3 < 0.5
  const Box shifted{0.2, 0.0, 0.4, 0.5};
  EXPECT_NEAR(vidcls::train::box_iou(kLeft, shifted), 1.0 / 3, 1e-9);
  auto m = vidcls::train::frame_map({{"a", 2, shifted, {1.f}}}, truth, 1);
  EXPECT_EQ(m.ap[0], 0.0);
  // at another time of the same video: no match either
  m = vidcls::train::frame_map({{"a", 3, kLeft, {1.f}}}, truth, 1);
  EXPECT_EQ(m.ap[0], 0.0);
  // the same box twice: the second is a false positive, the first a true one
  m = vidcls::train::frame_map({{"a", 2, kLeft, {0.9f}}, {"a", 2, kLeft, {0.8f}}}, truth, 1);
  EXPECT_EQ(m.ap[0], 1.0);
  m = vidcls::train::frame_map({}, truth, 1);
  EXPECT_EQ(m.ap[0], 0.0) << "nothing detected";
}

}  // namespace
