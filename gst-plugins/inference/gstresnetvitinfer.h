#ifndef __GST_RESNET_VIT_INFER_H__
#define __GST_RESNET_VIT_INFER_H__

#include "gstvidclsinfer.h"

G_BEGIN_DECLS

#define GST_TYPE_RESNET_VIT_INFER (gst_resnet_vit_infer_get_type ())
G_DECLARE_FINAL_TYPE (GstResnetVitInfer, gst_resnet_vit_infer, GST, RESNET_VIT_INFER,
    GstVidclsInfer)

GST_ELEMENT_REGISTER_DECLARE (resnetvitinfer);

G_END_DECLS

#endif /* __GST_RESNET_VIT_INFER_H__ */
