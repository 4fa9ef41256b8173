/* GstVidclsClassificationMeta: what an application reading results relies on. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>

#include "gstvidclsmeta.h"

static const gchar *const kLabels[] = { "slide_left", "slide_right", "rotate_cw" };
static const gfloat kScores[] = { 0.75f, 0.125f, 0.0625f };
static const gint kClassIds[] = { 4, 0, 7 };

#define CLIP_START (2 * GST_SECOND)
#define CLIP_END (3 * GST_SECOND + 66 * GST_MSECOND)
#define STREAM_ID "0a1b2c/video"

/* A clip record as vidclsclipper makes it. */
static GstVidclsClip
clip_of (guint64 index, GstClockTime start, GstClockTime end, gboolean partial)
{
  GstVidclsClip clip = { (gchar *) STREAM_ID, -1, index, start, end, partial, 0, 0, 0, 0 };
  return clip;
}

static GstVidclsClassificationMeta *
add_three (GstBuffer * buf, guint64 clip_index)
{
  GstVidclsClip clip = clip_of (clip_index, CLIP_START, CLIP_END, FALSE);

  return gst_buffer_add_vidcls_classification_meta (buf, &clip, "vivit-tiny",
      G_N_ELEMENTS (kLabels), kLabels, kScores, kClassIds);
}

/* Every field of a meta made by add_three(). */
static void
check_three (const GstVidclsClassificationMeta * m, guint64 clip_index)
{
  guint i;

  fail_unless (m != NULL);
  fail_unless_equals_uint64 (m->clip.index, clip_index);
  fail_unless_equals_uint64 (m->clip.start, CLIP_START);
  fail_unless_equals_uint64 (m->clip.end, CLIP_END);
  fail_unless_equals_string (m->clip.stream_id, STREAM_ID);
  fail_unless_equals_int64 (m->clip.object_id, -1);
  fail_unless (m->clip.partial == FALSE);
  fail_unless_equals_string (m->model, "vivit-tiny");
  fail_unless_equals_int (m->n_results, 3);
  for (i = 0; i < 3; i++) {
    fail_unless_equals_string (m->labels[i], kLabels[i]);
    fail_unless_equals_float (m->scores[i], kScores[i]);
    fail_unless_equals_int (m->class_ids[i], kClassIds[i]);
  }
  /* a GStrv as well as a counted array */
  fail_unless (m->labels[3] == NULL);
  fail_unless_equals_int (g_strv_length (m->labels), 3);
}

GST_START_TEST (test_api_registered_once_without_tags)
{
  GType api = GST_VIDCLS_CLASSIFICATION_META_API_TYPE;

  fail_unless (api != 0);
  fail_unless (api == gst_vidcls_classification_meta_api_get_type ());
  fail_unless_equals_string (g_type_name (api), "GstVidclsClassificationMetaAPI");
  fail_unless (GST_VIDCLS_CLASSIFICATION_META_INFO ==
      gst_vidcls_classification_meta_get_info ());
  fail_unless (GST_VIDCLS_CLASSIFICATION_META_INFO->api == api);
  /* content over time, not pixels: no tags (see gstvidclsmeta.c) */
  fail_unless (gst_meta_api_type_get_tags (api) == NULL);
}

GST_END_TEST;

GST_START_TEST (test_add_and_read_back)
{
  GstBuffer *buf = gst_buffer_new ();
  GstVidclsClassificationMeta *added = add_three (buf, 5);

  fail_unless (added != NULL);
  fail_unless (gst_buffer_get_vidcls_classification_meta (buf) == added);
  check_three (gst_buffer_get_vidcls_classification_meta (buf), 5);
  /* copies, not references to the caller's arrays */
  fail_if ((gpointer) added->clip.stream_id == (gpointer) STREAM_ID);
  fail_if ((gpointer) added->labels[0] == (gpointer) kLabels[0]);
  fail_if ((gpointer) added->scores == (gpointer) kScores);
  fail_if ((gpointer) added->class_ids == (gpointer) kClassIds);

  gst_buffer_unref (buf);
}

GST_END_TEST;

GST_START_TEST (test_partial_and_unknown_end)
{
  GstBuffer *buf = gst_buffer_new ();
  GstVidclsClip clip = clip_of (9, 0, GST_CLOCK_TIME_NONE, TRUE);
  GstVidclsClassificationMeta *m;

  clip.stream_id = NULL;        /* unknown: stored as "" */
  m = gst_buffer_add_vidcls_classification_meta (buf, &clip, "m", 1, kLabels,
      kScores, kClassIds);
  fail_unless (m->clip.partial == TRUE);
  fail_unless (m->clip.end == GST_CLOCK_TIME_NONE);
  fail_unless_equals_string (m->clip.stream_id, "");
  gst_buffer_unref (buf);
}

GST_END_TEST;

GST_START_TEST (test_copy_is_deep_and_independent)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, 64, NULL);
  GstBuffer *copy, *region;
  GstVidclsClassificationMeta *orig, *copied;

  orig = add_three (buf, 1);
  copy = gst_buffer_copy (buf);
  copied = gst_buffer_get_vidcls_classification_meta (copy);
  check_three (copied, 1);
  fail_if (copied == orig);
  fail_if (copied->labels == orig->labels);
  fail_if (copied->labels[0] == orig->labels[0]);
  fail_if (copied->model == orig->model);
  fail_if (copied->clip.stream_id == orig->clip.stream_id);
  fail_if (copied->scores == orig->scores);
  fail_if (copied->class_ids == orig->class_ids);

  /* the result is about a time span, not bytes: a region copy keeps it too */
  region = gst_buffer_copy_region (buf, GST_BUFFER_COPY_ALL, 8, 16);
  check_three (gst_buffer_get_vidcls_classification_meta (region), 1);

  /* the copy outlives the original (run under valgrind/ASan to see a use-after-free) */
  gst_buffer_unref (buf);
  check_three (gst_buffer_get_vidcls_classification_meta (copy), 1);

  /* and changing the copy leaves nothing shared behind */
  copied->scores[0] = 0.5f;
  g_free (copied->labels[0]);
  copied->labels[0] = g_strdup ("changed");
  check_three (gst_buffer_get_vidcls_classification_meta (region), 1);

  gst_buffer_unref (copy);
  gst_buffer_unref (region);
}

GST_END_TEST;

GST_START_TEST (test_two_metas_iterate_filtered)
{
  GstBuffer *buf = gst_buffer_new ();
  GstCaps *ref = gst_caps_new_empty_simple ("timestamp/x-test");
  gpointer state = NULL;
  GstMeta *meta;
  guint n = 0, seen = 0;

  add_three (buf, 10);
  /* another API in between must not show up in the filtered iteration */
  gst_buffer_add_reference_timestamp_meta (buf, ref, GST_SECOND, GST_CLOCK_TIME_NONE);
  add_three (buf, 11);

  while ((meta = gst_buffer_iterate_meta_filtered (buf, &state,
              GST_VIDCLS_CLASSIFICATION_META_API_TYPE))) {
    GstVidclsClassificationMeta *m = (GstVidclsClassificationMeta *) meta;

    fail_unless (m->clip.index == 10 || m->clip.index == 11);
    check_three (m, m->clip.index);
    seen |= 1u << (m->clip.index - 10);
    n++;
  }
  fail_unless_equals_int (n, 2);
  fail_unless_equals_int (seen, 3);

  gst_caps_unref (ref);
  gst_buffer_unref (buf);
}

GST_END_TEST;

GST_START_TEST (test_no_results_is_valid)
{
  GstBuffer *buf = gst_buffer_new ();
  GstBuffer *copy;
  GstVidclsClassificationMeta *m;
  GstVidclsClip clip = clip_of (3, 0, GST_SECOND, FALSE);

  /* e.g. every score below the threshold: labels and scores may be NULL */
  m = gst_buffer_add_vidcls_classification_meta (buf, &clip, "m", 0, NULL, NULL,
      NULL);
  fail_unless (m != NULL);
  fail_unless_equals_int (m->n_results, 0);
  fail_unless (m->labels != NULL);
  fail_unless (m->labels[0] == NULL);
  fail_unless (m->scores == NULL);
  fail_unless (m->class_ids == NULL);

  copy = gst_buffer_copy (buf);
  gst_buffer_unref (buf);
  m = gst_buffer_get_vidcls_classification_meta (copy);
  fail_unless (m != NULL);
  fail_unless_equals_int (m->n_results, 0);
  fail_unless_equals_uint64 (m->clip.index, 3);
  fail_unless (m->labels != NULL && m->labels[0] == NULL);
  gst_buffer_unref (copy);
}

GST_END_TEST;

GST_START_TEST (test_null_class_ids_store_minus_one)
{
  GstBuffer *buf = gst_buffer_new ();
  GstVidclsClassificationMeta *m;
  GstVidclsClip clip = clip_of (0, 0, GST_SECOND, FALSE);
  guint i;

  m = gst_buffer_add_vidcls_classification_meta (buf, &clip, NULL,
      G_N_ELEMENTS (kLabels), kLabels, kScores, NULL);
  fail_unless (m->class_ids != NULL);
  for (i = 0; i < m->n_results; i++)
    fail_unless_equals_int (m->class_ids[i], -1);
  /* a NULL model is stored as "" so readers can print it */
  fail_unless_equals_string (m->model, "");
  gst_buffer_unref (buf);
}

GST_END_TEST;

GST_START_TEST (test_bad_arguments_are_refused)
{
  GstBuffer *buf = gst_buffer_new ();
  GstBuffer *ref = gst_buffer_ref (buf);
  const gchar *with_null[] = { "a", NULL };
  const gfloat scores[] = { 0.5f, 0.5f };
  GstVidclsClip clip = clip_of (0, 0, 0, FALSE);

  /* not writable */
  ASSERT_CRITICAL (gst_buffer_add_vidcls_classification_meta (buf, &clip, "m", 1,
          kLabels, kScores, NULL));
  gst_buffer_unref (ref);
  /* no clip; results without labels or scores; a NULL label */
  ASSERT_CRITICAL (gst_buffer_add_vidcls_classification_meta (buf, NULL, "m", 1,
          kLabels, kScores, NULL));
  ASSERT_CRITICAL (gst_buffer_add_vidcls_classification_meta (buf, &clip, "m", 1,
          NULL, kScores, NULL));
  ASSERT_CRITICAL (gst_buffer_add_vidcls_classification_meta (buf, &clip, "m", 1,
          kLabels, NULL, NULL));
  ASSERT_CRITICAL (gst_buffer_add_vidcls_classification_meta (buf, &clip, "m", 2,
          with_null, scores, NULL));
  fail_unless (gst_buffer_get_vidcls_classification_meta (buf) == NULL);
  gst_buffer_unref (buf);
}

GST_END_TEST;

/* Pushes one frame carrying a result through `launchline`, which must make a new output
 * buffer (so the element's transform_meta decides), and checks that the frame that comes out
 * still carries the result, intact. */
static void
check_kept_by (const gchar * launchline, const gchar * in_caps,
    const gchar * out_caps, gsize in_size)
{
  GstHarness *h = gst_harness_new_parse (launchline);
  GstBuffer *in, *out;

  gst_harness_set_caps_str (h, in_caps, out_caps);
  in = gst_harness_create_buffer (h, in_size);
  gst_buffer_memset (in, 0, 0x80, in_size);
  GST_BUFFER_PTS (in) = CLIP_END - GST_SECOND / 30;
  GST_BUFFER_DURATION (in) = GST_SECOND / 30;
  add_three (in, 2);

  /* held so the comparison below cannot be fooled by a reused address */
  out = gst_harness_push_and_pull (h, gst_buffer_ref (in));
  fail_unless (out != NULL, "%s produced no buffer", launchline);
  fail_if (out == in, "%s passed the buffer through; nothing was checked",
      launchline);
  check_three (gst_buffer_get_vidcls_classification_meta (out), 2);

  gst_buffer_unref (in);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

#define RGB_64x48 "video/x-raw,format=RGB,width=64,height=48,framerate=30/1"
#define I420_64x48 "video/x-raw,format=I420,width=64,height=48,framerate=30/1"

GST_START_TEST (test_kept_by_videoconvert)
{
  GstElementFactory *f = gst_element_factory_find ("videoconvert");

  fail_unless (f != NULL, "videoconvert (gst-plugins-base) is not installed");
  gst_object_unref (f);
  check_kept_by ("videoconvert", RGB_64x48, I420_64x48, 64 * 48 * 3);
}

GST_END_TEST;

/* Other transforms that change the pixels; skipped when their plugin is not installed. */
GST_START_TEST (test_kept_by_other_video_transforms)
{
  static const struct
  {
    const gchar *factory, *launchline, *out_caps;
  } cases[] = {
    {"videoscale", "videoscale",
        "video/x-raw,format=I420,width=32,height=24,framerate=30/1"},
    /* (not method=: videoflip applies it after the first buffer and passes that through) */
    {"videoflip", "videoflip video-direction=horiz", I420_64x48},
    {"videocrop", "videocrop top=8 left=8",
        "video/x-raw,format=I420,width=56,height=40,framerate=30/1"},
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstElementFactory *f = gst_element_factory_find (cases[i].factory);

    if (!f) {
      GST_WARNING ("%s not installed, not checked", cases[i].factory);
      continue;
    }
    gst_object_unref (f);
    check_kept_by (cases[i].launchline, I420_64x48, cases[i].out_caps,
        64 * 48 * 3 / 2);
  }
}

GST_END_TEST;

/* GstVidclsActionMeta: every field read back; a copy of the buffer carries an independent deep
 * copy; videoconvert (a new output buffer) keeps it next to the classification. */
static void
check_action (const GstVidclsActionMeta * m, GstVidclsActionPhase phase)
{
  fail_unless (m != NULL);
  fail_unless_equals_int (m->phase, phase);
  fail_unless_equals_string (m->action.stream_id, STREAM_ID);
  fail_unless_equals_int64 (m->action.object_id, -1);
  fail_unless_equals_uint64 (m->action.id, 3);
  fail_unless_equals_string (m->action.label, "slide_left");
  fail_unless_equals_int (m->action.class_id, 0);
  fail_unless_equals_uint64 (m->action.start, CLIP_START);
  fail_unless_equals_uint64 (m->action.end, phase == GST_VIDCLS_ACTION_PHASE_END ?
      CLIP_END : GST_CLOCK_TIME_NONE);
  fail_unless_equals_float (m->action.peak_score, 0.9f);
  fail_unless_equals_float (m->action.mean_score, 0.75f);
  fail_unless_equals_int (m->action.n_clips, 4);
  fail_unless_equals_string (m->action.model, "vivit-tiny");
}

static GstVidclsActionMeta *
add_action (GstBuffer * buf, GstVidclsActionPhase phase)
{
  gchar *label = g_strdup ("slide_left");       /* copied: freed before it is read back */
  GstVidclsAction a = { (gchar *) STREAM_ID, -1, 3, label, 0, CLIP_START,
    phase == GST_VIDCLS_ACTION_PHASE_END ? CLIP_END : GST_CLOCK_TIME_NONE, 0.9f, 0.75f, 4,
    (gchar *) "vivit-tiny"
  };
  GstVidclsActionMeta *m = gst_buffer_add_vidcls_action_meta (buf, phase, &a);

  g_free (label);
  return m;
}

GST_START_TEST (test_action_meta)
{
  GstBuffer *buf = gst_buffer_new (), *copy;
  GstVidclsAction nulls = { NULL, -1, 0, NULL, -1, 0, GST_CLOCK_TIME_NONE, 0, 0, 0, NULL };
  GstVidclsActionMeta *m;
  GstHarness *h;
  GstBuffer *in, *out;

  fail_unless (gst_meta_api_type_get_tags (GST_VIDCLS_ACTION_META_API_TYPE) == NULL);
  check_action (add_action (buf, GST_VIDCLS_ACTION_PHASE_END), GST_VIDCLS_ACTION_PHASE_END);
  copy = gst_buffer_copy (buf);
  m = gst_buffer_get_vidcls_action_meta (copy);
  fail_unless (m != gst_buffer_get_vidcls_action_meta (buf));
  fail_unless (m->action.label != gst_buffer_get_vidcls_action_meta (buf)->action.label);
  gst_buffer_unref (buf);
  check_action (m, GST_VIDCLS_ACTION_PHASE_END);
  gst_buffer_unref (copy);

  buf = gst_buffer_new ();
  m = gst_buffer_add_vidcls_action_meta (buf, GST_VIDCLS_ACTION_PHASE_START, &nulls);
  fail_unless_equals_string (m->action.stream_id, "");
  fail_unless_equals_string (m->action.label, "");
  fail_unless_equals_string (m->action.model, "");
  ASSERT_CRITICAL (gst_buffer_add_vidcls_action_meta (buf, GST_VIDCLS_ACTION_PHASE_START,
          NULL));
  ASSERT_CRITICAL (gst_buffer_add_vidcls_action_meta (buf, (GstVidclsActionPhase) 7,
          &nulls));
  gst_buffer_unref (buf);

  h = gst_harness_new_parse ("videoconvert");
  gst_harness_set_caps_str (h, RGB_64x48, I420_64x48);
  in = gst_harness_create_buffer (h, 64 * 48 * 3);
  add_three (in, 2);
  add_action (in, GST_VIDCLS_ACTION_PHASE_START);
  out = gst_harness_push_and_pull (h, gst_buffer_ref (in));
  fail_unless (out != NULL && out != in);
  check_three (gst_buffer_get_vidcls_classification_meta (out), 2);
  check_action (gst_buffer_get_vidcls_action_meta (out), GST_VIDCLS_ACTION_PHASE_START);
  gst_buffer_unref (in);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* The functions bindings use (GObject introspection cannot call the API type macros nor read a
 * counted array field): every meta of a buffer as a list, in order, and the array accessors. */
GST_START_TEST (test_lists_and_accessors)
{
  GstBuffer *buf = gst_buffer_new ();
  GstCaps *ref = gst_caps_new_empty_simple ("timestamp/x-test");
  GstVidclsClip clip = clip_of (4, 0, GST_SECOND, FALSE);
  GstVidclsClassificationMeta *first, *empty;
  GstVidclsActionMeta *start, *end;
  GList *list;
  const gchar *const *labels;
  const gfloat *scores;
  const gint *ids;
  guint n = 99, i;

  fail_unless (gst_buffer_get_vidcls_classification_meta (buf) == NULL);
  fail_unless (gst_buffer_get_vidcls_classification_metas (buf) == NULL);
  fail_unless (gst_buffer_get_vidcls_action_meta (buf) == NULL);
  fail_unless (gst_buffer_get_vidcls_action_metas (buf) == NULL);

  first = add_three (buf, 3);
  start = add_action (buf, GST_VIDCLS_ACTION_PHASE_START);
  gst_buffer_add_reference_timestamp_meta (buf, ref, GST_SECOND, GST_CLOCK_TIME_NONE);
  empty = gst_buffer_add_vidcls_classification_meta (buf, &clip, "m", 0, NULL, NULL, NULL);
  end = add_action (buf, GST_VIDCLS_ACTION_PHASE_END);

  fail_unless (gst_buffer_get_vidcls_classification_meta (buf) == first);
  fail_unless (gst_buffer_get_vidcls_action_meta (buf) == start);
  list = gst_buffer_get_vidcls_classification_metas (buf);
  fail_unless_equals_int (g_list_length (list), 2);
  fail_unless (list->data == first && list->next->data == empty);
  g_list_free (list);           /* transfer container: the metas stay on the buffer */
  list = gst_buffer_get_vidcls_action_metas (buf);
  fail_unless_equals_int (g_list_length (list), 2);
  fail_unless (list->data == start && list->next->data == end);
  g_list_free (list);
  check_action (start, GST_VIDCLS_ACTION_PHASE_START);
  check_action (end, GST_VIDCLS_ACTION_PHASE_END);

  labels = gst_vidcls_classification_meta_get_labels (first);
  scores = gst_vidcls_classification_meta_get_scores (first, &n);
  fail_unless_equals_int (n, 3);
  ids = gst_vidcls_classification_meta_get_class_ids (first, &n);
  fail_unless_equals_int (n, 3);
  for (i = 0; i < 3; i++) {
    fail_unless_equals_string (labels[i], kLabels[i]);
    fail_unless_equals_float (scores[i], kScores[i]);
    fail_unless_equals_int (ids[i], kClassIds[i]);
  }
  fail_unless (labels[3] == NULL);
  /* n is optional */
  fail_unless (gst_vidcls_classification_meta_get_scores (first, NULL) == first->scores);

  /* no results: an empty strv, no arrays, counts of 0 */
  labels = gst_vidcls_classification_meta_get_labels (empty);
  fail_unless (labels != NULL && labels[0] == NULL);
  n = 99;
  fail_unless (gst_vidcls_classification_meta_get_scores (empty, &n) == NULL);
  fail_unless_equals_int (n, 0);
  n = 99;
  fail_unless (gst_vidcls_classification_meta_get_class_ids (empty, &n) == NULL);
  fail_unless_equals_int (n, 0);

  n = 99;
  ASSERT_CRITICAL (gst_vidcls_classification_meta_get_scores (NULL, &n));
  fail_unless_equals_int (n, 0);
  ASSERT_CRITICAL (gst_buffer_get_vidcls_classification_metas (NULL));
  ASSERT_CRITICAL (gst_buffer_get_vidcls_action_meta (NULL));

  gst_caps_unref (ref);
  gst_buffer_unref (buf);
}

GST_END_TEST;

static Suite *
vidclsmeta_suite (void)
{
  Suite *s = suite_create ("vidclsmeta");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_api_registered_once_without_tags);
  tcase_add_test (tc, test_add_and_read_back);
  tcase_add_test (tc, test_partial_and_unknown_end);
  tcase_add_test (tc, test_copy_is_deep_and_independent);
  tcase_add_test (tc, test_two_metas_iterate_filtered);
  tcase_add_test (tc, test_no_results_is_valid);
  tcase_add_test (tc, test_null_class_ids_store_minus_one);
  tcase_add_test (tc, test_bad_arguments_are_refused);
  tcase_add_test (tc, test_kept_by_videoconvert);
  tcase_add_test (tc, test_kept_by_other_video_transforms);
  tcase_add_test (tc, test_action_meta);
  tcase_add_test (tc, test_lists_and_accessors);
  return s;
}

GST_CHECK_MAIN (vidclsmeta);
