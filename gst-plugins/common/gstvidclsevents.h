/* What the elements after inference (vidclsaction, vidclspublish, vidclsoverlay) read and write:
 * classifications and action events as plain values, from and to their three carriers —
 * the meta on a buffer, the bus message's structure, and the serialized custom downstream event
 * that carries that structure where no buffer follows (end of stream, flush).
 *
 * The rule every vidcls element keeps: each result travels downstream in-band, as a meta on a
 * buffer or, when no buffer will carry it, as a GST_EVENT_CUSTOM_DOWNSTREAM whose structure is
 * the bus message's ("vidcls-classification", "vidcls-action-start", "vidcls-action-end").
 * Torch-free: the result elements live in a plugin of their own that does not load LibTorch.
 */
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

#include "gstvidclsmeta.h"

namespace vidcls {
namespace gst {

/* One classified clip, as vidclsclipper cut it and an inference element classified it. */
struct ClipResult
{
  std::string stream_id;
  gint64 object_id = -1;
  guint64 clip_index = 0;
  GstClockTime start = GST_CLOCK_TIME_NONE;     /* PTS of the clip's first frame */
  GstClockTime end = GST_CLOCK_TIME_NONE;       /* end of its last frame */
  bool partial = false;
  /* A tracked object's clip: its box on the clip's last frame, pixels of the frame; zero
   * (has_box () false) for whole frames. */
  gint box_x = 0, box_y = 0, box_width = 0, box_height = 0;
  std::string model;
  std::vector<std::string> labels;              /* best first, above the element's threshold */
  std::vector<float> scores;                    /* softmax probabilities, same order */
  std::vector<gint> class_ids;                  /* -1 when unknown */
  GstClockTime inference_time = GST_CLOCK_TIME_NONE;    /* ns; known from messages/events only */

  bool has_box () const { return box_width > 0 && box_height > 0; }
};

/* Why an action ended. */
enum class EndReason { kNone, kScore, kEos, kFlush, kGap, kStreamChange };
const char *end_reason_name (EndReason r);      /* "score", "eos", "flush", "gap", "stream-change" */
EndReason end_reason_from_name (const char *name);

/* An action that started or ended. */
struct ActionEvent
{
  GstVidclsActionPhase phase = GST_VIDCLS_ACTION_PHASE_START;
  std::string stream_id;
  gint64 object_id = -1;
  guint64 id = 0;
  std::string label;
  gint class_id = -1;
  GstClockTime start = GST_CLOCK_TIME_NONE;             /* PTS */
  GstClockTime end = GST_CLOCK_TIME_NONE;               /* PTS; NONE in a start */
  GstClockTime start_running_time = GST_CLOCK_TIME_NONE;
  GstClockTime end_running_time = GST_CLOCK_TIME_NONE;
  float peak_score = 0.f;
  float mean_score = 0.f;
  guint n_clips = 0;
  std::string model;
  EndReason reason = EndReason::kNone;                  /* ends only */
};

/* ------------------------------------------------------------------ classifications */

ClipResult clip_result_from_meta (const GstVidclsClassificationMeta *m);
/* False unless `s` is a "vidcls-classification" structure with its clip fields. */
bool clip_result_from_structure (const GstStructure *s, ClipResult *out);
/* Every classification meta of `buf`, in the order they were attached. */
std::vector<ClipResult> clip_results_of (GstBuffer *buf);

/* ------------------------------------------------------------------ actions */

/* "vidcls-action-start" / "vidcls-action-end": stream-id, object-id, action-id, label,
 * class-id, start (and end in ends; guint64 ns, PTS), start-running-time (and
 * end-running-time; guint64 ns, GST_CLOCK_TIME_NONE when unknown), peak-score, mean-score
 * (gdouble), clips (guint), model, and in ends reason (string). */
GstStructure *action_structure (const ActionEvent &a);
bool action_from_structure (const GstStructure *s, ActionEvent *out);
ActionEvent action_from_meta (const GstVidclsActionMeta *m);
GstVidclsActionMeta *attach_action (GstBuffer *buf, const ActionEvent &a);
/* Every action meta of `buf`, in the order they were attached. */
std::vector<ActionEvent> actions_of (GstBuffer *buf);

/* ------------------------------------------------------------------ events */

/* `s` in a serialized custom downstream event (takes it). */
GstEvent *result_event_new (GstStructure *s);
/* The structure of a vidcls result event (classification or action), or nullptr. */
const GstStructure *result_event_structure (GstEvent *event);

}  // namespace gst
}  // namespace vidcls
