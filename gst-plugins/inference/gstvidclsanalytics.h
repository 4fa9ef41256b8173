/* Tracked objects in GStreamer's analytics metadata (GStreamer 1.24 and newer): the boxes of
 * GstAnalyticsODMtd with a related GstAnalyticsTrackingMtd, as trackers such as ioutracker write
 * them, read by vidclsclipper's per-object mode beside region-of-interest metas; and a result's
 * GstAnalyticsClsMtd related to its object's ODMtd. Built without the analytics library, the
 * functions find nothing and relate nothing.
 */
#pragma once

#include <gst/gst.h>

#include <vector>

namespace vidcls {
namespace gst {

struct AnalyticsObject
{
  gint64 id = 0;                /* the tracking id */
  GQuark type = 0;              /* the ODMtd's object type */
  gint x = 0, y = 0, w = 0, h = 0;
  guint mtd_id = 0;             /* the ODMtd's id in the buffer's relation meta */
};

/* True when vidcls was built with the analytics library. */
bool have_analytics ();

/* Every ODMtd of `buf` that a TrackingMtd relates to, with that track's id (tracks marked lost
 * left out). */
std::vector<AnalyticsObject> analytics_objects (GstBuffer *buf);

/* Relates the analytics metadata `mtd_id` of `buf` (a result's ClsMtd) and the ODMtd of tracked
 * object `object_id`, both ways (GST_ANALYTICS_REL_TYPE_RELATE_TO); false when the buffer has no
 * ODMtd of that object. */
bool relate_to_object (GstBuffer *buf, guint mtd_id, gint64 object_id);

}  // namespace gst
}  // namespace vidcls
