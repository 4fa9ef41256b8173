/* GstVidclsInfer: the base class of vividinfer and resnetvitinfer.
 *
 * Loads a vidcls checkpoint in start(), classifies the clips that vidclsclipper attaches to
 * buffers, attaches a GstVidclsClassificationMeta to the buffer and posts a
 * "vidcls-classification" element message. Overlapping clips share the tokens their models
 * allow (engine/feature_ring.h: ViViT's tubelets, ResNet + Temporal ViT's frames). Subclasses say
 * which checkpoint architectures they run.
 */
#ifndef __GST_VIDCLS_INFER_H__
#define __GST_VIDCLS_INFER_H__

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_VIDCLS_INFER (gst_vidcls_infer_get_type ())
G_DECLARE_DERIVABLE_TYPE (GstVidclsInfer, gst_vidcls_infer, GST, VIDCLS_INFER, GstBaseTransform)

struct _GstVidclsInferClass {
  GstBaseTransformClass parent_class;

  /* NULL-terminated list of checkpoint architectures this element runs; NULL: all of them */
  const gchar *const *architectures;
  /* name of the element to suggest for other architectures */
  const gchar *other_element;
  /* Adds the subclass's fields to the `stats` structure. NULL: none. */
  void (*add_stats) (GstVidclsInfer * self, GstStructure * stats);
};

typedef enum {
  GST_VIDCLS_INFER_MODE_AUTO,
  GST_VIDCLS_INFER_MODE_SYNC,
  GST_VIDCLS_INFER_MODE_ASYNC,
} GstVidclsInferMode;

typedef enum {
  GST_VIDCLS_INFER_DROP_OLDEST,
  GST_VIDCLS_INFER_DROP_NEWEST,
} GstVidclsInferDrop;

typedef enum {
  GST_VIDCLS_INFER_PRECISION_FP32,
  GST_VIDCLS_INFER_PRECISION_FP16,
  GST_VIDCLS_INFER_PRECISION_BF16,
} GstVidclsInferPrecision;

G_END_DECLS

#endif /* __GST_VIDCLS_INFER_H__ */
