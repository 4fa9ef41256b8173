/* vidclspublish: writes every classification and action event as one JSON line, to a file and/or
 * an MQTT broker, passing the stream through. See gstvidclspublish.cpp for the element's
 * documentation and docs/vidcls-results.schema.json for the lines.
 */
#ifndef __GST_VIDCLS_PUBLISH_H__
#define __GST_VIDCLS_PUBLISH_H__

#include <gst/gst.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

/**
 * GstVidclsPublishFileMode:
 * @GST_VIDCLS_PUBLISH_FILE_APPEND: lines are added after what the file holds
 * @GST_VIDCLS_PUBLISH_FILE_TRUNCATE: the file is emptied when the element starts
 */
typedef enum {
  GST_VIDCLS_PUBLISH_FILE_APPEND,
  GST_VIDCLS_PUBLISH_FILE_TRUNCATE,
} GstVidclsPublishFileMode;

#define GST_TYPE_VIDCLS_PUBLISH_FILE_MODE (gst_vidcls_publish_file_mode_get_type ())
GType gst_vidcls_publish_file_mode_get_type (void);

#define GST_TYPE_VIDCLS_PUBLISH (gst_vidcls_publish_get_type ())
G_DECLARE_FINAL_TYPE (GstVidclsPublish, gst_vidcls_publish, GST, VIDCLS_PUBLISH,
    GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE (vidclspublish);

G_END_DECLS

#endif /* __GST_VIDCLS_PUBLISH_H__ */
