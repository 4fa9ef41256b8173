// Clips per tracked object (object_clipper.h), without GStreamer: each track's clips are the
// clip spec's object crops of its frames, bit for bit; missing boxes are held, then tracks end
// with their leftover clip; max_objects bounds the tracks however many ids come; bad boxes are
// never tracked.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include <torch/utils.h>

#include "vidcls/object_clipper.h"

namespace {

using vidcls::Box;
using vidcls::ObjectClip;
using vidcls::ObjectClipper;
using vidcls::ObjectSighting;

constexpr uint64_t kFrame = 100000000;  // 100 ms

ObjectClipper::Settings settings(size_t max_objects = 16) {
  ObjectClipper::Settings s;
  s.spec.frames = 4;
  s.spec.hop = 2;
  s.spec.width = s.spec.height = 16;
  s.hold_ns = 2 * kFrame;
  s.timeout_ns = 4 * kFrame;
  s.max_objects = max_objects;
  return s;
}

class Frames {
 public:
  Frames() {
    torch::manual_seed(5);
    frames_ = torch::randint(0, 256, {40, 60, 80, 3}, torch::kUInt8);
  }
  std::vector<ObjectClip> add(ObjectClipper &c, int k, const std::vector<ObjectSighting> &seen) {
    return c.add(frames_[k], k * kFrame, (k + 1) * kFrame, seen);
  }
  const torch::Tensor &frames() const { return frames_; }

 private:
  torch::Tensor frames_;
};

// The clip the rule gives for `boxes` on frames [first, first + n).
torch::Tensor expected(const Frames &f, const ObjectClipper::Settings &s, int first,
                       const std::vector<Box> &boxes) {
  std::vector<vidcls::PixelRect> regions;
  for (const Box &b : boxes) regions.push_back(*vidcls::object_region(b, 60, 80, s.spec.object));
  return vidcls::preprocess_regions(f.frames().narrow(0, first, boxes.size()), regions, s.spec);
}

TEST(ObjectClipper, EachTrackIsCutIntoClipsOfItsOwnCrops) {
  Frames f;
  ObjectClipper c;
  const auto s = settings();
  c.configure(s, "stream-a");
  std::vector<ObjectClip> clips;
  std::vector<Box> a_boxes, b_boxes;
  for (int k = 0; k < 6; ++k) {
    const Box a{10.0 + k, 10, 12, 24}, b{50, 20.0 - k, 20, 20};
    a_boxes.push_back(a);
    b_boxes.push_back(b);
    for (auto &clip : f.add(c, k, {{7, a}, {3, b}})) clips.push_back(std::move(clip));
  }
  // T = 4, hop 2: clip 0 after frame 4, clip 1 after frame 6, for each track.
  ASSERT_EQ(clips.size(), 4u);
  for (const auto &clip : clips) {
    const bool a = clip.record.object_id == 7;
    ASSERT_TRUE(a || clip.record.object_id == 3);
    EXPECT_EQ(clip.record.stream, "stream-a");
    EXPECT_FALSE(clip.record.partial);
    EXPECT_EQ(clip.record.n_frames, 4u);
    const int first = static_cast<int>(clip.record.first_sample);
    EXPECT_EQ(clip.record.index, first / 2u);
    EXPECT_EQ(clip.record.start, first * kFrame);
    EXPECT_EQ(clip.record.end, (first + 4) * kFrame);
    const auto &boxes = a ? a_boxes : b_boxes;
    const std::vector<Box> window(boxes.begin() + first, boxes.begin() + first + 4);
    EXPECT_TRUE(torch::equal(clip.clip, expected(f, s, first, window)))
        << "track " << clip.record.object_id << " clip " << clip.record.index;
    EXPECT_DOUBLE_EQ(clip.record.box.x, window.back().x);
  }
  EXPECT_NE(clips[0].record.epoch, clips[1].record.epoch) << "two tracks, two epochs";
  EXPECT_EQ(c.stats().tracks, 2u);
  EXPECT_EQ(c.stats().clips, 4u);
}

TEST(ObjectClipper, AMissingBoxIsHeldThenTheTrackEndsWithItsLeftoverClip) {
  Frames f;
  ObjectClipper c;
  auto s = settings();
  s.eos = vidcls::EosPolicy::kPartial;
  c.configure(s, "s");
  const Box box{20, 10, 16, 30};
  EXPECT_TRUE(f.add(c, 0, {{1, box}}).empty());
  // Frames 1 and 2 (0.1 and 0.2 s after it was seen) hold its box; frame 3 (0.3 s) adds
  // nothing; the clip of frames 0-2 is still open.
  EXPECT_TRUE(f.add(c, 1, {}).empty());
  EXPECT_TRUE(f.add(c, 2, {}).empty());
  EXPECT_TRUE(f.add(c, 3, {}).empty());
  EXPECT_EQ(c.stats().tracks, 1u);
  // Frame 5 is 0.5 s after it was last seen, past the 0.4 s timeout: the track ends.
  auto ended = f.add(c, 5, {});
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_TRUE(ended[0].record.partial);
  EXPECT_EQ(ended[0].record.n_frames, 3u) << "frame 0 and the two held ones";
  EXPECT_EQ(ended[0].record.object_id, 1);
  EXPECT_TRUE(torch::equal(ended[0].clip, expected(f, s, 0, {box, box, box})));
  EXPECT_EQ(c.stats().tracks, 0u);
  EXPECT_EQ(c.stats().ended, 1u);
  // The id comes back: a new track, a new epoch, clips from 0.
  f.add(c, 6, {{1, box}});
  EXPECT_EQ(c.stats().started, 2u);
}

TEST(ObjectClipper, MaxObjectsBoundsTheTracksWithoutThrashing) {
  Frames f;
  ObjectClipper c;
  c.configure(settings(2), "s");
  const Box box{20, 10, 16, 30};
  // Three objects on one frame, room for two: the third is left out, the first two kept.
  f.add(c, 0, {{1, box}, {2, box}, {3, box}});
  EXPECT_EQ(c.stats().tracks, 2u);
  EXPECT_EQ(c.stats().refused, 1u);
  EXPECT_EQ(c.stats().dropped, 0u);
  for (int k = 1; k < 4; ++k) f.add(c, k, {{1, box}, {2, box}, {3, box}});
  auto four = f.add(c, 4, {{1, box}, {2, box}});
  EXPECT_EQ(c.stats().started, 2u) << "the kept tracks were never ended by the third";
  // A new id on a frame without track 1: track 1 (seen longest ago; its box held on this frame,
  // which completes its clip 1) makes room for it.
  auto clips = f.add(c, 5, {{9, box}, {2, box}});
  EXPECT_EQ(c.stats().tracks, 2u);
  EXPECT_EQ(c.stats().started, 3u);
  EXPECT_EQ(c.stats().refused, 4u) << "id 3 on frames 0 to 3";
  EXPECT_EQ(c.stats().dropped, 1u) << "track 1";
  ASSERT_EQ(clips.size(), 2u);
  EXPECT_EQ(clips[0].record.object_id, 1);
  EXPECT_EQ(clips[0].record.index, 1u);
  EXPECT_EQ(clips[1].record.object_id, 2);
  EXPECT_TRUE(f.add(c, 6, {{1, box}, {2, box}, {9, box}}).empty());
  EXPECT_EQ(c.stats().tracks, 2u) << "track 1 is new now, and there is no room for it";
  (void)four;
}

TEST(ObjectClipper, TenThousandIdsStayWithinMaxObjects) {
  Frames f;
  ObjectClipper c;
  c.configure(settings(8), "s");
  for (int k = 0; k < 10000; ++k) {
    f.add(c, k % 40, {{k, {20, 10, 16, 30}}, {k + 1000000, {40, 20, 10, 10}}});
    ASSERT_LE(c.stats().tracks, 8u);
  }
  EXPECT_EQ(c.stats().started, 20000u);
  EXPECT_EQ(c.stats().dropped, 20000u - 8u);
}

TEST(ObjectClipper, BoxesWithoutARegionAreNeverTracked) {
  Frames f;
  ObjectClipper c;
  c.configure(settings(), "s");
  const double nan = std::numeric_limits<double>::quiet_NaN();
  f.add(c, 0,
        {{1, {nan, 1, 5, 5}}, {2, {10, 10, 0, 5}}, {3, {100, 10, 5, 5}}, {4, {-50, 0, 10, 10}}});
  EXPECT_EQ(c.stats().tracks, 0u);
  EXPECT_EQ(c.stats().started, 0u);
}

TEST(ObjectClipper, EndOfStreamAndResetFollowThePolicy) {
  Frames f;
  for (const auto policy :
       {vidcls::EosPolicy::kDrop, vidcls::EosPolicy::kPad, vidcls::EosPolicy::kPartial}) {
    ObjectClipper c;
    auto s = settings();
    s.eos = policy;
    c.configure(s, "s");
    for (int k = 0; k < 5; ++k) f.add(c, k, {{1, {20, 10, 16, 30}}});  // clip 0, then 1 frame
    const auto left = c.finish(policy);
    if (policy == vidcls::EosPolicy::kDrop) {
      EXPECT_TRUE(left.empty());
      continue;
    }
    ASSERT_EQ(left.size(), 1u);
    EXPECT_TRUE(left[0].record.partial);
    EXPECT_EQ(left[0].record.first_sample, 2u);
    EXPECT_EQ(left[0].record.n_frames, 3u);
    EXPECT_EQ(left[0].clip.size(0), 3);
    c.reset();
    EXPECT_EQ(c.stats().tracks, 0u);
    EXPECT_TRUE(c.finish(policy).empty());
  }
}

}  // namespace
