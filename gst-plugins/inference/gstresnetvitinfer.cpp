/**
 * SECTION:element-resnetvitinfer
 * @title: resnetvitinfer
 *
 * Classifies the clips that vidclsclipper attaches to buffers with a ResNet + Temporal ViT
 * checkpoint. It keeps the backbone features of the frames it has seen, so each sampled frame
 * goes through the ResNet exactly once however much consecutive clips overlap; only the
 * temporal transformer runs per clip (property "reuse"); the "features-computed" field of the
 * "stats" property counts the frames that went through the backbone ("backbone-frames", its older
 * name, too), "features-reused" those taken from the ring. With a motion or two-stream backbone a frame's
 * feature is that of the pair it makes with the frame sampled before it, which the clip holds
 * too, and is kept the same way. Elements that share a model instance keep a ring each; the
 * backbone and the temporal model run over the clips of all of them in one batch.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=v.mp4 ! decodebin ! videoconvert ! \
 *     vidclsclipper clip-stride=2 ! resnetvitinfer model=r.safetensors ! fakesink
 * ]|
 */
#include "gstresnetvitinfer.h"

struct _GstResnetVitInfer
{
  GstVidclsInfer parent;
};

G_DEFINE_TYPE (GstResnetVitInfer, gst_resnet_vit_infer, GST_TYPE_VIDCLS_INFER);
GST_ELEMENT_REGISTER_DEFINE (resnetvitinfer, "resnetvitinfer", GST_RANK_NONE,
    GST_TYPE_RESNET_VIT_INFER);

static const gchar *const resnet_vit_architectures[] = { "resnet-tvit", NULL };

static void
gst_resnet_vit_infer_add_stats (GstVidclsInfer * infer, GstStructure * stats)
{
  /* the name this element's statistics had before vividinfer counted tubelets too */
  guint64 computed = 0;
  gst_structure_get_uint64 (stats, "features-computed", &computed);
  gst_structure_set (stats, "backbone-frames", G_TYPE_UINT64, computed, nullptr);
}

static void
gst_resnet_vit_infer_class_init (GstResnetVitInferClass * klass)
{
  GstVidclsInferClass *infer_class = GST_VIDCLS_INFER_CLASS (klass);
  infer_class->architectures = resnet_vit_architectures;
  infer_class->other_element = "vividinfer";
  infer_class->add_stats = gst_resnet_vit_infer_add_stats;
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "ResNet + Temporal ViT video classifier", "Filter/Analyzer/Video",
      "Classifies clips from vidclsclipper with a ResNet + Temporal ViT checkpoint, running "
      "the backbone once per frame (stats: backbone-frames, the frames it ran on)",
      "vidcls developers");
}

static void
gst_resnet_vit_infer_init (GstResnetVitInfer * self)
{
}
