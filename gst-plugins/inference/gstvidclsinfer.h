/* GstVidclsInfer: the base class of vividinfer and resnetvitinfer.
 *
 * Loads a vidcls checkpoint in start(), classifies the clips that vidclsclipper attaches to
 * buffers, attaches a GstVidclsClassificationMeta to the buffer and posts a
 * "vidcls-classification" element message. Subclasses say which checkpoint architectures they
 * run and may bring their own way of turning clips into scores (resnetvitinfer's feature ring).
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

  /* NULL-terminated list of checkpoint architectures this element runs */
  const gchar *const *architectures;
  /* name of the element to suggest for other architectures */
  const gchar *other_element;
  /* Creates the runner that turns the clips of every element sharing a model instance into
   * logits: a new vidcls::engine::ClipRunner (C++, engine/model.h), made once per instance by
   * its first element. NULL runs whole clips through the model. */
  gpointer (*create_runner) (GstVidclsInfer * self);
  /* Creates what the runner keeps per element between clips, for one run of the element (from
   * start() to stop()): a new vidcls::engine::StreamState. NULL: nothing. */
  gpointer (*create_stream) (GstVidclsInfer * self);
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
