#include "gstvidclsevents.h"

#include <cstring>

namespace vidcls {
namespace gst {

namespace {

const char *const kClassification = "vidcls-classification";
const char *const kActionStart = "vidcls-action-start";
const char *const kActionEnd = "vidcls-action-end";

std::string
string_field (const GstStructure *s, const char *name)
{
  const gchar *v = gst_structure_get_string (s, name);
  return v != nullptr ? v : "";
}

guint64
time_field (const GstStructure *s, const char *name)
{
  guint64 v = GST_CLOCK_TIME_NONE;
  if (!gst_structure_get_uint64 (s, name, &v))
    return GST_CLOCK_TIME_NONE;
  return v;
}

/* The i-th entry of a GST_TYPE_ARRAY (or GST_TYPE_LIST) field, or nullptr. */
const GValue *
array_entry (const GstStructure *s, const char *name, guint i)
{
  const GValue *v = gst_structure_get_value (s, name);
  if (v == nullptr)
    return nullptr;
  if (GST_VALUE_HOLDS_ARRAY (v))
    return i < gst_value_array_get_size (v) ? gst_value_array_get_value (v, i) : nullptr;
  if (GST_VALUE_HOLDS_LIST (v))
    return i < gst_value_list_get_size (v) ? gst_value_list_get_value (v, i) : nullptr;
  return nullptr;
}

/* Every meta of `api` on `buf`, in the order they were attached, as values. */
template <typename Meta, typename Value>
std::vector<Value>
values_of (GstBuffer *buf, GType api, Value (*convert) (const Meta *))
{
  std::vector<Value> out;
  gpointer state = nullptr;
  while (GstMeta *m = gst_buffer_iterate_meta_filtered (buf, &state, api))
    out.push_back (convert (reinterpret_cast<const Meta *> (m)));
  return out;
}

}  // namespace

const char *
end_reason_name (EndReason r)
{
  switch (r) {
    case EndReason::kScore: return "score";
    case EndReason::kEos: return "eos";
    case EndReason::kFlush: return "flush";
    case EndReason::kGap: return "gap";
    case EndReason::kStreamChange: return "stream-change";
    case EndReason::kNone: break;
  }
  return "";
}

EndReason
end_reason_from_name (const char *name)
{
  for (EndReason r : {EndReason::kScore, EndReason::kEos, EndReason::kFlush, EndReason::kGap,
           EndReason::kStreamChange}) {
    if (name != nullptr && std::strcmp (name, end_reason_name (r)) == 0)
      return r;
  }
  return EndReason::kNone;
}

ClipResult
clip_result_from_meta (const GstVidclsClassificationMeta *m)
{
  ClipResult r;
  r.stream_id = m->clip.stream_id != nullptr ? m->clip.stream_id : "";
  r.object_id = m->clip.object_id;
  r.clip_index = m->clip.index;
  r.start = m->clip.start;
  r.end = m->clip.end;
  r.partial = m->clip.partial;
  r.box_x = m->clip.box_x;
  r.box_y = m->clip.box_y;
  r.box_width = m->clip.box_width;
  r.box_height = m->clip.box_height;
  r.model = m->model != nullptr ? m->model : "";
  for (guint i = 0; i < m->n_results; ++i) {
    r.labels.emplace_back (m->labels[i]);
    r.scores.push_back (m->scores[i]);
    r.class_ids.push_back (m->class_ids[i]);
  }
  return r;
}

bool
clip_result_from_structure (const GstStructure *s, ClipResult *out)
{
  if (s == nullptr || !gst_structure_has_name (s, kClassification))
    return false;
  ClipResult r;
  gboolean partial = FALSE;
  if (!gst_structure_get_int64 (s, "object-id", &r.object_id)
      || !gst_structure_get_uint64 (s, "clip-index", &r.clip_index))
    return false;
  gst_structure_get_boolean (s, "partial", &partial);
  r.partial = partial;
  r.stream_id = string_field (s, "stream-id");
  r.start = time_field (s, "start");
  r.end = time_field (s, "end");
  r.model = string_field (s, "model");
  r.inference_time = time_field (s, "inference-time");
  if (!gst_structure_get (s, "box-x", G_TYPE_INT, &r.box_x, "box-y", G_TYPE_INT, &r.box_y,
          "box-width", G_TYPE_INT, &r.box_width, "box-height", G_TYPE_INT, &r.box_height,
          nullptr))
    r.box_x = r.box_y = r.box_width = r.box_height = 0;
  for (guint i = 0;; ++i) {
    const GValue *label = array_entry (s, "labels", i);
    const GValue *score = array_entry (s, "scores", i);
    if (label == nullptr || score == nullptr || !G_VALUE_HOLDS_STRING (label)
        || !G_VALUE_HOLDS_DOUBLE (score))
      break;
    const GValue *id = array_entry (s, "class-ids", i);
    r.labels.emplace_back (g_value_get_string (label));
    r.scores.push_back (static_cast<float> (g_value_get_double (score)));
    r.class_ids.push_back (id != nullptr && G_VALUE_HOLDS_INT (id) ? g_value_get_int (id) : -1);
  }
  *out = std::move (r);
  return true;
}

std::vector<ClipResult>
clip_results_of (GstBuffer *buf)
{
  return values_of (buf, GST_VIDCLS_CLASSIFICATION_META_API_TYPE, clip_result_from_meta);
}

GstStructure *
action_structure (const ActionEvent &a)
{
  const bool end = a.phase == GST_VIDCLS_ACTION_PHASE_END;
  GstStructure *s = gst_structure_new (end ? kActionEnd : kActionStart,
      "stream-id", G_TYPE_STRING, a.stream_id.c_str (),
      "object-id", G_TYPE_INT64, a.object_id,
      "action-id", G_TYPE_UINT64, a.id,
      "label", G_TYPE_STRING, a.label.c_str (),
      "class-id", G_TYPE_INT, a.class_id,
      "start", G_TYPE_UINT64, (guint64) a.start,
      "start-running-time", G_TYPE_UINT64, (guint64) a.start_running_time,
      "peak-score", G_TYPE_DOUBLE, (gdouble) a.peak_score,
      "mean-score", G_TYPE_DOUBLE, (gdouble) a.mean_score,
      "clips", G_TYPE_UINT, a.n_clips,
      "model", G_TYPE_STRING, a.model.c_str (), nullptr);
  if (end) {
    gst_structure_set (s,
        "end", G_TYPE_UINT64, (guint64) a.end,
        "end-running-time", G_TYPE_UINT64, (guint64) a.end_running_time,
        "reason", G_TYPE_STRING, end_reason_name (a.reason), nullptr);
  }
  return s;
}

bool
action_from_structure (const GstStructure *s, ActionEvent *out)
{
  if (s == nullptr)
    return false;
  ActionEvent a;
  if (gst_structure_has_name (s, kActionStart))
    a.phase = GST_VIDCLS_ACTION_PHASE_START;
  else if (gst_structure_has_name (s, kActionEnd))
    a.phase = GST_VIDCLS_ACTION_PHASE_END;
  else
    return false;
  gdouble peak = 0, mean = 0;
  if (!gst_structure_get_uint64 (s, "action-id", &a.id)
      || !gst_structure_get_int64 (s, "object-id", &a.object_id)
      || !gst_structure_get_double (s, "peak-score", &peak)
      || !gst_structure_get_double (s, "mean-score", &mean))
    return false;
  a.peak_score = static_cast<float> (peak);
  a.mean_score = static_cast<float> (mean);
  a.stream_id = string_field (s, "stream-id");
  a.label = string_field (s, "label");
  a.model = string_field (s, "model");
  gst_structure_get_int (s, "class-id", &a.class_id);
  gst_structure_get_uint (s, "clips", &a.n_clips);
  a.start = time_field (s, "start");
  a.start_running_time = time_field (s, "start-running-time");
  a.end = time_field (s, "end");
  a.end_running_time = time_field (s, "end-running-time");
  a.reason = end_reason_from_name (gst_structure_get_string (s, "reason"));
  *out = std::move (a);
  return true;
}

ActionEvent
action_from_meta (const GstVidclsActionMeta *m)
{
  ActionEvent a;
  a.phase = m->phase;
  a.stream_id = m->action.stream_id != nullptr ? m->action.stream_id : "";
  a.object_id = m->action.object_id;
  a.id = m->action.id;
  a.label = m->action.label != nullptr ? m->action.label : "";
  a.class_id = m->action.class_id;
  a.start = m->action.start;
  a.end = m->action.end;
  a.peak_score = m->action.peak_score;
  a.mean_score = m->action.mean_score;
  a.n_clips = m->action.n_clips;
  a.model = m->action.model != nullptr ? m->action.model : "";
  return a;
}

GstVidclsActionMeta *
attach_action (GstBuffer *buf, const ActionEvent &a)
{
  GstVidclsAction action;
  action.stream_id = const_cast<gchar *> (a.stream_id.c_str ());        /* copied by the meta */
  action.object_id = a.object_id;
  action.id = a.id;
  action.label = const_cast<gchar *> (a.label.c_str ());
  action.class_id = a.class_id;
  action.start = a.start;
  action.end = a.phase == GST_VIDCLS_ACTION_PHASE_END ? a.end : GST_CLOCK_TIME_NONE;
  action.peak_score = a.peak_score;
  action.mean_score = a.mean_score;
  action.n_clips = a.n_clips;
  action.model = const_cast<gchar *> (a.model.c_str ());
  return gst_buffer_add_vidcls_action_meta (buf, a.phase, &action);
}

std::vector<ActionEvent>
actions_of (GstBuffer *buf)
{
  return values_of (buf, GST_VIDCLS_ACTION_META_API_TYPE, action_from_meta);
}

GstEvent *
result_event_new (GstStructure *s)
{
  return gst_event_new_custom (GST_EVENT_CUSTOM_DOWNSTREAM, s);
}

const GstStructure *
result_event_structure (GstEvent *event)
{
  if (GST_EVENT_TYPE (event) != GST_EVENT_CUSTOM_DOWNSTREAM)
    return nullptr;
  const GstStructure *s = gst_event_get_structure (event);
  if (s == nullptr)
    return nullptr;
  if (gst_structure_has_name (s, kClassification) || gst_structure_has_name (s, kActionStart)
      || gst_structure_has_name (s, kActionEnd))
    return s;
  return nullptr;
}

}  // namespace gst
}  // namespace vidcls
