/* vidclsaction: turns the clip results of an inference element into action start and end
 * events. See gstvidclsaction.cpp for the element's documentation.
 */
#ifndef __GST_VIDCLS_ACTION_H__
#define __GST_VIDCLS_ACTION_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/**
 * GstVidclsActionSmoothing:
 * @GST_VIDCLS_ACTION_SMOOTHING_MOVING_AVERAGE: the mean of a label's scores over the last
 *   `window` clips
 * @GST_VIDCLS_ACTION_SMOOTHING_EXPONENTIAL: an exponential average with alpha = 2 / (window + 1)
 *
 * How vidclsaction smooths a label's clip scores before comparing them with its thresholds.
 */
typedef enum {
  GST_VIDCLS_ACTION_SMOOTHING_MOVING_AVERAGE,
  GST_VIDCLS_ACTION_SMOOTHING_EXPONENTIAL,
} GstVidclsActionSmoothing;

#define GST_TYPE_VIDCLS_ACTION_SMOOTHING (gst_vidcls_action_smoothing_get_type ())
GType gst_vidcls_action_smoothing_get_type (void);

/* The element's type is GstVidclsActionDetector: GstVidclsAction is the action itself, the value
 * a GstVidclsActionMeta carries (gstvidclsmeta.h). */
#define GST_TYPE_VIDCLS_ACTION_DETECTOR (gst_vidcls_action_detector_get_type ())
G_DECLARE_FINAL_TYPE (GstVidclsActionDetector, gst_vidcls_action_detector, GST,
    VIDCLS_ACTION_DETECTOR, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (vidclsaction);

G_END_DECLS

#endif /* __GST_VIDCLS_ACTION_H__ */
