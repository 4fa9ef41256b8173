#include "gstvidclsresult.h"

#include "gstvidclsanalytics.h"
#include "gstvidclsevents.h"
#include "gstvidclsroi.h"

#include <gst/video/video.h>

#include <algorithm>
#include <cmath>

#ifdef VIDCLS_HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

namespace vidcls {
namespace gst {

/* An object's box in whole pixels, as the public carriers (meta, message, JSON) hold it; a box
 * with a value that is not finite is no box. */
static void
box_pixels (const Box &b, gint &x, gint &y, gint &w, gint &h)
{
  auto px = [] (double v) {
    return std::isfinite (v) ? (gint) std::lround (std::clamp (v, -1e9, 1e9)) : 0;
  };
  x = px (b.x);
  y = px (b.y);
  w = px (b.w);
  h = px (b.h);
  if (w <= 0 || h <= 0 || !std::isfinite (b.x) || !std::isfinite (b.y))
    x = y = w = h = 0;
}

void
set_clip_fields (GstStructure *s, const ClipRecord &clip)
{
  gst_structure_set (s,
      "stream-id", G_TYPE_STRING, clip.stream.c_str (),
      "object-id", G_TYPE_INT64, (gint64) clip.object_id,
      "clip-index", G_TYPE_UINT64, (guint64) clip.index,
      "start", G_TYPE_UINT64, (guint64) clip.start,
      "end", G_TYPE_UINT64, (guint64) clip.end,
      "partial", G_TYPE_BOOLEAN, (gboolean) clip.partial, nullptr);
  if (clip.object_id != kWholeFrame) {
    gint x, y, w, h;
    box_pixels (clip.box, x, y, w, h);
    gst_structure_set (s, "box-x", G_TYPE_INT, x, "box-y", G_TYPE_INT, y,
        "box-width", G_TYPE_INT, w, "box-height", G_TYPE_INT, h, nullptr);
  }
}

static void
append (GValue *array, GType type, const void *value)
{
  GValue v = G_VALUE_INIT;
  g_value_init (&v, type);
  if (type == G_TYPE_STRING)
    g_value_set_string (&v, static_cast<const std::string *> (value)->c_str ());
  else if (type == G_TYPE_DOUBLE)
    g_value_set_double (&v, *static_cast<const float *> (value));
  else
    g_value_set_int (&v, *static_cast<const gint *> (value));
  gst_value_array_append_and_take_value (array, &v);
}

GstStructure *
classification_structure (const Classification &c)
{
  GstStructure *s = gst_structure_new_empty ("vidcls-classification");
  set_clip_fields (s, c.clip);
  gst_structure_set (s,
      "model", G_TYPE_STRING, c.model.c_str (),
      "label", G_TYPE_STRING, c.top_label.c_str (),
      "score", G_TYPE_DOUBLE, (gdouble) c.top_score,
      "inference-time", G_TYPE_UINT64, (guint64) (c.latency_ms * GST_MSECOND), nullptr);
  GValue labels = G_VALUE_INIT, scores = G_VALUE_INIT, ids = G_VALUE_INIT;
  g_value_init (&labels, GST_TYPE_ARRAY);
  g_value_init (&scores, GST_TYPE_ARRAY);
  g_value_init (&ids, GST_TYPE_ARRAY);
  for (size_t i = 0; i < c.labels.size (); ++i) {
    append (&labels, G_TYPE_STRING, &c.labels[i]);
    append (&scores, G_TYPE_DOUBLE, &c.scores[i]);
    append (&ids, G_TYPE_INT, &c.class_ids[i]);
  }
  gst_structure_take_value (s, "labels", &labels);
  gst_structure_take_value (s, "scores", &scores);
  gst_structure_take_value (s, "class-ids", &ids);
  return s;
}

GstEvent *
classification_event (const Classification &c)
{
  return result_event_new (classification_structure (c));
}

#ifdef VIDCLS_HAVE_GST_ANALYTICS
/* The same labels and confidences, best first, as a GstAnalyticsClsMtd in the buffer's
 * GstAnalyticsRelationMeta (made if the buffer has none), for any element or application that
 * reads GStreamer's analytics meta. */
static void
add_cls_mtd (GstBuffer *buf, const Classification &c)
{
  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta (buf);
  if (rmeta == nullptr)
    rmeta = gst_buffer_add_analytics_relation_meta (buf);
  std::vector<GQuark> quarks;
  for (const auto &l : c.labels)
    quarks.push_back (g_quark_from_string (l.c_str ()));
  std::vector<gfloat> levels (c.scores.begin (), c.scores.end ());
  GstAnalyticsClsMtd mtd;
  if (rmeta == nullptr || !gst_analytics_relation_meta_add_cls_mtd (rmeta, quarks.size (),
          levels.data (), quarks.data (), &mtd)) {
    GST_WARNING ("could not add a GstAnalyticsClsMtd for clip %" G_GUINT64_FORMAT,
        c.clip.index);
    return;
  }
  /* a tracked object's result: related to the object's ODMtd, where the buffer has one */
  if (c.clip.object_id != kWholeFrame)
    relate_to_object (buf, mtd.id, c.clip.object_id);
}
#endif

/* A result about a tracked object also goes on the object: a parameter of the buffer's
 * region-of-interest meta of that object (the id of its "object_id" parameter, else its own
 * id), as DL Streamer's classifiers add theirs, so readers of ROI metas find it. */
static void
add_roi_param (GstBuffer *buf, const Classification &c)
{
  gpointer state = nullptr;
  while (GstMeta *meta = gst_buffer_iterate_meta_filtered (buf, &state,
          GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *m = reinterpret_cast<GstVideoRegionOfInterestMeta *> (meta);
    if (roi_object_id (m) != c.clip.object_id)
      continue;
    gst_video_region_of_interest_meta_add_param (m, gst_structure_new ("vidcls-classification",
            "label", G_TYPE_STRING, c.labels[0].c_str (),
            "label_id", G_TYPE_INT, (gint) c.class_ids[0],
            "confidence", G_TYPE_DOUBLE, (gdouble) c.scores[0],
            "model_name", G_TYPE_STRING, c.model.c_str (),
            "clip-index", G_TYPE_UINT64, (guint64) c.clip.index, nullptr));
    return;
  }
}

GstVidclsClassificationMeta *
attach_classification (GstBuffer *buf, const Classification &c)
{
  if (c.clip.object_id != kWholeFrame && !c.labels.empty ())
    add_roi_param (buf, c);
#ifdef VIDCLS_HAVE_GST_ANALYTICS
  if (!c.labels.empty ())
    add_cls_mtd (buf, c);
#endif
  static_assert (kNoTimestamp == GST_CLOCK_TIME_NONE, "one value for 'no timestamp'");
  GstVidclsClip clip;
  clip.stream_id = const_cast<gchar *> (c.clip.stream.c_str ());  /* copied by the meta */
  clip.object_id = c.clip.object_id;
  clip.index = c.clip.index;
  clip.start = c.clip.start;
  clip.end = c.clip.end;
  clip.partial = c.clip.partial;
  box_pixels (c.clip.box, clip.box_x, clip.box_y, clip.box_width, clip.box_height);
  std::vector<const gchar *> labels;
  for (const auto &l : c.labels)
    labels.push_back (l.c_str ());
  return gst_buffer_add_vidcls_classification_meta (buf, &clip, c.model.c_str (),
      static_cast<guint> (c.labels.size ()), labels.data (), c.scores.data (),
      c.class_ids.data ());
}

}  // namespace gst
}  // namespace vidcls
