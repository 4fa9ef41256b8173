/* What the inference elements hand out for a classified clip: the top-k of its scores, the
 * "vidcls-classification" bus message and the GstVidclsClassificationMeta. The clip's identity
 * is its vidcls::ClipRecord, turned into message fields and into the meta's GstVidclsClip here
 * and nowhere else. Private to the plugin (C++).
 */
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

#include <torch/types.h>

#include "gstvidclsmeta.h"
#include "vidcls/clip_record.h"

namespace vidcls {
namespace gst {

struct Classification
{
  ClipRecord clip;
  std::string model;                    /* the model that classified it */
  std::vector<std::string> labels;      /* best first, those at or above the threshold */
  std::vector<float> scores;            /* softmax probabilities, same order */
  std::vector<gint> class_ids;          /* rows of the model's head, same order */
  std::string top_label;                /* the best label, whatever the threshold */
  float top_score = 0.f;
  double latency_ms = 0.0;              /* inference time per clip */
  double delay_ms = 0.0;                /* from the clip's arrival (its last frame) to its result:
                                         * queueing, batching and inference */
};

/* One Classification per row of `probs` [B, classes] (softmax, on the CPU) by `model`: the k best
 * labels, cut at `threshold`. */
std::vector<Classification> top_k (const torch::Tensor &probs,
    const std::vector<ClipRecord> &clips, const std::string &model,
    const std::vector<std::string> &labels, guint k, double threshold, double latency_ms);

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
 * with no results: the clip was classified, nothing scored high enough). */
GstVidclsClassificationMeta *attach_classification (GstBuffer *buf, const Classification &c);

}  // namespace gst
}  // namespace vidcls
