/* vidclsroireplay: puts the boxes of an annotation file (MOTChallenge or AVA) on a stream as
 * region-of-interest metas, one per tracked object and frame. See gstvidclsroireplay.cpp.
 */
#ifndef __GST_VIDCLS_ROI_REPLAY_H__
#define __GST_VIDCLS_ROI_REPLAY_H__

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

/**
 * GstVidclsRoiReplayFormat:
 * @GST_VIDCLS_ROI_REPLAY_FORMAT_AUTO: by the file name: .csv is AVA, anything else MOTChallenge
 * @GST_VIDCLS_ROI_REPLAY_FORMAT_MOT: MOTChallenge (gt.txt, det.txt): frames, pixels
 * @GST_VIDCLS_ROI_REPLAY_FORMAT_AVA: AVA (CSV): seconds, boxes in fractions of the frame
 */
typedef enum {
  GST_VIDCLS_ROI_REPLAY_FORMAT_AUTO,
  GST_VIDCLS_ROI_REPLAY_FORMAT_MOT,
  GST_VIDCLS_ROI_REPLAY_FORMAT_AVA,
} GstVidclsRoiReplayFormat;

#define GST_TYPE_VIDCLS_ROI_REPLAY (gst_vidcls_roi_replay_get_type ())
G_DECLARE_FINAL_TYPE (GstVidclsRoiReplay, gst_vidcls_roi_replay, GST, VIDCLS_ROI_REPLAY,
    GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (vidclsroireplay);

G_END_DECLS

#endif /* __GST_VIDCLS_ROI_REPLAY_H__ */
