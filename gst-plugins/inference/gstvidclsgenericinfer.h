#ifndef __GST_VIDCLS_GENERIC_INFER_H__
#define __GST_VIDCLS_GENERIC_INFER_H__

#include "gstvidclsinfer.h"

G_BEGIN_DECLS

#define GST_TYPE_VIDCLS_GENERIC_INFER (gst_vidcls_generic_infer_get_type ())
G_DECLARE_FINAL_TYPE (GstVidclsGenericInfer, gst_vidcls_generic_infer, GST,
    VIDCLS_GENERIC_INFER, GstVidclsInfer)

GST_ELEMENT_REGISTER_DECLARE (vidclsinfer);

G_END_DECLS

#endif /* __GST_VIDCLS_GENERIC_INFER_H__ */
