/* Which tracked object a region-of-interest meta is about, read one way by every vidcls element
 * (the clipper, the result attachment, the overlay): the id of its "object_id" parameter, as
 * DL Streamer's gvatrack and vidclsroireplay write it, else the meta's own id.
 */
#pragma once

#include <gst/video/video.h>

namespace vidcls {
namespace gst {

inline gint
roi_object_id (GstVideoRegionOfInterestMeta *m)
{
  gint id = m->id;
  if (GstStructure * p = gst_video_region_of_interest_meta_get_param (m, "object_id"))
    gst_structure_get_int (p, "id", &id);
  return id;
}

}  // namespace gst
}  // namespace vidcls
