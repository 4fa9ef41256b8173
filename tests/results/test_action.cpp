// vidclsaction as an element, in a GstHarness fed with classification metas and events: what
// goes downstream (action metas on the deciding buffers, events where no buffer follows, the
// results forwarded), what goes on the bus (messages with the documented fields, warnings and
// errors a user can act on), and the counters. Rules on real video: test_action_video.cpp.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "action_test_env.h"
#include "gstvidclsevents.h"
#include "gstvidclsmeta.h"

namespace {

using action_test::BusLog;
using vidcls::gst::ActionEvent;
using vidcls::gst::EndReason;

constexpr GstClockTime kHop = 250 * GST_MSECOND;
constexpr GstClockTime kLength = GST_SECOND;
constexpr const char *kCaps = "video/x-raw,format=GRAY8,width=4,height=4,framerate=4/1";

using Scores = std::map<std::string, float>;

GstVidclsClip clip_of(guint64 i, const char *stream) {
  GstVidclsClip clip;
  clip.stream_id = const_cast<gchar *>(stream);
  clip.object_id = -1;
  clip.index = i;
  clip.start = i * kHop;
  clip.end = i * kHop + kLength;
  clip.partial = FALSE;
  return clip;
}

// The buffer that completed clip i (at its end), carrying the clip's result.
GstBuffer *result_buffer(guint64 i, const Scores &scores, const char *stream = "s") {
  GstBuffer *buf = gst_buffer_new_allocate(nullptr, 16, nullptr);
  gst_buffer_memset(buf, 0, static_cast<guint8>(i), 16);
  GST_BUFFER_PTS(buf) = i * kHop + kLength;
  GST_BUFFER_DURATION(buf) = kHop;
  std::vector<const gchar *> labels;
  std::vector<gfloat> values;
  std::vector<gint> ids;
  for (const auto &[label, score] : scores) {
    labels.push_back(label.c_str());
    values.push_back(score);
    ids.push_back(static_cast<gint>(ids.size()));
  }
  const GstVidclsClip clip = clip_of(i, stream);
  gst_buffer_add_vidcls_classification_meta(buf, &clip, "m", labels.size(), labels.data(),
                                            values.data(), ids.data());
  return buf;
}

// The "vidcls-classification" event an inference element sends for a clip no buffer carries.
GstEvent *result_event(guint64 i, const Scores &scores) {
  GstStructure *s =
      gst_structure_new("vidcls-classification", "stream-id", G_TYPE_STRING, "s", "object-id",
                        G_TYPE_INT64, (gint64)-1, "clip-index", G_TYPE_UINT64, i, "start",
                        G_TYPE_UINT64, i * kHop, "end", G_TYPE_UINT64, i * kHop + kLength,
                        "partial", G_TYPE_BOOLEAN, FALSE, "model", G_TYPE_STRING, "m", nullptr);
  GValue labels = G_VALUE_INIT, values = G_VALUE_INIT;
  g_value_init(&labels, GST_TYPE_ARRAY);
  g_value_init(&values, GST_TYPE_ARRAY);
  for (const auto &[label, score] : scores) {
    GValue l = G_VALUE_INIT, v = G_VALUE_INIT;
    g_value_init(&l, G_TYPE_STRING);
    g_value_set_string(&l, label.c_str());
    gst_value_array_append_and_take_value(&labels, &l);
    g_value_init(&v, G_TYPE_DOUBLE);
    g_value_set_double(&v, score);
    gst_value_array_append_and_take_value(&values, &v);
  }
  gst_structure_take_value(s, "labels", &labels);
  gst_structure_take_value(s, "scores", &values);
  return vidcls::gst::result_event_new(s);
}

struct Harness {
  GstHarness *h;
  GstBus *bus;
  explicit Harness(const std::string &props = "") {
    h = gst_harness_new_parse(("vidclsaction " + props).c_str());
    bus = gst_bus_new();
    gst_element_set_bus(h->element, bus);
  }
  ~Harness() {
    gst_harness_teardown(h);
    gst_object_unref(bus);
  }
  GstElement *element() {
    // gst_harness_new_parse wraps the element in a bin
    GstElement *e = gst_bin_get_by_name(GST_BIN(h->element), "action");
    return e != nullptr ? e : GST_ELEMENT(gst_object_ref(h->element));
  }
  // Pushes the clips' buffers; returns the action metas each output buffer carries.
  std::vector<std::vector<ActionEvent>> push(guint64 first, const std::vector<float> &a) {
    std::vector<std::vector<ActionEvent>> out;
    for (size_t k = 0; k < a.size(); ++k) {
      GstBuffer *buf = gst_harness_push_and_pull(h, result_buffer(first + k, {{"a", a[k]}}));
      EXPECT_NE(buf, nullptr);
      if (buf == nullptr) break;
      EXPECT_NE(gst_buffer_get_vidcls_classification_meta(buf), nullptr)
          << "the classification went missing";
      out.push_back(vidcls::gst::actions_of(buf));
      gst_buffer_unref(buf);
    }
    return out;
  }
  // The vidcls result events that reached downstream so far, and in which order around the
  // serialized events we care about (EOS, FLUSH_STOP).
  std::vector<std::string> events() {
    std::vector<std::string> out;
    while (GstEvent *e = gst_harness_try_pull_event(h)) {
      if (const GstStructure *s = vidcls::gst::result_event_structure(e)) {
        ActionEvent a;
        std::string name = gst_structure_get_name(s);
        if (vidcls::gst::action_from_structure(s, &a) && a.phase == GST_VIDCLS_ACTION_PHASE_END)
          name += std::string(" ") + vidcls::gst::end_reason_name(a.reason);
        out.push_back(name);
      } else if (GST_EVENT_TYPE(e) == GST_EVENT_EOS || GST_EVENT_TYPE(e) == GST_EVENT_FLUSH_STOP) {
        out.push_back(GST_EVENT_TYPE_NAME(e));
      }
      gst_event_unref(e);
    }
    return out;
  }
};

std::vector<ActionEvent> actions_in(const BusLog &log) {
  std::vector<ActionEvent> out;
  for (auto *s : log.messages) {
    ActionEvent a;
    if (vidcls::gst::action_from_structure(s, &a)) out.push_back(a);
  }
  return out;
}

TEST(VidclsAction, DecisionsGoOnTheDecidingBuffersAndOnTheBus) {
  Harness t("name=action");
  gst_harness_set_src_caps_str(t.h, kCaps);
  // "a" held from clip 1 on: the average of 3 reaches 0.6 at clip 2; it falls under 0.4 at 5
  const auto metas = t.push(0, {0.1f, 0.9f, 0.9f, 0.9f, 0.1f, 0.1f, 0.1f});
  ASSERT_EQ(metas.size(), 7u);
  for (size_t i = 0; i < metas.size(); ++i)
    EXPECT_EQ(metas[i].size(), (i == 2 || i == 5) ? 1u : 0u) << "buffer " << i;
  const ActionEvent &start = metas[2].at(0), &end = metas[5].at(0);
  EXPECT_EQ(start.phase, GST_VIDCLS_ACTION_PHASE_START);
  EXPECT_EQ(start.label, "a");
  EXPECT_EQ(start.start, kHop / 2 + kLength / 2);  // halfway between the middles of clips 0, 1
  EXPECT_EQ(end.phase, GST_VIDCLS_ACTION_PHASE_END);
  EXPECT_EQ(end.id, start.id);
  EXPECT_EQ(end.end, 3 * kHop + kHop / 2 + kLength / 2);  // between clips 3 and 4

  BusLog log;
  log.drain(t.bus);
  const auto starts = log.named("vidcls-action-start");
  const auto ends = log.named("vidcls-action-end");
  ASSERT_EQ(starts.size(), 1u);
  ASSERT_EQ(ends.size(), 1u);
  // the fields, named as in "vidcls-classification" where they mean the same
  const GstStructure *s = starts[0], *e = ends[0];
  EXPECT_STREQ(gst_structure_get_string(s, "label"), "a");
  EXPECT_STREQ(gst_structure_get_string(s, "stream-id"), "s");
  EXPECT_STREQ(gst_structure_get_string(s, "model"), "m");
  guint64 v = 0;
  gint64 object = 0;
  gint class_id = -2;
  guint clips = 0;
  gdouble peak = 0, mean = 0;
  EXPECT_TRUE(gst_structure_get_int64(s, "object-id", &object) && object == -1);
  EXPECT_TRUE(gst_structure_get_int(s, "class-id", &class_id) && class_id == 0);
  EXPECT_TRUE(gst_structure_get_uint64(s, "start", &v) && v == start.start);
  EXPECT_TRUE(gst_structure_get_uint64(s, "start-running-time", &v) && v == start.start);
  EXPECT_FALSE(gst_structure_has_field(s, "end"));
  EXPECT_TRUE(gst_structure_get_uint64(e, "end", &v) && v == end.end);
  EXPECT_TRUE(gst_structure_get_uint64(e, "end-running-time", &v) && v == end.end);
  EXPECT_TRUE(gst_structure_get_uint64(e, "action-id", &v) && v == start.id);
  EXPECT_STREQ(gst_structure_get_string(e, "reason"), "score");
  EXPECT_TRUE(gst_structure_get_uint(e, "clips", &clips));
  EXPECT_EQ(clips, 3u);
  EXPECT_TRUE(gst_structure_get_double(e, "peak-score", &peak));
  EXPECT_TRUE(gst_structure_get_double(e, "mean-score", &mean));
  EXPECT_NEAR(peak, 0.9, 1e-6);
  EXPECT_NEAR(mean, 0.9, 1e-6);

  GstElement *action = t.element();
  guint64 started = 0, ended = 0;
  g_object_get(action, "actions-started", &started, "actions-ended", &ended, nullptr);
  EXPECT_EQ(started, 1u);
  EXPECT_EQ(ended, 1u);
  gst_object_unref(action);
}

TEST(VidclsAction, TheVideoPassesUntouched) {
  Harness t;
  gst_harness_set_src_caps_str(t.h, kCaps);
  GstBuffer *in = result_buffer(0, {{"a", 0.9f}});
  GstMapInfo map;
  ASSERT_TRUE(gst_buffer_map(in, &map, GST_MAP_READ));
  const guint8 *memory = map.data;
  gst_buffer_unmap(in, &map);
  GstBuffer *out = gst_harness_push_and_pull(t.h, in);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(GST_BUFFER_PTS(out), kLength);
  ASSERT_TRUE(gst_buffer_map(out, &map, GST_MAP_READ));
  EXPECT_EQ(map.data, memory) << "the frame was copied";
  EXPECT_EQ(map.size, 16u);
  gst_buffer_unmap(out, &map);
  EXPECT_EQ(vidcls::gst::actions_of(out).size(), 1u);
  gst_buffer_unref(out);
}

TEST(VidclsAction, ResultEventsAreForwardedAndTheirDecisionsFollowThem) {
  Harness t;
  gst_harness_set_src_caps_str(t.h, kCaps);
  t.push(0, {0.1f, 0.1f});
  t.events();
  // results no buffer carried (an inference element's end-of-stream clip, async results)
  for (guint64 i = 2; i < 5; ++i) gst_harness_push_event(t.h, result_event(i, {{"a", 0.9f}}));
  // clip 3 brings the average to 0.63: its decision follows it, before clip 4's result
  EXPECT_EQ(t.events(), (std::vector<std::string>{"vidcls-classification", "vidcls-classification",
                                                  "vidcls-action-start", "vidcls-classification"}));
  gst_harness_push_event(t.h, gst_event_new_eos());
  EXPECT_EQ(t.events(), (std::vector<std::string>{"vidcls-action-end eos", "eos"}));
}

TEST(VidclsAction, EndOfStreamEndsOpenActionsBeforeEos) {
  Harness t;
  gst_harness_set_src_caps_str(t.h, kCaps);
  t.push(0, {0.9f, 0.9f, 0.9f});
  t.events();
  gst_harness_push_event(t.h, gst_event_new_eos());
  EXPECT_EQ(t.events(), (std::vector<std::string>{"vidcls-action-end eos", "eos"}));
  BusLog log;
  log.drain(t.bus);
  const auto actions = actions_in(log);
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[1].reason, EndReason::kEos);
  EXPECT_EQ(actions[1].end, 2 * kHop + kLength);  // the last clip's end
  EXPECT_EQ(actions[1].n_clips, 3u);
}

TEST(VidclsAction, AFlushEndsOpenActionsAfterFlushStopAndStartsAfresh) {
  Harness t;
  gst_harness_set_src_caps_str(t.h, kCaps);
  t.push(0, {0.9f, 0.9f, 0.9f});
  t.events();
  gst_harness_push_event(t.h, gst_event_new_flush_start());
  gst_harness_push_event(t.h, gst_event_new_flush_stop(TRUE));
  EXPECT_EQ(t.events(), (std::vector<std::string>{"flush-stop", "vidcls-action-end flush"}));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  gst_harness_push_event(t.h, gst_event_new_segment(&seg));
  // after a seek the clip indices restart and the times jump: a new action, from scratch
  const auto metas = t.push(40, {0.9f});
  ASSERT_EQ(metas.size(), 1u);
  ASSERT_EQ(metas[0].size(), 1u);
  EXPECT_EQ(metas[0][0].start, 40 * kHop);
  EXPECT_EQ(metas[0][0].id, 1u);
}

TEST(VidclsAction, RunningTimesFollowTheSegment) {
  Harness t;
  gst_harness_set_src_caps_str(t.h, kCaps);
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  seg.base = 10 * GST_SECOND;
  seg.start = seg.time = 0;
  gst_harness_push_event(t.h, gst_event_new_segment(&seg));
  t.push(0, {0.9f});
  BusLog log;
  log.drain(t.bus);
  const auto actions = actions_in(log);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].start, 0u);
  EXPECT_EQ(actions[0].start_running_time, 10 * GST_SECOND);
}

TEST(VidclsAction, AStreamThatGaveWayEndsInItsOwnRunningTime) {
  // concat: file "one" from running time 0, then file "two" from 2 s (each with PTS from 0)
  Harness t;
  gst_harness_set_src_caps_str(t.h, kCaps);
  gst_harness_push_event(t.h, gst_event_new_stream_start("one"));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  gst_harness_push_event(t.h, gst_event_new_segment(&seg));
  for (guint64 i = 0; i < 4; ++i)
    gst_buffer_unref(gst_harness_push_and_pull(t.h, result_buffer(i, {{"a", 0.9f}}, "one")));
  gst_harness_push_event(t.h, gst_event_new_stream_start("two"));
  seg.base = 2 * GST_SECOND;
  gst_harness_push_event(t.h, gst_event_new_segment(&seg));
  std::vector<ActionEvent> ended;
  for (guint64 i = 0; i < 8 && ended.empty(); ++i) {
    GstBuffer *out = gst_harness_push_and_pull(t.h, result_buffer(i, {{"b", 0.1f}}, "two"));
    for (const auto &a : vidcls::gst::actions_of(out))
      if (a.phase == GST_VIDCLS_ACTION_PHASE_END) ended.push_back(a);
    gst_buffer_unref(out);
  }
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].stream_id, "one");
  EXPECT_EQ(ended[0].end, 3 * kHop + kLength);
  BusLog log;
  log.drain(t.bus);
  const auto actions = actions_in(log);  // the meta has no reason, the message has
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[1].reason, EndReason::kStreamChange);
  EXPECT_EQ(actions[1].end_running_time, 3 * kHop + kLength) << "taken from two's segment";
}

TEST(VidclsAction, NoClassificationsNoActions) {
  Harness t;
  gst_harness_set_src_caps_str(t.h, kCaps);
  for (int i = 0; i < 10; ++i) {
    GstBuffer *buf = gst_buffer_new_allocate(nullptr, 16, nullptr);
    GST_BUFFER_PTS(buf) = i * kHop;
    GstBuffer *out = gst_harness_push_and_pull(t.h, buf);
    ASSERT_NE(out, nullptr);
    EXPECT_TRUE(vidcls::gst::actions_of(out).empty());
    gst_buffer_unref(out);
  }
  gst_harness_push_event(t.h, gst_event_new_eos());
  EXPECT_EQ(t.events(), (std::vector<std::string>{"eos"}));
  BusLog log;
  log.drain(t.bus);
  EXPECT_TRUE(log.messages.empty());
  EXPECT_TRUE(log.warnings.empty());
}

void count_notify(GObject *, GParamSpec *, gpointer n) { ++*static_cast<int *>(n); }

TEST(VidclsAction, CountersAreAnnouncedOnlyWhenNotSilent) {
  for (bool silent : {true, false}) {
    Harness t(std::string("name=action silent=") + (silent ? "true" : "false"));
    GstElement *action = t.element();
    int notified = 0;
    g_signal_connect(action, "notify::actions-started", G_CALLBACK(count_notify), &notified);
    gst_harness_set_src_caps_str(t.h, kCaps);
    t.push(0, {0.9f, 0.9f});
    guint64 started = 0;
    g_object_get(action, "actions-started", &started, nullptr);
    EXPECT_EQ(started, 1u);
    EXPECT_EQ(notified, silent ? 0 : 1);
    gst_object_unref(action);
  }
}

TEST(VidclsAction, OffAboveOnIsRefusedAtStartWithWhatToDo) {
  GError *err = nullptr;
  GstElement *pipeline = gst_parse_launch(
      "fakesrc num-buffers=3 ! vidclsaction on-threshold=0.5 off-threshold=0.8 ! fakesink", &err);
  ASSERT_NE(pipeline, nullptr) << (err ? err->message : "");
  BusLog log;
  action_test::run_pipeline(pipeline, log, 30);
  gst_object_unref(pipeline);
  EXPECT_NE(log.error.find("off-threshold (0.800) is above on-threshold (0.500)"),
            std::string::npos)
      << log.error;
  EXPECT_NE(log.error_debug.find("Set off-threshold at or below on-threshold"), std::string::npos)
      << log.error_debug;
}

TEST(VidclsAction, OffAboveOnWhilePlayingIsWarnedOnceAndTakenAsOn) {
  Harness t("name=action");
  gst_harness_set_src_caps_str(t.h, kCaps);
  GstElement *action = t.element();
  g_object_set(action, "on-threshold", 0.6, "off-threshold", 0.9, "window", 1u, nullptr);
  gst_object_unref(action);
  // 0.7 stays above 0.6 (above the 0.9 asked for): a single threshold at 0.6
  const auto metas = t.push(0, {0.7f, 0.7f, 0.5f, 0.7f});
  EXPECT_EQ(metas[0].size(), 1u);
  EXPECT_EQ(metas[1].size(), 0u);
  EXPECT_EQ(metas[2].size(), 1u);
  EXPECT_EQ(metas[3].size(), 1u);
  BusLog log;
  log.drain(t.bus);
  ASSERT_EQ(log.warnings.size(), 1u);
  EXPECT_NE(log.warnings[0].find("off-threshold (0.900) is above on-threshold (0.600)"),
            std::string::npos)
      << log.warnings[0];
}

TEST(VidclsAction, AnActionNoResultNamesIsWarnedAboutWithTheLabelsSeen) {
  Harness t("actions=\"a, jump\"");
  gst_harness_set_src_caps_str(t.h, kCaps);
  t.push(0, {0.9f, 0.9f});
  gst_harness_push_event(t.h, gst_event_new_eos());
  BusLog log;
  log.drain(t.bus);
  ASSERT_EQ(log.warnings.size(), 1u);
  EXPECT_NE(log.warnings[0].find("actions= lists 'jump', which no classification named; the "
                                 "results named: a."),
            std::string::npos)
      << log.warnings[0];
  EXPECT_NE(log.warnings[0].find("raise top-k"), std::string::npos);
  EXPECT_EQ(actions_in(log).size(), 2u);  // "a" still counts
}

TEST(VidclsAction, ClipsWithoutTimestampsAreWarnedAboutOnce) {
  Harness t;
  gst_harness_set_src_caps_str(t.h, kCaps);
  for (int i = 0; i < 3; ++i) {
    GstBuffer *buf = gst_buffer_new_allocate(nullptr, 16, nullptr);
    GstVidclsClip clip = clip_of(i, "s");
    clip.start = clip.end = GST_CLOCK_TIME_NONE;
    const gchar *labels[] = {"a"};
    const gfloat scores[] = {0.9f};
    gst_buffer_add_vidcls_classification_meta(buf, &clip, "m", 1, labels, scores, nullptr);
    GstBuffer *out = gst_harness_push_and_pull(t.h, buf);
    EXPECT_TRUE(vidcls::gst::actions_of(out).empty());
    gst_buffer_unref(out);
  }
  BusLog log;
  log.drain(t.bus);
  ASSERT_EQ(log.warnings.size(), 1u);
  EXPECT_NE(log.warnings[0].find("without timestamps"), std::string::npos) << log.warnings[0];
  EXPECT_TRUE(log.messages.empty());
}

}  // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new action_test::GstEnvironment);
  return RUN_ALL_TESTS();
}
