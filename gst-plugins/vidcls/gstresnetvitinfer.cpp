/**
 * SECTION:element-resnetvitinfer
 * @title: resnetvitinfer
 *
 * Classifies the clips that vidclsclipper attaches to buffers with a ResNet + Temporal ViT
 * checkpoint. It keeps the backbone features of the frames it has seen, so each sampled frame
 * goes through the ResNet exactly once however much consecutive clips overlap; only the
 * temporal transformer runs per clip. The read-only "backbone-frames" counter shows it.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=v.mp4 ! decodebin ! videoconvert ! \
 *     vidclsclipper clip-stride=2 ! resnetvitinfer model=r.safetensors ! fakesink
 * ]|
 */
#include "gstresnetvitinfer.h"

enum
{
  PROP_0,
  PROP_BACKBONE_FRAMES,
};

struct _GstResnetVitInfer
{
  GstVidclsInfer parent;
};

G_DEFINE_TYPE (GstResnetVitInfer, gst_resnet_vit_infer, GST_TYPE_VIDCLS_INFER);
GST_ELEMENT_REGISTER_DEFINE (resnetvitinfer, "resnetvitinfer", GST_RANK_NONE,
    GST_TYPE_RESNET_VIT_INFER);

static const gchar *const resnet_vit_architectures[] = { "resnet-tvit", NULL };

static void
gst_resnet_vit_infer_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  switch (prop_id) {
    case PROP_BACKBONE_FRAMES:
      g_value_set_uint64 (value,
          gst_vidcls_infer_get_backbone_frames (GST_VIDCLS_INFER (object)));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_resnet_vit_infer_class_init (GstResnetVitInferClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstVidclsInferClass *infer_class = GST_VIDCLS_INFER_CLASS (klass);
  infer_class->architectures = resnet_vit_architectures;
  infer_class->other_element = "vividinfer";
  infer_class->per_frame_features = TRUE;

  gobject_class->get_property = gst_resnet_vit_infer_get_property;
  g_object_class_install_property (gobject_class, PROP_BACKBONE_FRAMES,
      g_param_spec_uint64 ("backbone-frames", "Backbone frames",
          "Sampled frames that went through the ResNet backbone since start (each once, "
          "however much clips overlap)", 0, G_MAXUINT64, 0,
          (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "ResNet + Temporal ViT video classifier", "Filter/Analyzer/Video",
      "Classifies clips from vidclsclipper with a ResNet + Temporal ViT checkpoint, running "
      "the backbone once per frame", "vidcls developers");
}

static void
gst_resnet_vit_infer_init (GstResnetVitInfer * self)
{
}
