/* vidcls plugin internals shared by vidclsclipper and the inference elements:
 *  - GstVidclsClipMeta: a clip tensor [T, C, H, W] (on the model's device) and its
 *    vidcls::ClipRecord (stream, clip index, time span, ...), attached by vidclsclipper to the
 *    buffer that completes the clip;
 *  - the "vidcls-clip-spec" upstream query, answered by an inference element with its
 *    checkpoint's clip spec and device, so the clipper needs no settings;
 *  - the "vidcls-clip-spec-changed" upstream event, sent by an inference element whose model was
 *    swapped for one with another clip spec: the clipper asks the query again;
 *  - the "vidcls-eos-clip" serialized downstream event that carries the clip completed at end of
 *    stream (eos-policy=pad/partial), when no buffer is left to attach it to.
 * Private to the plugin (C++: the meta holds a torch::Tensor).
 */
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/clip_record.h"
#include "vidcls/clip_spec.h"

G_BEGIN_DECLS

typedef struct {
  GstMeta meta;
  torch::Tensor *clip;            /* [n, C, H, W] float32, n = T or, partial, fewer; owned */
  vidcls::ClipRecord *record;     /* which clip it is; owned */
} GstVidclsClipMeta;

GType gst_vidcls_clip_meta_api_get_type (void);
const GstMetaInfo *gst_vidcls_clip_meta_get_info (void);
#define GST_VIDCLS_CLIP_META_API_TYPE (gst_vidcls_clip_meta_api_get_type ())

G_END_DECLS

namespace vidcls {
namespace gst {

/* Attaches a clip meta holding (a reference to) `clip` and a copy of `record`. */
GstVidclsClipMeta *add_clip_meta (GstBuffer *buffer, const torch::Tensor &clip,
    const ClipRecord &record);
GstVidclsClipMeta *get_clip_meta (GstBuffer *buffer);
/* Every clip meta of the buffer, in the order they were attached (per-object clips: several). */
std::vector<GstVidclsClipMeta *> clip_metas (GstBuffer *buffer);

/* The upstream query. The answer holds the clip spec (as the JSON of vidcls::ClipSpec), the
 * device the model runs on ("cpu", "cuda:0") and the model's name. */
GstQuery *clip_spec_query_new ();
bool is_clip_spec_query (GstQuery *query);
void clip_spec_query_answer (GstQuery *query, const ClipSpec &spec, const std::string &device,
    const std::string &model_name);
/* Returns false when the query was not answered. */
bool clip_spec_query_parse (GstQuery *query, ClipSpec &spec, std::string &device,
    std::string &model_name);

/* The upstream event of a changed clip spec, and its test. */
GstEvent *clip_spec_changed_event_new ();
bool is_clip_spec_changed_event (GstEvent *event);

/* The end-of-stream clip event: a buffer with no memory that carries the clip meta. */
GstEvent *eos_clip_event_new (GstBuffer *carrier);
/* Returns the carrier buffer (transfer none) or nullptr when `event` is not one. */
GstBuffer *eos_clip_event_parse (GstEvent *event);

}  // namespace gst
}  // namespace vidcls
