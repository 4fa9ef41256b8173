#include "gstvidclsanalytics.h"

#ifdef VIDCLS_HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

namespace vidcls {
namespace gst {

bool
have_analytics ()
{
#ifdef VIDCLS_HAVE_GST_ANALYTICS
  return true;
#else
  return false;
#endif
}

#ifdef VIDCLS_HAVE_GST_ANALYTICS
/* The TrackingMtd related to the ODMtd `od_id`, the relation written either way. */
static bool
track_of (GstAnalyticsRelationMeta *rmeta, guint od_id, GstAnalyticsTrackingMtd *track)
{
  gpointer state = nullptr;
  if (gst_analytics_relation_meta_get_direct_related (rmeta, od_id, GST_ANALYTICS_REL_TYPE_ANY,
          gst_analytics_tracking_mtd_get_mtd_type (), &state, track))
    return true;
  state = nullptr;
  while (gst_analytics_relation_meta_iterate (rmeta, &state,
          gst_analytics_tracking_mtd_get_mtd_type (), track)) {
    if (gst_analytics_relation_meta_get_relation (rmeta, track->id, od_id)
        != GST_ANALYTICS_REL_TYPE_NONE)
      return true;
  }
  return false;
}
#endif

std::vector<AnalyticsObject>
analytics_objects (GstBuffer *buf)
{
  std::vector<AnalyticsObject> out;
#ifdef VIDCLS_HAVE_GST_ANALYTICS
  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta (buf);
  if (rmeta == nullptr)
    return out;
  gpointer state = nullptr;
  GstAnalyticsODMtd od;
  while (gst_analytics_relation_meta_iterate (rmeta, &state, gst_analytics_od_mtd_get_mtd_type (),
          &od)) {
    GstAnalyticsTrackingMtd track;
    if (!track_of (rmeta, od.id, &track))
      continue;
    guint64 tracking_id = 0;
    GstClockTime first = GST_CLOCK_TIME_NONE, last = GST_CLOCK_TIME_NONE;
    gboolean lost = FALSE;
    if (!gst_analytics_tracking_mtd_get_info (&track, &tracking_id, &first, &last, &lost) || lost)
      continue;
    AnalyticsObject o;
    gfloat confidence = 0.f;
    if (!gst_analytics_od_mtd_get_location (&od, &o.x, &o.y, &o.w, &o.h, &confidence))
      continue;
    o.id = static_cast<gint64> (tracking_id);
    o.mtd_id = od.id;
    o.type = gst_analytics_od_mtd_get_obj_type (&od);
    out.push_back (o);
  }
#else
  (void) buf;
#endif
  return out;
}

bool
relate_to_object (GstBuffer *buf, guint mtd_id, gint64 object_id)
{
#ifdef VIDCLS_HAVE_GST_ANALYTICS
  GstAnalyticsRelationMeta *rmeta = gst_buffer_get_analytics_relation_meta (buf);
  if (rmeta == nullptr)
    return false;
  for (const AnalyticsObject &o : analytics_objects (buf)) {
    if (o.id != object_id)
      continue;
    return gst_analytics_relation_meta_set_relation (rmeta, GST_ANALYTICS_REL_TYPE_RELATE_TO,
        o.mtd_id, mtd_id)
        && gst_analytics_relation_meta_set_relation (rmeta, GST_ANALYTICS_REL_TYPE_RELATE_TO,
        mtd_id, o.mtd_id);
  }
#else
  (void) buf;
  (void) mtd_id;
  (void) object_id;
#endif
  return false;
}

}  // namespace gst
}  // namespace vidcls
