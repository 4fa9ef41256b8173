// AVA's frame mAP (frame_map.h) on cases worked out by hand: ranking, one truth box per
// detection, IoU 0.5, precision made non-increasing, classes without truth left out of the mean;
// which clip scores a keyframe.
#include <gtest/gtest.h>

#include <cmath>

#include "vidcls/train/evaluation.h"
#include "vidcls/train/frame_map.h"
#include "vidcls/train/transforms.h"

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

// 48 frames at 15 fps with WebM's millisecond timestamps, every second frame sampled, clips of 8
// samples one after the other (frames 0-14, 16-30, 32-46): the keyframe at 1 s (frame 15) falls
// between two clips' samples, 67 ms from each, and is still scored, by the earlier.
TEST(FrameMap, EveryKeyframeBetweenClipsIsScoredByAClipHoldingItsNearestSample) {
  vidcls::train::VideoFrames v;
  for (int i = 0; i < 48; ++i)
    v.pts_ns.push_back(static_cast<int64_t>(std::lround(i * 1000.0 / 15)) * 1000000);
  for (int i = 0; i < 48; i += 2) v.sampled.push_back(i);
  vidcls::ClipSpec spec;
  spec.frames = 8;
  spec.hop = 8;
  const auto windows = vidcls::train::eval_windows(24, spec, 0);
  ASSERT_EQ(windows.size(), 3u);
  const std::vector<int64_t> expected = {0, 0, 1, 2};  // keyframes at 0, 1, 2 and 3 s
  for (int s = 0; s < 4; ++s)
    EXPECT_EQ(vidcls::train::keyframe_clip(v, windows, spec.frames, s * 1e9), expected[s]) << s;
  // With the first clip only (a temporal view), the keyframes after it have no clip.
  const std::vector<vidcls::ClipRecord> first(windows.begin(), windows.begin() + 1);
  EXPECT_EQ(vidcls::train::keyframe_clip(v, first, spec.frames, 1e9), 0);
  EXPECT_EQ(vidcls::train::keyframe_clip(v, first, spec.frames, 2e9), -1);
  EXPECT_EQ(vidcls::train::keyframe_clip(vidcls::train::VideoFrames{}, windows, spec.frames, 0), -1)
      << "a person without sampled frames has no clip";
}

}  // namespace
