// vidclsclipper inference-region=roi-list through GstHarness: each tracked object's clips are the
// object crops of its boxes (the same function training cuts them with), with the track id in
// the clip record; filters, the end-of-stream clips, and metas that try to break it (boxes
// outside the frame or without area, an id that changes on every frame) never grow it past
// max-objects. And through vividinfer: one result per object clip, with its object id and box,
// the clips of one frame in one forward pass.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "gst_test_clip.h"
#include "gst_test_models.h"
#include "gstvidclsmeta.h"
#include "vidcls/object_crop.h"

#ifdef VIDCLS_HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

namespace {

constexpr int kW = 80, kH = 60;
constexpr GstClockTime kFrame = GST_SECOND / 10;
const char *kCaps = "video/x-raw,format=RGB,width=80,height=60,framerate=10/1";

struct Object {
  gint id;
  guint x, y, w, h;
  const char *type = "person";
};

// A frame of random RGB pixels with the given objects as ROI metas (track id as the meta's id;
// as DL Streamer's object_id parameter when `param_id` is set).
GstBuffer *frame_with(const torch::Tensor &pixels, int k, const std::vector<Object> &objects,
                      bool param_id = false, GstClockTime frame = kFrame) {
  GstBuffer *buf = gst_buffer_new_memdup(pixels.data_ptr(), kW * kH * 3);
  GST_BUFFER_PTS(buf) = k * frame;
  GST_BUFFER_DURATION(buf) = frame;
  for (const auto &o : objects) {
    auto *m = gst_buffer_add_video_region_of_interest_meta(buf, o.type, o.x, o.y, o.w, o.h);
    if (param_id) {
      m->id = 1000 + o.id;  // the parameter wins
      gst_video_region_of_interest_meta_add_param(
          m, gst_structure_new("object_id", "id", G_TYPE_INT, o.id, nullptr));
    } else {
      m->id = o.id;
    }
  }
  return buf;
}

GstHarness *clipper(const std::string &properties) {
  GstHarness *h = gst_harness_new_parse(
      ("vidclsclipper inference-region=roi-list clip-length=4 clip-stride=2 width=16 height=16 " +
       properties)
          .c_str());
  gst_harness_set_src_caps_str(h, kCaps);
  return h;
}

vidcls::ClipSpec spec16() {
  vidcls::ClipSpec s;
  s.frames = 4;
  s.hop = 2;
  s.width = s.height = 16;
  return s;
}

guint64 object_stat(GstHarness *h, const char *field) {
  GstStructure *s = nullptr;
  GstElement *clipper = gst_harness_find_element(h, "vidclsclipper");
  g_object_get(clipper, "object-stats", &s, nullptr);
  gst_object_unref(clipper);
  guint64 v = 0;
  EXPECT_TRUE(s && gst_structure_get_uint64(s, field, &v)) << field;
  if (s) gst_structure_free(s);
  return v;
}

TEST(ObjectClips, EachObjectsClipsAreTheCropsOfItsBoxes) {
  for (const bool param_id : {false, true}) {
    SCOPED_TRACE(param_id ? "id in the object_id parameter" : "id in the meta");
    torch::manual_seed(9);
    const auto frames = torch::randint(0, 256, {6, kH, kW, 3}, torch::kUInt8);
    GstHarness *h = clipper("");
    std::map<gint, std::vector<vidcls::Box>> boxes;
    std::vector<std::pair<GstVidclsClipMeta, vidcls::ClipRecord>> seen;
    std::map<gint, int> clips;
    for (int k = 0; k < 6; ++k) {
      const std::vector<Object> objects = {{7, 10u + k, 10, 12, 24}, {3, 50, 20u - k, 20, 20}};
      for (const auto &o : objects)
        boxes[o.id].push_back({double(o.x), double(o.y), double(o.w), double(o.h)});
      GstBuffer *out = gst_harness_push_and_pull(h, frame_with(frames[k], k, objects, param_id));
      for (GstVidclsClipMeta *m : vidcls_test::find_clip_metas(out)) {
        const auto &r = *m->record;
        ASSERT_TRUE(r.object_id == 7 || r.object_id == 3) << r.object_id;
        ++clips[static_cast<gint>(r.object_id)];
        const int first = static_cast<int>(r.first_sample);
        EXPECT_EQ(first + 3, k) << "the clip ends on the frame it is attached to";
        std::vector<vidcls::PixelRect> regions;
        for (int i = first; i < first + 4; ++i)
          regions.push_back(
              *vidcls::object_region(boxes[r.object_id][i], kH, kW, vidcls::ObjectCrop{}));
        const auto expected =
            vidcls::preprocess_regions(frames.narrow(0, first, 4), regions, spec16());
        EXPECT_TRUE(torch::equal(*m->clip, expected))
            << "object " << r.object_id << " clip " << r.index;
      }
      gst_buffer_unref(out);
    }
    EXPECT_EQ(clips[7], 2) << "T = 4, hop 2: after frames 4 and 6";
    EXPECT_EQ(clips[3], 2);
    EXPECT_EQ(object_stat(h, "tracks"), 2u);
    EXPECT_EQ(object_stat(h, "clips"), 4u);
    gst_harness_teardown(h);
  }
}

TEST(ObjectClips, TypesAndSizesFilterTheObjects) {
  torch::manual_seed(9);
  const auto frames = torch::randint(0, 256, {4, kH, kW, 3}, torch::kUInt8);
  GstHarness *h = clipper("object-class=person,cyclist min-object-size=10");
  for (int k = 0; k < 4; ++k) {
    gst_buffer_unref(gst_harness_push_and_pull(h, frame_with(frames[k], k,
                                                             {{1, 10, 10, 20, 20, "person"},
                                                              {2, 40, 10, 20, 20, "car"},
                                                              {3, 40, 30, 20, 20, "cyclist"},
                                                              {4, 5, 40, 8, 20, "person"}})));
  }
  EXPECT_EQ(object_stat(h, "started"), 2u) << "the person and the cyclist; not the car nor "
                                              "the 8-pixel-wide person";
  gst_harness_teardown(h);
}

TEST(ObjectClips, EndOfStreamSendsEachObjectsLeftoverClip) {
  torch::manual_seed(9);
  const auto frames = torch::randint(0, 256, {5, kH, kW, 3}, torch::kUInt8);
  GstHarness *h = clipper("eos-policy=partial");
  for (int k = 0; k < 5; ++k)
    gst_buffer_unref(gst_harness_push_and_pull(
        h, frame_with(frames[k], k, {{1, 10, 10, 20, 20}, {2, 40, 10, 20, 20}})));
  gst_harness_push_event(h, gst_event_new_eos());
  std::map<gint64, guint64> leftover;
  while (GstEvent *e = gst_harness_try_pull_event(h)) {
    const GstStructure *s = gst_event_get_structure(e);
    if (GST_EVENT_TYPE(e) == GST_EVENT_CUSTOM_DOWNSTREAM && s &&
        gst_structure_has_name(s, "vidcls-eos-clip")) {
      GstBuffer *carrier = gst_value_get_buffer(gst_structure_get_value(s, "carrier"));
      const auto *m = vidcls_test::find_clip_meta(carrier);
      ASSERT_NE(m, nullptr);
      EXPECT_TRUE(m->record->partial);
      leftover[m->record->object_id] = m->record->n_frames;
      EXPECT_EQ(m->clip->size(0), 3) << "partial: the frames it has";
    }
    gst_event_unref(e);
  }
  EXPECT_EQ(leftover, (std::map<gint64, guint64>{{1, 3}, {2, 3}}));
  gst_harness_teardown(h);
}

TEST(ObjectClips, HostileMetasNeverGrowItPastMaxObjects) {
  torch::manual_seed(9);
  const auto frames = torch::randint(0, 256, {1, kH, kW, 3}, torch::kUInt8);
  GstHarness *h = clipper("max-objects=4");
  // 10,000 distinct ids in one minute of stream (a new id on every 6 ms frame) beside boxes
  // outside the frame, without area, and of sizes no frame has (the ROI meta's guint range).
  constexpr GstClockTime kFast = 6 * GST_MSECOND;
  for (int k = 0; k < 10000; ++k) {
    gst_buffer_unref(gst_harness_push_and_pull(
        h, frame_with(frames[0], k,
                      {{k, 10, 10, 20, 20},
                       {-1, 1000, 10, 20, 20},
                       {-2, 10, 10, 0, 20},
                       {-3, 70, 50, 4000000000u, 4000000000u},
                       {-4, 4294967295u, 4294967295u, 4294967295u, 4294967295u}},
                      false, kFast)));
    if (k % 500 == 0) {
      ASSERT_LE(object_stat(h, "tracks"), 4u) << "frame " << k;
    }
  }
  EXPECT_EQ(9999 * kFast / GST_SECOND, 59u) << "one minute of stream";
  EXPECT_LE(object_stat(h, "tracks"), 4u);
  // every id beyond the four followed ended another (dropped) or ended when it went unseen
  EXPECT_GE(object_stat(h, "dropped") + object_stat(h, "ended"), 10000u - 4u - 3u);
  EXPECT_GE(object_stat(h, "started"), 10000u);
  gst_harness_teardown(h);
}

TEST(ObjectClips, EveryObjectClipIsClassifiedWithItsObjectId) {
  const auto ckpt = vidcls_test::make_checkpoint("vivit-xs", 4);
  GstHarness *h = gst_harness_new_parse(
      ("vidclsclipper inference-region=roi-list ! vividinfer mode=sync batch-size=2 model=" + ckpt)
          .c_str());
  gst_harness_set_src_caps_str(h, kCaps);
  GstBus *bus = gst_bus_new();
  gst_element_set_bus(h->element, bus);
  torch::manual_seed(9);
  const auto frames = torch::randint(0, 256, {40, kH, kW, 3}, torch::kUInt8);
  const std::map<gint64, std::vector<int>> box = {{5, {10, 10, 20, 40}}, {6, {40, 5, 30, 30}}};
  std::map<gint64, int> results, on_roi;
  for (int k = 0; k < 40; ++k) {
    GstBuffer *out = gst_harness_push_and_pull(
        h, frame_with(frames[k], k, {{5, 10, 10, 20, 40}, {6, 40, 5, 30, 30}}));
    std::map<gint64, std::string> labels;
    gpointer state = nullptr;
    while (GstMeta *m = gst_buffer_iterate_meta_filtered(out, &state,
                                                         GST_VIDCLS_CLASSIFICATION_META_API_TYPE)) {
      auto *r = reinterpret_cast<GstVidclsClassificationMeta *>(m);
      ++results[r->clip.object_id];
      labels[r->clip.object_id] = r->labels[0];
      // the box the object had on the clip's last frame
      EXPECT_EQ(
          (std::vector<int>{r->clip.box_x, r->clip.box_y, r->clip.box_width, r->clip.box_height}),
          box.at(r->clip.object_id));
    }
    // The same result as a parameter of the object's ROI meta, for readers of ROI metas.
    state = nullptr;
    while (GstMeta *meta = gst_buffer_iterate_meta_filtered(
               out, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
      auto *roi = reinterpret_cast<GstVideoRegionOfInterestMeta *>(meta);
      const GstStructure *p =
          gst_video_region_of_interest_meta_get_param(roi, "vidcls-classification");
      if (p == nullptr) continue;
      ++on_roi[roi->id];
      EXPECT_EQ(std::string(gst_structure_get_string(p, "label")), labels[roi->id]);
      double confidence = 0;
      EXPECT_TRUE(gst_structure_get_double(p, "confidence", &confidence));
      EXPECT_GT(confidence, 0.0);
    }
    gst_buffer_unref(out);
  }
  // vivit-xs: 8 frames at stride 2, hop 8: clips of each object at frames 14 and 30.
  EXPECT_EQ(results, (std::map<gint64, int>{{5, 2}, {6, 2}}));
  EXPECT_EQ(on_roi, results);
  // The bus messages carry the object's id and box too.
  std::map<gint64, int> messages;
  while (GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT)) {
    const GstStructure *s = gst_message_get_structure(msg);
    if (gst_structure_has_name(s, "vidcls-classification")) {
      gint64 id = -1;
      int x = 0, y = 0, w = 0, hh = 0;
      EXPECT_TRUE(gst_structure_get_int64(s, "object-id", &id));
      EXPECT_TRUE(gst_structure_get(s, "box-x", G_TYPE_INT, &x, "box-y", G_TYPE_INT, &y,
                                    "box-width", G_TYPE_INT, &w, "box-height", G_TYPE_INT, &hh,
                                    nullptr));
      ++messages[id];
      EXPECT_EQ((std::vector<int>{x, y, w, hh}), box.at(id));
    }
    gst_message_unref(msg);
  }
  EXPECT_EQ(messages, results);
  // Both objects complete their clips on the same frames: one forward pass for the two.
  GstElement *infer = gst_harness_find_element(h, "vividinfer");
  GstStructure *stats = nullptr;
  g_object_get(infer, "stats", &stats, nullptr);
  double mean_batch = 0;
  ASSERT_TRUE(stats && gst_structure_get_double(stats, "instance-mean-batch", &mean_batch));
  EXPECT_DOUBLE_EQ(mean_batch, 2.0);
  gst_structure_free(stats);
  gst_object_unref(infer);
  gst_element_set_bus(h->element, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h);
}

// GStreamer's analytics metadata (1.24+) in and out: detections (ODMtd) that a tracker relates
// a TrackingMtd to are objects like region-of-interest metas, and each result's ClsMtd is
// related to its object's ODMtd.
TEST(ObjectClips, AnalyticsDetectionsWithTracksAreObjectsAndGetTheirResults) {
#ifndef VIDCLS_HAVE_GST_ANALYTICS
  GTEST_SKIP() << "built against GStreamer " << GST_VERSION_MAJOR << "." << GST_VERSION_MINOR
               << ", which has no analytics library (1.24+)";
#else
  const auto ckpt = vidcls_test::make_checkpoint("vivit-xs", 4);
  GstHarness *h = gst_harness_new_parse(
      ("vidclsclipper inference-region=roi-list object-class=person ! vividinfer mode=sync "
       "model=" +
       ckpt)
          .c_str());
  gst_harness_set_src_caps_str(h, kCaps);
  torch::manual_seed(10);
  const auto frames = torch::randint(0, 256, {40, kH, kW, 3}, torch::kUInt8);
  std::map<gint64, int> results, related;
  for (int k = 0; k < 40; ++k) {
    GstBuffer *buf = frame_with(frames[k], k, {});
    GstAnalyticsRelationMeta *rmeta = gst_buffer_add_analytics_relation_meta(buf);
    struct Det {
      guint64 track;
      const char *type;
      gint x, y, w, h;
      bool od_to_track;  // which way the tracker wrote the relation
    };
    for (const Det &d :
         {Det{5, "person", 10, 10, 20, 40, true}, Det{6, "person", 40, 5, 30, 30, false},
          Det{7, "car", 5, 30, 20, 20, true}}) {
      GstAnalyticsODMtd od;
      GstAnalyticsTrackingMtd track;
      ASSERT_TRUE(gst_analytics_relation_meta_add_od_mtd(rmeta, g_quark_from_string(d.type), d.x,
                                                         d.y, d.w, d.h, 0.9f, &od));
      ASSERT_TRUE(gst_analytics_relation_meta_add_tracking_mtd(rmeta, d.track, 0, &track));
      ASSERT_TRUE(gst_analytics_relation_meta_set_relation(rmeta, GST_ANALYTICS_REL_TYPE_RELATE_TO,
                                                           d.od_to_track ? od.id : track.id,
                                                           d.od_to_track ? track.id : od.id));
    }
    GstBuffer *out = gst_harness_push_and_pull(h, buf);
    gpointer state = nullptr;
    while (GstMeta *m = gst_buffer_iterate_meta_filtered(out, &state,
                                                         GST_VIDCLS_CLASSIFICATION_META_API_TYPE)) {
      const auto *r = reinterpret_cast<GstVidclsClassificationMeta *>(m);
      ++results[r->clip.object_id];
    }
    // each ClsMtd is related to the ODMtd of its object, whose track says which object
    GstAnalyticsRelationMeta *orm = gst_buffer_get_analytics_relation_meta(out);
    ASSERT_NE(orm, nullptr);
    state = nullptr;
    GstAnalyticsClsMtd cls;
    while (gst_analytics_relation_meta_iterate(orm, &state, gst_analytics_cls_mtd_get_mtd_type(),
                                               &cls)) {
      GstAnalyticsODMtd od;
      gpointer s2 = nullptr;
      ASSERT_TRUE(gst_analytics_relation_meta_get_direct_related(
          orm, cls.id, GST_ANALYTICS_REL_TYPE_RELATE_TO, gst_analytics_od_mtd_get_mtd_type(), &s2,
          &od))
          << "a ClsMtd related to no ODMtd";
      EXPECT_EQ(g_quark_to_string(gst_analytics_od_mtd_get_obj_type(&od)), std::string("person"));
      gint x = 0, y = 0, w = 0, hh = 0;
      gfloat conf = 0;
      ASSERT_TRUE(gst_analytics_od_mtd_get_location(&od, &x, &y, &w, &hh, &conf));
      ++related[x == 10 ? 5 : 6];
    }
    gst_buffer_unref(out);
  }
  // vivit-xs: 8 frames at stride 2, hop 8: clips of each person at frames 14 and 30; the car is
  // left out by object-class.
  EXPECT_EQ(results, (std::map<gint64, int>{{5, 2}, {6, 2}}));
  EXPECT_EQ(related, results);
  gst_harness_teardown(h);
#endif
}

}  // namespace

int main(int argc, char **argv) { return vidcls_test::run_element_tests(argc, argv); }
