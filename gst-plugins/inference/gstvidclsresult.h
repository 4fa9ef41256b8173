/* What the inference elements hand out for a classified clip (an engine::Classification): the
 * "vidcls-classification" bus message, the result event and the GstVidclsClassificationMeta
 * (with a GstAnalyticsClsMtd on GStreamer >= 1.24). The clip's identity is its
 * vidcls::ClipRecord, turned into message fields and into the meta's GstVidclsClip here and
 * nowhere else. Private to the plugin (C++).
 */
#pragma once

#include <gst/gst.h>

#include "engine/classification.h"
#include "gstvidclsmeta.h"
#include "vidcls/clip_record.h"

namespace vidcls {
namespace gst {

using engine::Classification;

/* The clip's fields of a message, named the same in every message vidcls posts: stream-id
 * (string), object-id (gint64), clip-index (guint64), start and end (guint64 ns: PTS of the
 * first frame, end of the last), partial (gboolean). */
void set_clip_fields (GstStructure *s, const ClipRecord &clip);

/* The "vidcls-classification" element message structure. */
GstStructure *classification_structure (const Classification &c);

/* The same structure in a serialized GST_EVENT_CUSTOM_DOWNSTREAM: how a result that no buffer
 * carries (end of stream) still reaches the elements downstream. */
GstEvent *classification_event (const Classification &c);

/* Attaches the result to a writable buffer, also when no label passed the threshold (a meta
 * with no results: the clip was classified, nothing scored high enough). A result about a
 * tracked object with a label also becomes a "vidcls-classification" parameter (label,
 * label_id, confidence, model_name, clip-index) of the buffer's region-of-interest meta of that
 * object, where DL Streamer's readers look for classifications. */
GstVidclsClassificationMeta *attach_classification (GstBuffer *buf, const Classification &c);

}  // namespace gst
}  // namespace vidcls
