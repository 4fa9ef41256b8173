#ifndef __GST_VIVID_INFER_H__
#define __GST_VIVID_INFER_H__

#include "gstvidclsinfer.h"

G_BEGIN_DECLS

#define GST_TYPE_VIVID_INFER (gst_vivid_infer_get_type ())
G_DECLARE_FINAL_TYPE (GstVividInfer, gst_vivid_infer, GST, VIVID_INFER, GstVidclsInfer)

GST_ELEMENT_REGISTER_DECLARE (vividinfer);

G_END_DECLS

#endif /* __GST_VIVID_INFER_H__ */
