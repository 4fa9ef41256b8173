/* vidcls: classification results attached to video buffers.
 *
 * A GstVidclsClassificationMeta says what a classifier decided about one clip of the stream:
 * the top-k labels and scores, which clip (a #GstVidclsClip: its stream, index and the time span
 * from the PTS of its first frame to the end of its last frame), and which model. Application
 * code reads it with gst_buffer_get_vidcls_classification_meta(), or all of a buffer's with
 * gst_buffer_get_vidcls_classification_metas() (or gst_buffer_iterate_meta_filtered() with
 * GST_VIDCLS_CLASSIFICATION_META_API_TYPE) when a buffer carries several results.
 *
 * The meta describes the content of the stream over time, not the pixels of the buffer, so its
 * API has no tags: elements that change size, format or colorspace (videoconvert, videoscale,
 * GstBaseTransform's default), video encoders and decoders keep it, and gst_buffer_copy() copies
 * it (a deep copy).
 *
 * A GstVidclsActionMeta (from vidclsaction) says that an action started or ended: a label held
 * over a span of the stream, decided from the scores of successive clips.
 *
 * Build against it with `pkg-config --cflags --libs gstreamer-vidcls-meta-1.0` and include it
 * as <gst/vidcls/gstvidclsmeta.h>. Other languages read it through GObject introspection (the
 * GstVidcls-1.0 typelib): every getter is a function, and the counted arrays of a
 * classification have accessors (gst_vidcls_classification_meta_get_labels() and friends),
 * since bindings cannot read an array field whose length is in another field.
 */
#ifndef __GST_VIDCLS_META_H__
#define __GST_VIDCLS_META_H__

#include <gst/gst.h>

G_BEGIN_DECLS

/* Exported from the library (built with -DBUILDING_GST_VIDCLS_META and hidden visibility),
 * imported by everyone else, as GST_VIDEO_API does for libgstvideo. */
#ifndef GST_VIDCLS_META_API
# ifdef BUILDING_GST_VIDCLS_META
#  define GST_VIDCLS_META_API GST_API_EXPORT
# else
#  define GST_VIDCLS_META_API GST_API_IMPORT
# endif
#endif

#define GST_VIDCLS_CLASSIFICATION_META_API_TYPE (gst_vidcls_classification_meta_api_get_type ())
#define GST_VIDCLS_CLASSIFICATION_META_INFO (gst_vidcls_classification_meta_get_info ())

#define GST_VIDCLS_ACTION_META_API_TYPE (gst_vidcls_action_meta_api_get_type ())
#define GST_VIDCLS_ACTION_META_INFO (gst_vidcls_action_meta_get_info ())

typedef struct _GstVidclsClip GstVidclsClip;
typedef struct _GstVidclsClassificationMeta GstVidclsClassificationMeta;
typedef struct _GstVidclsAction GstVidclsAction;
typedef struct _GstVidclsActionMeta GstVidclsActionMeta;

/**
 * GstVidclsClip:
 * @stream_id: the GStreamer stream-id of the stream the clip was cut from (from its
 *   stream-start event); never %NULL, "" when unknown
 * @object_id: the tracked object the clip follows, -1 for a clip of whole frames
 * @index: index of the clip in the stream, from 0, reset by flushes, seeks and caps changes
 * @start: PTS of the first frame of the clip (a buffer timestamp, not running time)
 * @end: PTS of the last frame of the clip plus its duration (GST_CLOCK_TIME_NONE if unknown)
 * @partial: TRUE when the clip was completed at end of stream from fewer frames than the model
 *   takes (vidclsclipper eos-policy=pad or partial)
 * @box_x: a tracked object's clip: left edge of the object's box on the clip's last frame, in
 *   pixels of the frame (rounded); 0 for whole frames
 * @box_y: top edge of that box; 0 for whole frames
 * @box_width: width of that box; 0 for whole frames
 * @box_height: height of that box; 0 for whole frames
 *
 * Which clip of which stream a result is about: the same record vidclsclipper made when it cut
 * the clip, as the "vidcls-classification" bus message carries it.
 */
struct _GstVidclsClip {
  gchar *stream_id;
  gint64 object_id;
  guint64 index;
  GstClockTime start;
  GstClockTime end;
  gboolean partial;
  gint box_x;
  gint box_y;
  gint box_width;
  gint box_height;
};

/**
 * GstVidclsClassificationMeta:
 * @meta: parent #GstMeta
 * @clip: which clip the result is about
 * @model: name of the model (checkpoint preset or file name); never %NULL, may be ""
 * @n_results: number of entries in @labels, @scores and @class_ids (top-k after threshold);
 *   may be 0
 * @labels: (array length=n_results): class labels, best first; also %NULL-terminated
 *   (never %NULL itself, so g_strv_length() and friends work)
 * @scores: (array length=n_results): softmax probabilities, in the same order (%NULL when
 *   @n_results is 0)
 * @class_ids: (array length=n_results): index of each label in the model's head, -1 when
 *   unknown (%NULL when @n_results is 0)
 *
 * The result of classifying one clip. The buffer that carries it is the one that completed the
 * clip (synchronous mode) or the first buffer after the result was ready (asynchronous mode):
 * @clip's start and end, not the buffer's timestamp, say which part of the stream it is about.
 */
struct _GstVidclsClassificationMeta {
  GstMeta meta;

  GstVidclsClip clip;
  gchar *model;
  guint n_results;
  gchar **labels;
  gfloat *scores;
  gint *class_ids;
};

GST_VIDCLS_META_API
GType gst_vidcls_classification_meta_api_get_type (void);

GST_VIDCLS_META_API
const GstMetaInfo *gst_vidcls_classification_meta_get_info (void);

/**
 * gst_buffer_add_vidcls_classification_meta:
 * @buffer: a writable #GstBuffer
 * @clip: which clip the result is about; copied (a %NULL @stream_id stores "")
 * @model: (nullable): name of the model; copied (%NULL stores "")
 * @n_results: number of results, may be 0
 * @labels: (array length=n_results) (nullable): copied; no element may be %NULL; may be %NULL
 *   only when @n_results is 0
 * @scores: (array length=n_results) (nullable): copied; may be %NULL only when @n_results is 0
 * @class_ids: (array length=n_results) (nullable): copied; %NULL stores -1 for each
 *
 * Attaches a deep copy of one classification result to @buffer. A buffer may carry several
 * (one per clip completed by it, or one per model).
 *
 * Returns: (transfer none): the new meta, owned by @buffer
 */
GST_VIDCLS_META_API
GstVidclsClassificationMeta *gst_buffer_add_vidcls_classification_meta (GstBuffer * buffer,
    const GstVidclsClip * clip, const gchar * model, guint n_results,
    const gchar * const *labels, const gfloat * scores, const gint * class_ids);

GST_VIDCLS_META_API
GstVidclsClassificationMeta *gst_buffer_get_vidcls_classification_meta (GstBuffer * buffer);

GST_VIDCLS_META_API
GList *gst_buffer_get_vidcls_classification_metas (GstBuffer * buffer);

GST_VIDCLS_META_API
const gchar *const *gst_vidcls_classification_meta_get_labels (
    const GstVidclsClassificationMeta * meta);

GST_VIDCLS_META_API
const gfloat *gst_vidcls_classification_meta_get_scores (
    const GstVidclsClassificationMeta * meta, guint * n_scores);

GST_VIDCLS_META_API
const gint *gst_vidcls_classification_meta_get_class_ids (
    const GstVidclsClassificationMeta * meta, guint * n_class_ids);

/**
 * GstVidclsActionPhase:
 * @GST_VIDCLS_ACTION_PHASE_START: the action started (the "vidcls-action-start" message)
 * @GST_VIDCLS_ACTION_PHASE_END: the action ended (the "vidcls-action-end" message)
 *
 * Which edge of an action a #GstVidclsActionMeta reports.
 */
typedef enum {
  GST_VIDCLS_ACTION_PHASE_START = 0,
  GST_VIDCLS_ACTION_PHASE_END = 1,
} GstVidclsActionPhase;

/**
 * GstVidclsAction:
 * @stream_id: the GStreamer stream-id of the stream the action was seen in (as in the clips it
 *   was decided from); never %NULL, "" when unknown
 * @object_id: the tracked object, -1 for whole frames (as in #GstVidclsClip)
 * @id: number of the action in its element, from 0; the start and the end of one action carry
 *   the same @id
 * @label: the action's class label; never %NULL
 * @class_id: index of the label in the model's head, -1 when unknown
 * @start: PTS at which the action started (a buffer timestamp, not running time)
 * @end: PTS at which it ended; GST_CLOCK_TIME_NONE in a start
 * @peak_score: the highest score of @label over the clips of the action so far (0..1)
 * @mean_score: the mean score of @label over the clips of the action so far (0..1)
 * @n_clips: number of clips the action spans so far
 * @model: name of the model whose results it was decided from; never %NULL, may be ""
 *
 * One action, as vidclsaction decides it from the scores of successive clips: a span of the
 * stream during which @label was held. The same fields, named as in the bus messages, are in
 * "vidcls-action-start" and "vidcls-action-end".
 */
struct _GstVidclsAction {
  gchar *stream_id;
  gint64 object_id;
  guint64 id;
  gchar *label;
  gint class_id;
  GstClockTime start;
  GstClockTime end;
  gfloat peak_score;
  gfloat mean_score;
  guint n_clips;
  gchar *model;
};

/**
 * GstVidclsActionMeta:
 * @meta: parent #GstMeta
 * @phase: whether the action started or ended
 * @action: the action
 *
 * An action that started or ended, attached by vidclsaction to the buffer that carried the
 * classification it was decided on. Like #GstVidclsClassificationMeta it is about a span of the
 * stream (@action's start and end), not the buffer's pixels: it has no tags and survives
 * conversions and copies. A buffer may carry several (one per action starting or ending there).
 */
struct _GstVidclsActionMeta {
  GstMeta meta;

  GstVidclsActionPhase phase;
  GstVidclsAction action;
};

GST_VIDCLS_META_API
GType gst_vidcls_action_meta_api_get_type (void);

GST_VIDCLS_META_API
const GstMetaInfo *gst_vidcls_action_meta_get_info (void);

/**
 * gst_buffer_add_vidcls_action_meta:
 * @buffer: a writable #GstBuffer
 * @phase: start or end
 * @action: the action; deep-copied (%NULL strings store "")
 *
 * Returns: (transfer none): the new meta, owned by @buffer
 */
GST_VIDCLS_META_API
GstVidclsActionMeta *gst_buffer_add_vidcls_action_meta (GstBuffer * buffer,
    GstVidclsActionPhase phase, const GstVidclsAction * action);

GST_VIDCLS_META_API
GstVidclsActionMeta *gst_buffer_get_vidcls_action_meta (GstBuffer * buffer);

GST_VIDCLS_META_API
GList *gst_buffer_get_vidcls_action_metas (GstBuffer * buffer);

G_END_DECLS

#endif /* __GST_VIDCLS_META_H__ */
