// Frame sampling and clip windows: the rules vidclsclipper applies live and training applies
// offline, so both cut a video into the same clips.
#include <gtest/gtest.h>

#include "vidcls/clip_sampling.h"

namespace {

constexpr uint64_t kMs = 1000000ull;

std::vector<int> sampled(vidcls::FrameSampler &s, const std::vector<uint64_t> &pts) {
  std::vector<int> out;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (s.take(pts[i])) out.push_back(static_cast<int>(i));
  }
  return out;
}

TEST(FrameSampler, EveryKthFrame) {
  vidcls::FrameSampler s;
  s.configure(3, 0);
  s.reset();
  std::vector<uint64_t> pts(10, vidcls::kNoTimestamp);
  EXPECT_EQ(sampled(s, pts), (std::vector<int>{0, 3, 6, 9}));
}

TEST(FrameSampler, RateOnTimestamps) {
  vidcls::FrameSampler s;
  s.configure(1, 10.0);  // 10 of 30 frames per second
  s.reset();
  std::vector<uint64_t> pts;
  for (int i = 0; i < 12; ++i) pts.push_back(i * 1000 * kMs / 30);
  EXPECT_EQ(sampled(s, pts), (std::vector<int>{0, 3, 6, 9}));
}

TEST(FrameSampler, MillisecondRoundedTimestampsStayOnSchedule) {
  vidcls::FrameSampler s;
  s.configure(1, 10.0);
  s.reset();
  std::vector<uint64_t> pts;
  for (int i = 0; i < 12; ++i) pts.push_back((i * 1000 / 30) * kMs);  // 0, 33, 66, 100 ms ...
  EXPECT_EQ(sampled(s, pts), (std::vector<int>{0, 3, 6, 9}));
}

TEST(FrameSampler, GapSamplesOnceAndRestarts) {
  vidcls::FrameSampler s;
  s.configure(1, 10.0);
  s.reset();
  // 30 fps, then a 2 s gap: the first frame after it is sampled once, then every 100 ms.
  std::vector<uint64_t> pts = {0, 33 * kMs, 66 * kMs, 100 * kMs, 2100 * kMs, 2133 * kMs,
                               2166 * kMs, 2200 * kMs};
  EXPECT_EQ(sampled(s, pts), (std::vector<int>{0, 3, 4, 7}));
}

TEST(FrameSampler, FramesWithoutTimestampUseTheNominalRate) {
  vidcls::FrameSampler s;
  s.configure(1, 10.0, 30, 1);  // 30 fps stream at 10 fps -> every 3rd
  s.reset();
  std::vector<uint64_t> pts(7, vidcls::kNoTimestamp);
  EXPECT_EQ(sampled(s, pts), (std::vector<int>{0, 3, 6}));
}

TEST(ClipWindows, CompleteClipsAreHopApart) {
  auto w = vidcls::clip_windows(20, 8, 4, vidcls::EosPolicy::kDrop);
  ASSERT_EQ(w.size(), 4u);  // [0,8) [4,12) [8,16) [12,20)
  for (uint64_t k = 0; k < w.size(); ++k) {
    EXPECT_EQ(w[k].index, k);
    EXPECT_EQ(w[k].first_sample, 4 * k);
    EXPECT_EQ(w[k].n_frames, 8u);
    EXPECT_FALSE(w[k].partial);
  }
}

TEST(ClipWindows, EndOfStreamClip) {
  vidcls::ClipRecord c;
  // 10 sampled, T 8, hop 8: frames 8, 9 are in no clip -> a clip from 8 with 2 frames.
  ASSERT_TRUE(vidcls::eos_clip(10, 8, 8, vidcls::EosPolicy::kPad, c));
  EXPECT_EQ(c.index, 1u);
  EXPECT_EQ(c.first_sample, 8u);
  EXPECT_EQ(c.n_frames, 2u);
  EXPECT_TRUE(c.partial);
  EXPECT_FALSE(vidcls::eos_clip(10, 8, 8, vidcls::EosPolicy::kDrop, c));
  // Exactly filled: nothing left.
  EXPECT_FALSE(vidcls::eos_clip(16, 8, 8, vidcls::EosPolicy::kPad, c));
  // Overlapping clips (hop 3) that already hold every frame: 50 sampled, last clip [42, 50).
  EXPECT_FALSE(vidcls::eos_clip(50, 8, 3, vidcls::EosPolicy::kPad, c));
  // Overlapping clips with frames left: 51 sampled -> a clip from 45 with 6 frames.
  ASSERT_TRUE(vidcls::eos_clip(51, 8, 3, vidcls::EosPolicy::kPartial, c));
  EXPECT_EQ(c.first_sample, 45u);
  EXPECT_EQ(c.n_frames, 6u);
  // hop > T: frames between clips are skipped by design.
  EXPECT_FALSE(vidcls::eos_clip(4, 2, 5, vidcls::EosPolicy::kPad, c));
  ASSERT_TRUE(vidcls::eos_clip(6, 2, 5, vidcls::EosPolicy::kPad, c));
  EXPECT_EQ(c.first_sample, 5u);
  // Shorter than one clip.
  ASSERT_TRUE(vidcls::eos_clip(3, 8, 8, vidcls::EosPolicy::kPad, c));
  EXPECT_EQ(c.index, 0u);
  EXPECT_EQ(c.n_frames, 3u);
  EXPECT_FALSE(vidcls::eos_clip(0, 8, 8, vidcls::EosPolicy::kPad, c));
}

// Every sampled frame is in some clip unless dropped at EOS or between clips by design.
TEST(ClipWindows, CoverEverySampledFrameWhenHopAtMostT) {
  for (uint64_t T : {1, 4, 8}) {
    for (uint64_t hop = 1; hop <= T; ++hop) {
      for (uint64_t n = 0; n < 40; ++n) {
        auto w = vidcls::clip_windows(n, T, hop, vidcls::EosPolicy::kPartial);
        std::vector<bool> seen(n, false);
        for (const auto &c : w) {
          for (uint64_t i = 0; i < c.n_frames; ++i) seen.at(c.first_sample + i) = true;
        }
        for (uint64_t i = 0; i < n; ++i) {
          ASSERT_TRUE(seen[i]) << "T " << T << " hop " << hop << " n " << n << " frame " << i;
        }
      }
    }
  }
}

TEST(ClipRows, ShortClipsRepeatTheirLastFrame) {
  EXPECT_EQ(vidcls::clip_rows(3, 5), (std::vector<int64_t>{0, 1, 2, 2, 2}));
  EXPECT_EQ(vidcls::clip_rows(5, 5), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(vidcls::clip_rows(0, 2), (std::vector<int64_t>{0, 0}));
}

// The live cutter gives the records clip_windows gives a file, with the time spans of the frames.
TEST(ClipCutter, RecordsAreTheFilesWindowsWithTheirTimeSpans) {
  for (uint64_t hop : {2, 4, 6}) {
    SCOPED_TRACE("hop " + std::to_string(hop));
    vidcls::ClipCutter cutter;
    cutter.set_stream("s0");
    cutter.configure(4, hop);
    const uint64_t n = 15;
    std::vector<vidcls::ClipRecord> got;
    for (uint64_t i = 0; i < n; ++i) {
      EXPECT_EQ(cutter.next_sample(), i);
      vidcls::ClipRecord r;
      if (cutter.add(100 * i, 100 * i + 40, r)) got.push_back(r);
    }
    vidcls::ClipRecord last;
    if (cutter.finish(vidcls::EosPolicy::kPad, last)) got.push_back(last);
    vidcls::ClipRecord again;
    EXPECT_FALSE(cutter.finish(vidcls::EosPolicy::kPad, again)) << "sent once";
    const auto want = vidcls::clip_windows(n, 4, hop, vidcls::EosPolicy::kPad);
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].index, want[k].index);
      EXPECT_EQ(got[k].first_sample, want[k].first_sample);
      EXPECT_EQ(got[k].n_frames, want[k].n_frames);
      EXPECT_EQ(got[k].partial, want[k].partial);
      EXPECT_EQ(got[k].stream, "s0");
      EXPECT_EQ(got[k].object_id, vidcls::kWholeFrame);
      EXPECT_EQ(got[k].start, 100 * got[k].first_sample);
      EXPECT_EQ(got[k].end, 100 * (got[k].first_sample + got[k].n_frames - 1) + 40);
    }
    // Frames between clips (hop > T) are in none.
    EXPECT_EQ(cutter.in_a_clip(4), hop <= 4);
  }
}

TEST(ClipCutter, ResetStartsANewEpochAndRestartGoesBackToZero) {
  vidcls::ClipCutter cutter;
  cutter.configure(2, 2);
  vidcls::ClipRecord r;
  EXPECT_FALSE(cutter.add(0, 1, r));
  cutter.reset();
  EXPECT_EQ(cutter.epoch(), 1u);
  EXPECT_FALSE(cutter.add(10, 11, r));
  ASSERT_TRUE(cutter.add(20, 21, r));
  EXPECT_EQ(r.epoch, 1u);
  EXPECT_EQ(r.index, 0u);
  EXPECT_EQ(r.start, 10u);
  cutter.configure(3, 3);  // same epoch, from the next frame
  EXPECT_EQ(cutter.epoch(), 1u);
  EXPECT_EQ(cutter.sampled(), 0u);
  cutter.restart();
  EXPECT_EQ(cutter.epoch(), 0u);
}

}  // namespace
