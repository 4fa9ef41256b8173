/**
 * SECTION:element-vidclsinfer
 * @title: vidclsinfer
 *
 * Classifies the clips that vidclsclipper attaches to buffers with a checkpoint of any
 * architecture vidcls has: the ones it trains (ViViT, Mini-ViViT, ResNet + Temporal ViT, which
 * vividinfer and resnetvitinfer also run) and the published classifiers that vidcls-import reads
 * (torchvision's R3D-18, MC3-18, R(2+1)D-18 and S3D, ...). Results, properties and messages are
 * those of vividinfer. Clips share the tokens of their common frames where the architecture is
 * made of per-window tokens (ViViT's tubelets, ResNet + Temporal ViT's frames); a 3D
 * convolutional network sees the clip as a whole, and "stats" says reuse=unavailable with why.
 *
 * The clipper takes the checkpoint's clip spec from this element: the publisher's frame count,
 * frame rate, resize, crop and normalisation for an imported model.
 *
 * ## Example launch line
 * |[
 * vidcls-import r2plus1d_18-91a641e6.pth -o r2plus1d.safetensors
 * gst-launch-1.0 -m filesrc location=v.mp4 ! decodebin ! videoconvert ! vidclsclipper ! \
 *     vidclsinfer model=r2plus1d.safetensors ! fakesink
 * ]|
 */
#include "gstvidclsgenericinfer.h"

struct _GstVidclsGenericInfer
{
  GstVidclsInfer parent;
};

G_DEFINE_TYPE (GstVidclsGenericInfer, gst_vidcls_generic_infer, GST_TYPE_VIDCLS_INFER);
GST_ELEMENT_REGISTER_DEFINE (vidclsinfer, "vidclsinfer", GST_RANK_NONE,
    GST_TYPE_VIDCLS_GENERIC_INFER);

static void
gst_vidcls_generic_infer_class_init (GstVidclsGenericInferClass * klass)
{
  GstVidclsInferClass *infer_class = GST_VIDCLS_INFER_CLASS (klass);
  infer_class->architectures = NULL;    /* every architecture */
  infer_class->other_element = NULL;
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "Video classifier", "Filter/Analyzer/Video",
      "Classifies clips from vidclsclipper with a vidcls checkpoint of any architecture "
      "(trained here or imported from torchvision and Hugging Face)", "vidcls developers");
}

static void
gst_vidcls_generic_infer_init (GstVidclsGenericInfer * self)
{
}
