/* vidcls: classification results attached to video buffers.
 *
 * In the pattern of gst-plugins-base gst-libs/gst/video/gstvideometa.c: an API type, the
 * implementation registered once, a transform that deep-copies on buffer copy, and the
 * gst_buffer_add_ / gst_buffer_get_ helpers. The getters are functions, not macros, and the
 * counted arrays have accessors, so that GObject introspection (the GstVidcls-1.0 typelib) gives
 * them to Python and other bindings, which can neither call a macro nor read an array field
 * whose length is another field.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstvidclsmeta.h"

#include <string.h>

/**
 * gst_vidcls_classification_meta_api_get_type:
 *
 * The API type has no tags on purpose. A tag says which property of the buffer a meta depends
 * on (GST_META_TAG_VIDEO_SIZE_STR: it holds pixel coordinates; GST_META_TAG_MEMORY_STR: it
 * points into the memory; ...), and elements drop or transform the metas whose tags name
 * something they change. A classification result depends on none of them: it is about a time
 * span of the stream, named by its own @start and @end, whatever happens to the pixels.
 * Untagged metas are copied by every element that copies metas at all: videoconvert and
 * videoscale, every GstVideoFilter, GstBaseTransform's default transform_meta, the
 * GstVideoEncoder/Decoder base classes. GstVideoTimeCodeMeta and GstVideoCaptionMeta, also
 * about content over time, have no tags for the same reason. (GST_META_TAG_VIDEO_STR alone
 * would be kept by the video base classes too, but dropped by GstBaseTransform's default and
 * the audio base classes, and it would say nothing a reader can use.)
 *
 * Returns: the #GType of the #GstVidclsClassificationMeta API
 */
GType
gst_vidcls_classification_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType _type =
        gst_meta_api_type_register ("GstVidclsClassificationMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

static gboolean
gst_vidcls_classification_meta_init (GstMeta * meta,
    G_GNUC_UNUSED gpointer params, G_GNUC_UNUSED GstBuffer * buffer)
{
  GstVidclsClassificationMeta *cmeta = (GstVidclsClassificationMeta *) meta;

  cmeta->clip.stream_id = NULL;
  cmeta->clip.object_id = -1;
  cmeta->clip.index = 0;
  cmeta->clip.start = GST_CLOCK_TIME_NONE;
  cmeta->clip.end = GST_CLOCK_TIME_NONE;
  cmeta->clip.partial = FALSE;
  cmeta->clip.box_x = cmeta->clip.box_y = 0;
  cmeta->clip.box_width = cmeta->clip.box_height = 0;
  cmeta->model = NULL;
  cmeta->n_results = 0;
  cmeta->labels = NULL;
  cmeta->scores = NULL;
  cmeta->class_ids = NULL;

  return TRUE;
}

static void
gst_vidcls_classification_meta_free (GstMeta * meta,
    G_GNUC_UNUSED GstBuffer * buffer)
{
  GstVidclsClassificationMeta *cmeta = (GstVidclsClassificationMeta *) meta;

  g_free (cmeta->clip.stream_id);
  g_free (cmeta->model);
  g_strfreev (cmeta->labels);
  g_free (cmeta->scores);
  g_free (cmeta->class_ids);
  cmeta->clip.stream_id = NULL;
  cmeta->model = NULL;
  cmeta->labels = NULL;
  cmeta->scores = NULL;
  cmeta->class_ids = NULL;
  cmeta->n_results = 0;
}

/* Fills a fresh meta with deep copies; the arguments were checked by the caller. */
static void
gst_vidcls_classification_meta_set (GstVidclsClassificationMeta * cmeta,
    const GstVidclsClip * clip, const gchar * model, guint n_results,
    const gchar * const *labels, const gfloat * scores, const gint * class_ids)
{
  guint i;

  cmeta->clip = *clip;
  cmeta->clip.stream_id = g_strdup (clip->stream_id ? clip->stream_id : "");
  cmeta->model = g_strdup (model ? model : "");
  cmeta->n_results = n_results;

  /* NULL-terminated as well as counted, so it is a valid GStrv even when empty. */
  cmeta->labels = g_new0 (gchar *, n_results + 1);
  for (i = 0; i < n_results; i++)
    cmeta->labels[i] = g_strdup (labels[i]);

  if (n_results == 0)
    return;

  /* g_memdup2() needs GLib 2.68, newer than GStreamer 1.20 requires. */
  cmeta->scores = g_new (gfloat, n_results);
  memcpy (cmeta->scores, scores, sizeof (gfloat) * n_results);
  cmeta->class_ids = g_new (gint, n_results);
  if (class_ids) {
    memcpy (cmeta->class_ids, class_ids, sizeof (gint) * n_results);
  } else {
    for (i = 0; i < n_results; i++)
      cmeta->class_ids[i] = -1;
  }
}

static gboolean
gst_vidcls_classification_meta_transform (GstBuffer * dest, GstMeta * meta,
    G_GNUC_UNUSED GstBuffer * buffer, GQuark type, G_GNUC_UNUSED gpointer data)
{
  GstVidclsClassificationMeta *smeta = (GstVidclsClassificationMeta *) meta;
  GstVidclsClassificationMeta *dmeta;

  /* The result is about a time span, not about the buffer's memory or pixels: a copy of any
   * region of the buffer still carries it, so GstMetaTransformCopy's region is not looked at.
   * Other transforms (e.g. video scale) are not ours to handle. */
  if (!GST_META_TRANSFORM_IS_COPY (type))
    return FALSE;

  dmeta = (GstVidclsClassificationMeta *) gst_buffer_add_meta (dest,
      GST_VIDCLS_CLASSIFICATION_META_INFO, NULL);
  if (!dmeta)
    return FALSE;

  gst_vidcls_classification_meta_set (dmeta, &smeta->clip, smeta->model,
      smeta->n_results, (const gchar * const *) smeta->labels, smeta->scores,
      smeta->class_ids);
  return TRUE;
}

/**
 * gst_vidcls_classification_meta_get_info:
 *
 * Returns: the #GstMetaInfo of #GstVidclsClassificationMeta, registered on first use
 */
const GstMetaInfo *
gst_vidcls_classification_meta_get_info (void)
{
  static const GstMetaInfo *meta_info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & meta_info)) {
    const GstMetaInfo *mi =
        gst_meta_register (GST_VIDCLS_CLASSIFICATION_META_API_TYPE,
        "GstVidclsClassificationMeta", sizeof (GstVidclsClassificationMeta),
        gst_vidcls_classification_meta_init,
        gst_vidcls_classification_meta_free,
        gst_vidcls_classification_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & meta_info, (GstMetaInfo *) mi);
  }
  return meta_info;
}

GstVidclsClassificationMeta *
gst_buffer_add_vidcls_classification_meta (GstBuffer * buffer,
    const GstVidclsClip * clip, const gchar * model, guint n_results,
    const gchar * const *labels, const gfloat * scores, const gint * class_ids)
{
  GstVidclsClassificationMeta *cmeta;
  guint i;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  g_return_val_if_fail (clip != NULL, NULL);
  g_return_val_if_fail (n_results == 0 || labels != NULL, NULL);
  g_return_val_if_fail (n_results == 0 || scores != NULL, NULL);
  for (i = 0; i < n_results; i++)
    g_return_val_if_fail (labels[i] != NULL, NULL);

  cmeta = (GstVidclsClassificationMeta *) gst_buffer_add_meta (buffer,
      GST_VIDCLS_CLASSIFICATION_META_INFO, NULL);
  if (!cmeta)
    return NULL;

  gst_vidcls_classification_meta_set (cmeta, clip, model, n_results, labels,
      scores, class_ids);
  return cmeta;
}

/* Every meta of @api on @buffer, in the order they were attached. */
static GList *
metas_of (GstBuffer * buffer, GType api)
{
  GList *metas = NULL;
  gpointer state = NULL;
  GstMeta *meta;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state, api)))
    metas = g_list_prepend (metas, meta);
  return g_list_reverse (metas);
}

/**
 * gst_buffer_get_vidcls_classification_meta:
 * @buffer: a #GstBuffer
 *
 * The first classification result of @buffer. A buffer may carry several (one per clip it
 * completed, or one per model): gst_buffer_get_vidcls_classification_metas() gives them all.
 *
 * Returns: (transfer none) (nullable): the first #GstVidclsClassificationMeta of @buffer, or
 *   %NULL when it has none
 */
GstVidclsClassificationMeta *
gst_buffer_get_vidcls_classification_meta (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstVidclsClassificationMeta *) gst_buffer_get_meta (buffer,
      GST_VIDCLS_CLASSIFICATION_META_API_TYPE);
}

/**
 * gst_buffer_get_vidcls_classification_metas:
 * @buffer: a #GstBuffer
 *
 * Every classification result of @buffer, in the order they were attached; the same metas
 * gst_buffer_iterate_meta_filtered() with %GST_VIDCLS_CLASSIFICATION_META_API_TYPE visits, as a
 * list that bindings can iterate.
 *
 * Returns: (transfer container) (element-type GstVidclsClassificationMeta): the metas, owned by
 *   @buffer (free the list with g_list_free(), not its elements); %NULL (the empty list) when
 *   @buffer has none
 */
GList *
gst_buffer_get_vidcls_classification_metas (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return metas_of (buffer, GST_VIDCLS_CLASSIFICATION_META_API_TYPE);
}

/**
 * gst_vidcls_classification_meta_get_labels:
 * @meta: a #GstVidclsClassificationMeta
 *
 * The labels of @meta, best first: the same array as its @labels field.
 *
 * Returns: (transfer none) (array zero-terminated=1): @meta's labels, %NULL-terminated; empty
 *   (not %NULL) when it has no results
 */
const gchar *const *
gst_vidcls_classification_meta_get_labels (const GstVidclsClassificationMeta * meta)
{
  static const gchar *const no_labels[] = { NULL };

  g_return_val_if_fail (meta != NULL, no_labels);

  return meta->labels ? (const gchar * const *) meta->labels : no_labels;
}

/**
 * gst_vidcls_classification_meta_get_scores:
 * @meta: a #GstVidclsClassificationMeta
 * @n_scores: (out) (optional): where to store the number of scores (@meta's @n_results)
 *
 * The scores of @meta (softmax probabilities), in the order of its labels: the same array as its
 * @scores field.
 *
 * Returns: (transfer none) (array length=n_scores) (nullable): @meta's scores; %NULL when it has
 *   no results
 */
const gfloat *
gst_vidcls_classification_meta_get_scores (const GstVidclsClassificationMeta * meta,
    guint * n_scores)
{
  if (n_scores)
    *n_scores = 0;
  g_return_val_if_fail (meta != NULL, NULL);

  if (n_scores)
    *n_scores = meta->n_results;
  return meta->scores;
}

/**
 * gst_vidcls_classification_meta_get_class_ids:
 * @meta: a #GstVidclsClassificationMeta
 * @n_class_ids: (out) (optional): where to store the number of class ids (@meta's @n_results)
 *
 * The index of each label of @meta in the model's head (-1 when unknown), in the order of its
 * labels: the same array as its @class_ids field.
 *
 * Returns: (transfer none) (array length=n_class_ids) (nullable): @meta's class ids; %NULL
 *   when it has no results
 */
const gint *
gst_vidcls_classification_meta_get_class_ids (const GstVidclsClassificationMeta * meta,
    guint * n_class_ids)
{
  if (n_class_ids)
    *n_class_ids = 0;
  g_return_val_if_fail (meta != NULL, NULL);

  if (n_class_ids)
    *n_class_ids = meta->n_results;
  return meta->class_ids;
}

/* ------------------------------------------------------------------ actions */

/**
 * gst_vidcls_action_meta_api_get_type:
 *
 * No tags, for the reasons given for #GstVidclsClassificationMeta: an action is a span of the
 * stream, not a property of the buffer's pixels or memory.
 *
 * Returns: the #GType of the #GstVidclsActionMeta API
 */
GType
gst_vidcls_action_meta_api_get_type (void)
{
  static GType type = 0;
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType _type = gst_meta_api_type_register ("GstVidclsActionMetaAPI", tags);
    g_once_init_leave (&type, _type);
  }
  return type;
}

static gboolean
gst_vidcls_action_meta_init (GstMeta * meta, G_GNUC_UNUSED gpointer params,
    G_GNUC_UNUSED GstBuffer * buffer)
{
  GstVidclsActionMeta *ameta = (GstVidclsActionMeta *) meta;

  memset (&ameta->action, 0, sizeof (ameta->action));
  ameta->phase = GST_VIDCLS_ACTION_PHASE_START;
  ameta->action.object_id = -1;
  ameta->action.class_id = -1;
  ameta->action.start = GST_CLOCK_TIME_NONE;
  ameta->action.end = GST_CLOCK_TIME_NONE;
  return TRUE;
}

static void
gst_vidcls_action_meta_free (GstMeta * meta, G_GNUC_UNUSED GstBuffer * buffer)
{
  GstVidclsActionMeta *ameta = (GstVidclsActionMeta *) meta;

  g_free (ameta->action.stream_id);
  g_free (ameta->action.label);
  g_free (ameta->action.model);
  ameta->action.stream_id = NULL;
  ameta->action.label = NULL;
  ameta->action.model = NULL;
}

static void
gst_vidcls_action_meta_set (GstVidclsActionMeta * ameta, GstVidclsActionPhase phase,
    const GstVidclsAction * action)
{
  ameta->phase = phase;
  ameta->action = *action;
  ameta->action.stream_id = g_strdup (action->stream_id ? action->stream_id : "");
  ameta->action.label = g_strdup (action->label ? action->label : "");
  ameta->action.model = g_strdup (action->model ? action->model : "");
}

static gboolean
gst_vidcls_action_meta_transform (GstBuffer * dest, GstMeta * meta,
    G_GNUC_UNUSED GstBuffer * buffer, GQuark type, G_GNUC_UNUSED gpointer data)
{
  GstVidclsActionMeta *smeta = (GstVidclsActionMeta *) meta;
  GstVidclsActionMeta *dmeta;

  if (!GST_META_TRANSFORM_IS_COPY (type))
    return FALSE;
  dmeta = (GstVidclsActionMeta *) gst_buffer_add_meta (dest, GST_VIDCLS_ACTION_META_INFO,
      NULL);
  if (!dmeta)
    return FALSE;
  gst_vidcls_action_meta_set (dmeta, smeta->phase, &smeta->action);
  return TRUE;
}

/**
 * gst_vidcls_action_meta_get_info:
 *
 * Returns: the #GstMetaInfo of #GstVidclsActionMeta, registered on first use
 */
const GstMetaInfo *
gst_vidcls_action_meta_get_info (void)
{
  static const GstMetaInfo *meta_info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & meta_info)) {
    const GstMetaInfo *mi = gst_meta_register (GST_VIDCLS_ACTION_META_API_TYPE,
        "GstVidclsActionMeta", sizeof (GstVidclsActionMeta),
        gst_vidcls_action_meta_init, gst_vidcls_action_meta_free,
        gst_vidcls_action_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & meta_info, (GstMetaInfo *) mi);
  }
  return meta_info;
}

GstVidclsActionMeta *
gst_buffer_add_vidcls_action_meta (GstBuffer * buffer, GstVidclsActionPhase phase,
    const GstVidclsAction * action)
{
  GstVidclsActionMeta *ameta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (gst_buffer_is_writable (buffer), NULL);
  g_return_val_if_fail (action != NULL, NULL);
  g_return_val_if_fail (phase == GST_VIDCLS_ACTION_PHASE_START
      || phase == GST_VIDCLS_ACTION_PHASE_END, NULL);

  ameta = (GstVidclsActionMeta *) gst_buffer_add_meta (buffer, GST_VIDCLS_ACTION_META_INFO,
      NULL);
  if (!ameta)
    return NULL;
  gst_vidcls_action_meta_set (ameta, phase, action);
  return ameta;
}

/**
 * gst_buffer_get_vidcls_action_meta:
 * @buffer: a #GstBuffer
 *
 * The first action event of @buffer. A buffer may carry several (one per action starting or
 * ending there): gst_buffer_get_vidcls_action_metas() gives them all.
 *
 * Returns: (transfer none) (nullable): the first #GstVidclsActionMeta of @buffer, or %NULL when
 *   it has none
 */
GstVidclsActionMeta *
gst_buffer_get_vidcls_action_meta (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return (GstVidclsActionMeta *) gst_buffer_get_meta (buffer, GST_VIDCLS_ACTION_META_API_TYPE);
}

/**
 * gst_buffer_get_vidcls_action_metas:
 * @buffer: a #GstBuffer
 *
 * Every action event of @buffer (starts and ends), in the order they were attached.
 *
 * Returns: (transfer container) (element-type GstVidclsActionMeta): the metas, owned by
 *   @buffer (free the list with g_list_free(), not its elements); %NULL (the empty list) when
 *   @buffer has none
 */
GList *
gst_buffer_get_vidcls_action_metas (GstBuffer * buffer)
{
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  return metas_of (buffer, GST_VIDCLS_ACTION_META_API_TYPE);
}
