// The rules of vidclsaction on made-up score sequences: where starts and ends are placed, what
// hysteresis, smoothing, min-duration and gaps do, and how streams and objects stay apart. The
// same rules on a real video and model are in test_action.cpp.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "gstvidclsactiontracker.h"

namespace {

using vidcls::gst::ActionEvent;
using vidcls::gst::ActionSettings;
using vidcls::gst::ActionTracker;
using vidcls::gst::ClipResult;
using vidcls::gst::EndReason;
using vidcls::gst::Smoothing;

constexpr GstClockTime kHop = 250 * GST_MSECOND;
constexpr GstClockTime kLength = GST_SECOND;  // overlapping clips, as clip-stride < clip-length

// Clip i of a stream: [i * hop, i * hop + length), midpoint i * hop + length / 2.
ClipResult clip(guint64 i, const std::map<std::string, float> &scores, gint64 object = -1,
                const std::string &stream = "s") {
  ClipResult r;
  r.stream_id = stream;
  r.object_id = object;
  r.clip_index = i;
  r.start = i * kHop;
  r.end = r.start + kLength;
  r.model = "m";
  gint id = 0;
  for (const auto &[label, score] : scores) {
    r.labels.push_back(label);
    r.scores.push_back(score);
    r.class_ids.push_back(id++);
  }
  return r;
}

GstClockTime mid(guint64 i) { return i * kHop + kLength / 2; }

// Runs the scores of label "a" (one clip each) through a tracker; EOS at the end if asked.
struct Decisions {
  std::vector<ActionEvent> events;
  std::vector<size_t> at;  // the clip each event was decided on (scores.size() for EOS)
  std::vector<ActionEvent> starts() const { return phase(GST_VIDCLS_ACTION_PHASE_START); }
  std::vector<ActionEvent> ends() const { return phase(GST_VIDCLS_ACTION_PHASE_END); }
  std::vector<ActionEvent> phase(GstVidclsActionPhase p) const {
    std::vector<ActionEvent> out;
    for (const auto &e : events)
      if (e.phase == p) out.push_back(e);
    return out;
  }
};

Decisions run(const std::vector<float> &a, const ActionSettings &s, bool eos = true) {
  ActionTracker tracker;
  Decisions out;
  for (size_t i = 0; i < a.size(); ++i) {
    for (auto &e : tracker.push(clip(i, {{"a", a[i]}, {"b", 1.f - a[i]}}), s)) {
      out.events.push_back(e);
      out.at.push_back(i);
    }
  }
  if (eos) {
    for (auto &e : tracker.finish(EndReason::kEos, s)) {
      out.events.push_back(e);
      out.at.push_back(a.size());
    }
  }
  return out;
}

ActionSettings only_a() {
  ActionSettings s;
  s.actions = {"a"};
  return s;
}

TEST(ActionTracker, StartIsPlacedWhereTheRawScoreRoseNotWhereTheSmoothedOneCrossed) {
  // Moving average of 3: 0.23 at clip 2, 0.50 at clip 3, 0.77 at clip 4 (>= 0.6): decided on
  // clip 4, placed before clip 2, the first of the run of raw scores >= off-threshold (0.4).
  const Decisions r = run({0.1f, 0.1f, 0.5f, 0.9f, 0.9f, 0.9f}, only_a(), false);
  ASSERT_EQ(r.events.size(), 1u);
  const ActionEvent &s = r.events[0];
  EXPECT_EQ(s.phase, GST_VIDCLS_ACTION_PHASE_START);
  EXPECT_EQ(r.at[0], 4u);
  EXPECT_EQ(s.start, (mid(1) + mid(2)) / 2);
  EXPECT_EQ(s.label, "a");
  EXPECT_EQ(s.class_id, 0);
  EXPECT_EQ(s.stream_id, "s");
  EXPECT_EQ(s.object_id, -1);
  EXPECT_EQ(s.model, "m");
  EXPECT_EQ(s.id, 0u);
  EXPECT_EQ(s.n_clips, 3u);  // clips 2..4 so far
  EXPECT_FLOAT_EQ(s.peak_score, 0.9f);
  EXPECT_NEAR(s.mean_score, (0.5 + 0.9 + 0.9) / 3, 1e-6);
}

TEST(ActionTracker, FirstClipOfTheStreamStartsAtItsOwnStart) {
  const Decisions r = run({0.9f, 0.9f, 0.9f}, only_a(), false);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.at[0], 0u);  // the average of what there is: one clip at 0.9
  EXPECT_EQ(r.events[0].start, 0u);
}

TEST(ActionTracker, EndIsPlacedAfterTheLastClipAtOffThresholdWithItsStatistics) {
  // Smoothed: clip 5 (0.9 0.7 0.1) 0.57, clip 6 (0.7 0.1 0.1) 0.30 < 0.4: decided on clip 6,
  // placed between clip 4 (the last >= 0.4) and clip 5.
  const Decisions r = run({0.9f, 0.9f, 0.8f, 0.9f, 0.7f, 0.1f, 0.1f, 0.1f}, only_a());
  ASSERT_EQ(r.events.size(), 2u);
  const ActionEvent &e = r.events[1];
  EXPECT_EQ(e.phase, GST_VIDCLS_ACTION_PHASE_END);
  EXPECT_EQ(r.at[1], 6u);
  EXPECT_EQ(e.reason, EndReason::kScore);
  EXPECT_EQ(e.end, (mid(4) + mid(5)) / 2);
  EXPECT_EQ(e.id, r.events[0].id);
  EXPECT_EQ(e.start, 0u);
  EXPECT_EQ(e.n_clips, 5u);  // the clips after the last one >= 0.4 are not the action's
  EXPECT_FLOAT_EQ(e.peak_score, 0.9f);
  EXPECT_NEAR(e.mean_score, (0.9 + 0.9 + 0.8 + 0.9 + 0.7) / 5, 1e-6);
}

TEST(ActionTracker, ADipInsideAnActionBelongsToIt) {
  // Clip 3 dips under off-threshold; the average stays above it, so the action goes on and the
  // dip counts in its statistics once the label is back.
  const Decisions r = run({0.9f, 0.9f, 0.9f, 0.2f, 0.9f, 0.9f}, only_a());
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[1].reason, EndReason::kEos);
  EXPECT_EQ(r.events[1].n_clips, 6u);
  EXPECT_FLOAT_EQ(r.events[1].peak_score, 0.9f);
  EXPECT_NEAR(r.events[1].mean_score, (5 * 0.9 + 0.2) / 6, 1e-6);
}

TEST(ActionTracker, EndOfStreamEndsAnOpenActionAtTheLastClipsEnd) {
  const Decisions r = run({0.1f, 0.9f, 0.9f, 0.9f, 0.9f}, only_a());
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[1].reason, EndReason::kEos);
  EXPECT_EQ(r.events[1].end, 4 * kHop + kLength);
  EXPECT_EQ(r.at[1], 5u);
}

// Scores that wander around 0.5 while the label is held, as a real model's do on motion it is
// unsure of (clips straddling a change, a slow part).
const std::vector<float> kWobbly = {0.1f,  0.7f, 0.45f, 0.65f, 0.48f, 0.7f, 0.42f,
                                    0.66f, 0.5f, 0.1f,  0.1f,  0.1f,  0.1f};

TEST(ActionTracker, WithoutHysteresisAWobblingScoreStartsManyActions) {
  ActionSettings s = only_a();
  s.window = 1;
  s.on_threshold = s.off_threshold = 0.6;
  EXPECT_EQ(run(kWobbly, s).starts().size(), 4u);
}

TEST(ActionTracker, HysteresisHoldsOneActionThroughTheWobble) {
  ActionSettings s = only_a();
  s.window = 1;
  s.on_threshold = 0.6;
  s.off_threshold = 0.4;
  const Decisions r = run(kWobbly, s);
  ASSERT_EQ(r.starts().size(), 1u);
  ASSERT_EQ(r.ends().size(), 1u);
  EXPECT_EQ(r.starts()[0].start, (mid(0) + mid(1)) / 2);
  EXPECT_EQ(r.ends()[0].end, (mid(8) + mid(9)) / 2);
}

TEST(ActionTracker, SmoothingAloneAlsoHoldsIt) {
  ActionSettings s = only_a();
  s.window = 3;
  s.on_threshold = s.off_threshold = 0.5;
  EXPECT_EQ(run(kWobbly, s).starts().size(), 1u);
}

TEST(ActionTracker, ABurstShorterThanMinDurationPostsNothing) {
  const std::vector<float> burst = {0.1f, 0.1f, 0.9f, 0.9f, 0.9f, 0.1f, 0.1f, 0.1f, 0.1f};
  ActionSettings s = only_a();
  const Decisions without = run(burst, s);
  ASSERT_EQ(without.starts().size(), 1u);
  ASSERT_EQ(without.ends().size(), 1u);
  const GstClockTime length = without.ends()[0].end - without.starts()[0].start;
  EXPECT_EQ(length, 3 * kHop);

  s.min_duration = length + 1;
  EXPECT_TRUE(run(burst, s).events.empty());
  s.min_duration = length;
  EXPECT_EQ(run(burst, s).events.size(), 2u);
}

TEST(ActionTracker, StartIsAnnouncedOnceTheActionHasLastedMinDuration) {
  ActionSettings s = only_a();
  s.min_duration = 2 * kHop;
  // Crossing at clip 1 (0.1 0.9: 0.5 < 0.6; clip 2: 0.63): start at the middle of clips 0 and 1;
  // middle of clip 3 is 2.5 hops later: announced on clip 3, not before.
  const Decisions r = run({0.1f, 0.9f, 0.9f, 0.9f, 0.9f}, s, false);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.at[0], 3u);
  EXPECT_EQ(r.events[0].start, (mid(0) + mid(1)) / 2);
}

TEST(ActionTracker, ActionIdsCountReportedActionsOnly) {
  ActionSettings s = only_a();
  s.min_duration = 4 * kHop;
  // a flicker (dropped), then a long action: the long one is action 0
  const Decisions r =
      run({0.9f, 0.9f, 0.1f, 0.1f, 0.1f, 0.1f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f, 0.9f}, s);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].id, 0u);
  EXPECT_EQ(r.events[1].id, 0u);
  EXPECT_EQ(r.events[0].start, (mid(5) + mid(6)) / 2);
}

TEST(ActionTracker, ExponentialSmoothingUsesAlphaFromTheWindow) {
  ActionSettings s = only_a();
  s.smoothing = Smoothing::kExponential;
  s.window = 3;  // alpha 0.5: 0.1, 0.5 (0.9), 0.7 (0.9): crosses 0.6 at clip 2
  Decisions r = run({0.1f, 0.9f, 0.9f, 0.9f}, s, false);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.at[0], 2u);
  s.window = 7;  // alpha 0.25: 0.1, 0.3, 0.45, 0.5625, 0.646875: clip 4
  r = run({0.1f, 0.9f, 0.9f, 0.9f, 0.9f}, s, false);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.at[0], 4u);
  EXPECT_EQ(r.events[0].start, (mid(0) + mid(1)) / 2);  // the raw scores place it all the same
}

TEST(ActionTracker, ATransitionEndsTheOldActionBeforeStartingTheNew) {
  // "b" is 1 - a: when a falls, b rises; with both followed the end of a comes first.
  ActionSettings s;
  const Decisions r = run({0.9f, 0.9f, 0.9f, 0.1f, 0.1f, 0.1f, 0.1f}, s);
  ASSERT_GE(r.events.size(), 3u);
  EXPECT_EQ(r.events[0].label, "a");
  EXPECT_EQ(r.events[1].label, "a");
  EXPECT_EQ(r.events[1].phase, GST_VIDCLS_ACTION_PHASE_END);
  EXPECT_EQ(r.events[2].label, "b");
  EXPECT_EQ(r.events[2].phase, GST_VIDCLS_ACTION_PHASE_START);
  EXPECT_EQ(r.at[1], r.at[2]);
  EXPECT_EQ(r.events[1].end, r.events[2].start);  // both halfway between clips 2 and 3
  EXPECT_EQ(r.events[2].id, 1u);
}

TEST(ActionTracker, LabelsOutsideTheTopKScoreZero) {
  ActionTracker tracker;
  ActionSettings s;
  std::vector<ActionEvent> events;
  for (guint64 i = 0; i < 3; ++i) {
    auto e = tracker.push(clip(i, {{"a", 0.9f}}), s);
    events.insert(events.end(), e.begin(), e.end());
  }
  for (guint64 i = 3; i < 6; ++i) {  // "a" left the top-k: nothing above the threshold
    auto e = tracker.push(clip(i, {}), s);
    events.insert(events.end(), e.begin(), e.end());
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].reason, EndReason::kScore);
  EXPECT_EQ(events[1].end, (mid(2) + mid(3)) / 2);
}

TEST(ActionTracker, OnlyListedActionsCount) {
  ActionSettings s;
  s.actions = {"b"};
  const Decisions r = run({0.9f, 0.9f, 0.9f, 0.1f, 0.1f, 0.1f}, s);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[0].label, "b");
  EXPECT_EQ(r.events[1].label, "b");
}

TEST(ActionTracker, AGapEndsOpenActionsAndRestartsTheSmoothing) {
  ActionTracker tracker;
  ActionSettings s = only_a();
  std::vector<ActionEvent> events;
  for (guint64 i = 0; i < 4; ++i) tracker.push(clip(i, {{"a", 0.9f}}), s);
  // clip 12 starts 3 s after clip 3 ended (max-gap 1 s)
  events = tracker.push(clip(12, {{"a", 0.5f}}), s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].reason, EndReason::kGap);
  EXPECT_EQ(events[0].end, 3 * kHop + kLength);
  // A fresh average: 0.5 alone is under on-threshold, where the old window would have said 0.77.
  EXPECT_TRUE(tracker.push(clip(13, {{"a", 0.5f}}), s).empty());

  s.max_gap = 0;  // gaps end nothing
  ActionTracker patient;
  for (guint64 i = 0; i < 4; ++i) patient.push(clip(i, {{"a", 0.9f}}), s);
  EXPECT_TRUE(patient.push(clip(12, {{"a", 0.9f}}), s).empty());
}

TEST(ActionTracker, AClipBeforeTheLastOneIsADiscontinuity) {
  ActionTracker tracker;
  ActionSettings s = only_a();
  for (guint64 i = 10; i < 14; ++i) tracker.push(clip(i, {{"a", 0.9f}}), s);
  const auto events = tracker.push(clip(2, {{"a", 0.9f}}), s);  // a seek back without flush
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].reason, EndReason::kGap);
  EXPECT_EQ(events[1].phase, GST_VIDCLS_ACTION_PHASE_START);
  EXPECT_EQ(events[1].start, 2 * kHop);
}

TEST(ActionTracker, ASecondModelsResultForTheSameClipIsNotCountedTwice) {
  ActionTracker tracker;
  ActionSettings s = only_a();
  tracker.push(clip(0, {{"a", 0.1f}}), s);
  tracker.push(clip(1, {{"a", 0.9f}}), s);
  tracker.push(clip(1, {{"a", 0.9f}}), s);
  EXPECT_EQ(tracker.duplicate_clips(), 1u);
  EXPECT_EQ(tracker.clips_used(), 2u);
}

TEST(ActionTracker, ObjectsHaveTheirOwnActions) {
  ActionTracker tracker;
  ActionSettings s = only_a();
  std::vector<ActionEvent> events;
  for (guint64 i = 0; i < 6; ++i) {
    for (gint64 object : {1, 2}) {
      const float a = object == 1 ? 0.9f : (i < 3 ? 0.1f : 0.9f);
      auto e = tracker.push(clip(i, {{"a", a}}, object), s);
      events.insert(events.end(), e.begin(), e.end());
    }
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].object_id, 1);
  EXPECT_EQ(events[0].start, 0u);
  EXPECT_EQ(events[1].object_id, 2);
  EXPECT_EQ(events[1].start, (mid(2) + mid(3)) / 2);
}

TEST(ActionTracker, AnObjectWithoutClipsForMaxGapEnds) {
  ActionTracker tracker;
  ActionSettings s = only_a();
  for (guint64 i = 0; i < 4; ++i) {
    tracker.push(clip(i, {{"a", 0.9f}}, 1), s);
    tracker.push(clip(i, {{"a", 0.1f}}, 2), s);
  }
  std::vector<ActionEvent> events;
  for (guint64 i = 4; i < 20 && events.empty(); ++i)  // object 1 left the picture
    events = tracker.push(clip(i, {{"a", 0.1f}}, 2), s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].object_id, 1);
  EXPECT_EQ(events[0].reason, EndReason::kGap);
  EXPECT_EQ(events[0].end, 3 * kHop + kLength);
}

TEST(ActionTracker, AnotherStreamAfterMaxGapOfRunningTimeEndsTheFirstOnesActions) {
  // Two files one after the other (concat): each stream's PTS start at 0, the running time of
  // the second follows the first's (here from 2 s on; the first's last clip ends at 1.75 s).
  const GstClockTime second_base = 2 * GST_SECOND;
  ActionTracker tracker([&](const std::string &stream, GstClockTime pts) {
    return stream == "one" ? pts : second_base + pts;
  });
  ActionSettings s = only_a();
  for (guint64 i = 0; i < 4; ++i) tracker.push(clip(i, {{"a", 0.9f}}, -1, "one"), s);
  // 2.0 s and 2.5 s of running time: within max-gap (1 s) of 1.75 s
  EXPECT_TRUE(tracker.push(clip(0, {{"a", 0.1f}}, -1, "two"), s).empty());
  EXPECT_TRUE(tracker.push(clip(2, {{"a", 0.1f}}, -1, "two"), s).empty());
  const auto events = tracker.push(clip(4, {{"a", 0.1f}}, -1, "two"), s);  // 3.0 s
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].stream_id, "one");
  EXPECT_EQ(events[0].reason, EndReason::kStreamChange);
  EXPECT_EQ(events[0].end, 3 * kHop + kLength);
  EXPECT_EQ(events[0].end_running_time, 3 * kHop + kLength);
}

TEST(ActionTracker, StreamsSideBySideKeepTheirActions) {
  // A funnel of two live cameras: running times interleave, nothing ends the other's action.
  ActionTracker tracker([](const std::string &, GstClockTime pts) { return pts; });
  ActionSettings s = only_a();
  std::vector<ActionEvent> events;
  for (guint64 i = 0; i < 20; ++i) {
    for (const char *stream : {"cam0", "cam1"}) {
      auto e = tracker.push(clip(i, {{"a", 0.9f}}, -1, stream), s);
      events.insert(events.end(), e.begin(), e.end());
    }
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].stream_id, "cam0");
  EXPECT_EQ(events[1].stream_id, "cam1");
  EXPECT_EQ(events[0].start_running_time, 0u);
  const auto ends = tracker.finish(EndReason::kFlush, s);
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0].reason, EndReason::kFlush);
  EXPECT_EQ(ends[0].end_running_time, 19 * kHop + kLength);
}

TEST(ActionTracker, ClipsWithoutTimestampsDecideNothing) {
  ActionTracker tracker;
  ActionSettings s;
  ClipResult r = clip(0, {{"a", 0.9f}});
  r.start = r.end = GST_CLOCK_TIME_NONE;
  EXPECT_TRUE(tracker.push(r, s).empty());
  EXPECT_EQ(tracker.untimed_clips(), 1u);
  // a clip cut across two files of a concat: it starts in the first, ends in the second
  r = clip(0, {{"a", 0.9f}});
  r.start = 14 * GST_SECOND;
  EXPECT_TRUE(tracker.push(r, s).empty());
  EXPECT_EQ(tracker.reversed_clips(), 1u);
  EXPECT_EQ(tracker.untimed_clips(), 1u);
  EXPECT_TRUE(tracker.finish(EndReason::kEos, s).empty());
}

TEST(ActionTracker, ActionListIsTrimmed) {
  EXPECT_EQ(vidcls::gst::parse_action_list(" wave, clap ,,wave"),
            (std::vector<std::string>{"wave", "clap"}));
  EXPECT_TRUE(vidcls::gst::parse_action_list(nullptr).empty());
  EXPECT_TRUE(vidcls::gst::parse_action_list("").empty());
}

}  // namespace
