/**
 * SECTION:element-vividinfer
 * @title: vividinfer
 *
 * Classifies the clips that vidclsclipper attaches to buffers with a ViViT or Mini-ViViT
 * checkpoint. Each result goes on the buffer as a #GstVidclsClassificationMeta and on the bus
 * as a "vidcls-classification" element message (fields: stream-id, object-id, clip-index, start,
 * end, partial, model, label, score, labels, scores, class-ids, inference-time).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=v.mp4 ! decodebin ! videoconvert ! vidclsclipper ! \
 *     vividinfer model=m.safetensors ! fakesink
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
