/* vidclsoverlay: draws the latest classification (top-k labels and scores) and the open actions
 * on the video. See gstvidclsoverlay.cpp for the element's documentation.
 */
#ifndef __GST_VIDCLS_OVERLAY_H__
#define __GST_VIDCLS_OVERLAY_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/**
 * GstVidclsOverlayPosition:
 * @GST_VIDCLS_OVERLAY_POSITION_TOP_LEFT: the text box's top-left corner at (x-offset, y-offset)
 * @GST_VIDCLS_OVERLAY_POSITION_TOP_RIGHT: its top-right corner x-offset from the right edge,
 *   y-offset from the top
 * @GST_VIDCLS_OVERLAY_POSITION_BOTTOM_LEFT: its bottom-left corner x-offset from the left edge,
 *   y-offset from the bottom
 * @GST_VIDCLS_OVERLAY_POSITION_BOTTOM_RIGHT: its bottom-right corner x-offset from the right
 *   edge, y-offset from the bottom
 *
 * Which corner of the frame the text box is anchored to.
 */
typedef enum {
  GST_VIDCLS_OVERLAY_POSITION_TOP_LEFT,
  GST_VIDCLS_OVERLAY_POSITION_TOP_RIGHT,
  GST_VIDCLS_OVERLAY_POSITION_BOTTOM_LEFT,
  GST_VIDCLS_OVERLAY_POSITION_BOTTOM_RIGHT,
} GstVidclsOverlayPosition;

#define GST_TYPE_VIDCLS_OVERLAY_POSITION (gst_vidcls_overlay_position_get_type ())
GType gst_vidcls_overlay_position_get_type (void);

#define GST_TYPE_VIDCLS_OVERLAY (gst_vidcls_overlay_get_type ())
G_DECLARE_FINAL_TYPE (GstVidclsOverlay, gst_vidcls_overlay, GST, VIDCLS_OVERLAY,
    GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (vidclsoverlay);

G_END_DECLS

#endif /* __GST_VIDCLS_OVERLAY_H__ */
