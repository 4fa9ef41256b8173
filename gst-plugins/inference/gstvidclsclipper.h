/* vidclsclipper: cuts a raw video stream into the clips a video classifier sees, without
 * touching the video. See gstvidclsclipper.cpp for the element's documentation.
 */
#ifndef __GST_VIDCLS_CLIPPER_H__
#define __GST_VIDCLS_CLIPPER_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/**
 * GstVidclsClipperResize:
 * @GST_VIDCLS_CLIPPER_RESIZE_AUTO: what the model downstream was trained with (crop when
 *   nobody answers)
 * @GST_VIDCLS_CLIPPER_RESIZE_CROP: scale the short side, then take the centre
 * @GST_VIDCLS_CLIPPER_RESIZE_LETTERBOX: scale to fit, pad with the mean colour
 * @GST_VIDCLS_CLIPPER_RESIZE_STRETCH: scale each axis on its own
 */
typedef enum {
  GST_VIDCLS_CLIPPER_RESIZE_AUTO,
  GST_VIDCLS_CLIPPER_RESIZE_CROP,
  GST_VIDCLS_CLIPPER_RESIZE_LETTERBOX,
  GST_VIDCLS_CLIPPER_RESIZE_STRETCH,
} GstVidclsClipperResize;

/**
 * GstVidclsClipperEosPolicy:
 * @GST_VIDCLS_CLIPPER_EOS_DROP: frames that do not fill a clip are dropped
 * @GST_VIDCLS_CLIPPER_EOS_PAD: the last clip is filled up with its last frame
 * @GST_VIDCLS_CLIPPER_EOS_PARTIAL: the last clip is sent with the frames it has
 */
typedef enum {
  GST_VIDCLS_CLIPPER_EOS_DROP,
  GST_VIDCLS_CLIPPER_EOS_PAD,
  GST_VIDCLS_CLIPPER_EOS_PARTIAL,
} GstVidclsClipperEosPolicy;

/**
 * GstVidclsClipperRegion:
 * @GST_VIDCLS_CLIPPER_REGION_FULL_FRAME: clips of whole frames
 * @GST_VIDCLS_CLIPPER_REGION_ROI_LIST: clips of each tracked object, from the
 *   region-of-interest metas on the frames
 */
typedef enum {
  GST_VIDCLS_CLIPPER_REGION_FULL_FRAME,
  GST_VIDCLS_CLIPPER_REGION_ROI_LIST,
} GstVidclsClipperRegion;

#define GST_TYPE_VIDCLS_CLIPPER_REGION (gst_vidcls_clipper_region_get_type ())
GType gst_vidcls_clipper_region_get_type (void);

#define GST_TYPE_VIDCLS_CLIPPER_RESIZE (gst_vidcls_clipper_resize_get_type ())
GType gst_vidcls_clipper_resize_get_type (void);

#define GST_TYPE_VIDCLS_CLIPPER_EOS_POLICY (gst_vidcls_clipper_eos_policy_get_type ())
GType gst_vidcls_clipper_eos_policy_get_type (void);

#define GST_TYPE_VIDCLS_CLIPPER (gst_vidcls_clipper_get_type ())
G_DECLARE_FINAL_TYPE (GstVidclsClipper, gst_vidcls_clipper, GST, VIDCLS_CLIPPER,
    GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (vidclsclipper);

G_END_DECLS

#endif /* __GST_VIDCLS_CLIPPER_H__ */
