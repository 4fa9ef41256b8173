/**
 * SECTION:element-vividinfer
 * @title: vividinfer
 *
 * Classifies the clips that vidclsclipper attaches to buffers with a ViViT or Mini-ViViT
 * checkpoint. Each result goes on the buffer as a #GstVidclsClassificationMeta and on the bus
 * as a "vidcls-classification" element message (fields: stream-id, object-id, clip-index, start,
 * end, partial, model, label, score, labels, scores, class-ids, inference-time).
 *
 * The spatial encoder sees each tubelet (tubelet_t consecutive sampled frames) on its own, so
 * clips that overlap by whole tubelets share their spatial encodings: the element keeps them by
 * the sampled frames they come from and runs, per clip, the spatial encoder over the tubelets it
 * brings new and the temporal transformer over all (property "reuse"; "features-computed" and
 * "features-reused" in the "stats" property count tubelets). With clip-stride equal to the
 * tubelet's frames a clip costs one tubelet's spatial encoding, not all of them. Scores equal
 * those of the whole clip up to float rounding. A checkpoint whose input transform looks at the
 * whole clip (normal-flow, normal-flow-stabilised, temporal-residual: the clip's mean frame)
 * runs every clip whole; "tubelet-normal-flow" and plain input ("none") share.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=v.mp4 ! decodebin ! videoconvert ! vidclsclipper ! \
 *     vividinfer model=m.safetensors ! fakesink
 * ]|
 * Dense results, one per tubelet of a ViViT-B/16x2 (2 sampled frames):
 * |[
 * gst-launch-1.0 -m filesrc location=v.mp4 ! decodebin ! videoconvert ! \
 *     vidclsclipper clip-stride=2 ! vividinfer model=vivit-b.safetensors ! fakesink
 * ]|
 */
#include "gstvividinfer.h"

struct _GstVividInfer
{
  GstVidclsInfer parent;
};

G_DEFINE_TYPE (GstVividInfer, gst_vivid_infer, GST_TYPE_VIDCLS_INFER);
GST_ELEMENT_REGISTER_DEFINE (vividinfer, "vividinfer", GST_RANK_NONE, GST_TYPE_VIVID_INFER);

static const gchar *const vivid_architectures[] = { "vivit", "mini-vivit", NULL };

static void
gst_vivid_infer_class_init (GstVividInferClass * klass)
{
  GstVidclsInferClass *infer_class = GST_VIDCLS_INFER_CLASS (klass);
  infer_class->architectures = vivid_architectures;
  infer_class->other_element = "resnetvitinfer";
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "ViViT video classifier", "Filter/Analyzer/Video",
      "Classifies clips from vidclsclipper with a ViViT or Mini-ViViT checkpoint",
      "vidcls developers");
}

static void
gst_vivid_infer_init (GstVividInfer * self)
{
}
