/**
 * SECTION:element-vidclsaction
 * @title: vidclsaction
 * @see_also: vividinfer, resnetvitinfer, vidclsclipper
 *
 * Turns the clip results of an inference element into actions: a label held over a span of the
 * stream, with a start and an end. The video passes through untouched (any caps: it can sit
 * after an encoder too, the result metas survive one).
 *
 * It reads every #GstVidclsClassificationMeta on the buffers and every "vidcls-classification"
 * custom downstream event (the results no buffer carries, forwarded unchanged), and follows the
 * clips of each stream-id and object-id apart, in the order of their clip records: the record's
 * start and end, never the buffer's timestamp, say when a clip was, so synchronous and
 * asynchronous inference give the same actions. A label missing from a clip's results (outside
 * the inference element's top-k, or under its threshold) counts as a score of 0 there: raise
 * top-k on the inference element to follow more labels.
 *
 * Smoothing decides whether, the raw clip scores decide where. A label's scores are smoothed
 * over the last window clips (smoothing=moving-average: their mean; exponential: an exponential
 * average with alpha = 2 / (window + 1)). An action starts when the smoothed score reaches
 * on-threshold and ends when it falls below off-threshold (hysteresis: between the two, nothing
 * changes; on-threshold = off-threshold switches it off). Because smoothing lags, the start is
 * placed by walking back over the clips whose raw score is at least off-threshold: it lies
 * halfway between the middle of the first clip of that run and the middle of the clip before it
 * (the first clip's start when it is the stream's first). The end likewise lies halfway between
 * the middle of the last clip whose raw score was at least off-threshold and the middle of the
 * clip after it. Boundaries so land within a clip hop of where the motion changed; set
 * clip-stride on vidclsclipper to a few sampled frames for finer ones.
 *
 * An action is announced only once it has lasted min-duration (up to the middle of its last clip
 * at or above off-threshold): a shorter one posts neither a start nor an end, and every action
 * reported lasts at least min-duration. Open actions end at end of stream (reason "eos"), on a
 * flush (reason "flush"), when the next clip of their stream and object starts more than max-gap
 * after the last one ended or before it started (reason "gap"; the smoothing restarts), and when
 * for max-gap of running time only other streams or objects had clips (reason "stream-change"
 * for another stream-id, as after a concat, or "gap" for another object of the stream). Those
 * ends lie at the end of the last clip (or halfway past the last clip at or above off-threshold
 * when the score was already falling). Streams seen through one element (a funnel) keep their
 * actions apart; a GAP event alone decides nothing, the next clip's time does.
 *
 * Each start and end is posted as an element message, "vidcls-action-start" or
 * "vidcls-action-end", with the fields named as in "vidcls-classification" where they mean the
 * same: stream-id, object-id, action-id (the same in a start and its end), label, class-id,
 * start (PTS, ns), start-running-time, peak-score and mean-score (of the label's raw scores over
 * the action's clips so far), clips, model, and in ends end (PTS, ns), end-running-time and
 * reason (score, eos, flush, gap, stream-change). The same action goes downstream as a
 * #GstVidclsActionMeta on the buffer that carried the deciding classification, or, where no
 * buffer follows (end of stream, flush, a result that came as an event), as a serialized custom
 * downstream event with the message's structure, before EOS and after FLUSH_STOP.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 -m filesrc location=video.avi ! decodebin ! videoconvert ! \
 *     vidclsclipper clip-stride=2 ! vividinfer model=m.safetensors top-k=8 ! \
 *     vidclsaction min-duration=1000000000 ! fakesink
 * ]| Print the actions of a file that last at least a second.
 * |[
 * gst-launch-1.0 -m v4l2src ! videoconvert ! vidclsclipper ! vividinfer model=m.safetensors ! \
 *     vidclsaction actions=wave,clap window=5 smoothing=exponential ! autovideosink
 * ]| Follow two actions of a camera, smoothed exponentially over about five clips.
 */
#include "gstvidclsaction.h"

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "gstvidclsactiontracker.h"
#include "gstvidclsevents.h"
#include "gstvidclsproperties.h"

GST_DEBUG_CATEGORY_STATIC (gst_vidcls_action_debug);
#define GST_CAT_DEFAULT gst_vidcls_action_debug

#define DEFAULT_ON_THRESHOLD 0.6
#define DEFAULT_OFF_THRESHOLD 0.4
#define DEFAULT_WINDOW 3
#define DEFAULT_SMOOTHING GST_VIDCLS_ACTION_SMOOTHING_MOVING_AVERAGE
#define DEFAULT_MIN_DURATION 0
#define DEFAULT_MAX_GAP GST_SECOND
#define DEFAULT_ACTIONS NULL
#define DEFAULT_SILENT TRUE

#define MAX_WINDOW 1000
/* A stream's segment is kept while its actions may still need running times; a concat of many
 * files would otherwise grow the map without end. */
#define MAX_SEGMENTS 64

enum
{
  PROP_0,
  PROP_ON_THRESHOLD,
  PROP_OFF_THRESHOLD,
  PROP_WINDOW,
  PROP_SMOOTHING,
  PROP_MIN_DURATION,
  PROP_MAX_GAP,
  PROP_ACTIONS,
  PROP_SILENT,
  PROP_ACTIONS_STARTED,
  PROP_ACTIONS_ENDED,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

using vidcls::gst::ActionEvent;
using vidcls::gst::ActionSettings;
using vidcls::gst::ActionTracker;
using vidcls::gst::ClipResult;
using vidcls::gst::EndReason;

struct GstVidclsActionDetectorPrivate {
  std::mutex lock;              /* guards settings, actions_text and silent */
  ActionSettings settings;
  std::string actions_text;
  gboolean silent = DEFAULT_SILENT;

  std::atomic<guint64> started{0};
  std::atomic<guint64> ended{0};

  /* The streaming thread's (transform_ip, sink_event), and start()/stop()'s while it is idle. */
  ActionTracker tracker;
  std::string stream_id;                        /* of the last stream-start */
  std::map<std::string, GstSegment> segments;   /* the last segment of each stream */
  bool warned_untimed = false;
  bool warned_thresholds = false;
};

struct _GstVidclsActionDetector
{
  GstBaseTransform parent;
  GstVidclsActionDetectorPrivate *priv;
};

#define gst_vidcls_action_detector_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstVidclsActionDetector, gst_vidcls_action_detector,
    GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_vidcls_action_debug, "vidclsaction", 0,
        "vidcls action events"));
GST_ELEMENT_REGISTER_DEFINE (vidclsaction, "vidclsaction", GST_RANK_NONE,
    GST_TYPE_VIDCLS_ACTION_DETECTOR);

GType
gst_vidcls_action_smoothing_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_ACTION_SMOOTHING_MOVING_AVERAGE, "Mean of the last window clips",
        "moving-average"},
    {GST_VIDCLS_ACTION_SMOOTHING_EXPONENTIAL,
        "Exponential average, alpha = 2 / (window + 1)", "exponential"},
    {0, nullptr, nullptr},
  };
  return vidcls::gst::enum_type_once (&type, "GstVidclsActionSmoothing", values);
}

static void gst_vidcls_action_detector_constructed (GObject * object);
static void gst_vidcls_action_detector_finalize (GObject * object);
static void gst_vidcls_action_detector_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_vidcls_action_detector_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static gboolean gst_vidcls_action_detector_start (GstBaseTransform * trans);
static gboolean gst_vidcls_action_detector_stop (GstBaseTransform * trans);
static gboolean gst_vidcls_action_detector_sink_event (GstBaseTransform * trans,
    GstEvent * event);
static GstFlowReturn gst_vidcls_action_detector_transform_ip (GstBaseTransform * trans,
    GstBuffer * buf);
static gboolean gst_vidcls_action_detector_filter_meta (GstBaseTransform * trans,
    GstQuery * query, GType api, const GstStructure * params);

static void
install_properties (GObjectClass * gobject_class)
{
  const auto rw = static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_PLAYING);

  properties[PROP_ON_THRESHOLD] = g_param_spec_double ("on-threshold", "On threshold",
      "An action starts when its label's smoothed score reaches this (0..1); must be >= "
      "off-threshold", 0.0, 1.0, DEFAULT_ON_THRESHOLD, rw);
  properties[PROP_OFF_THRESHOLD] = g_param_spec_double ("off-threshold", "Off threshold",
      "An action ends when its label's smoothed score falls below this (0..1); must be <= "
      "on-threshold (equal: no hysteresis). Also the raw score that places starts and ends",
      0.0, 1.0, DEFAULT_OFF_THRESHOLD, rw);
  properties[PROP_WINDOW] = g_param_spec_uint ("window", "Window",
      "Clips the scores are smoothed over (moving-average: the last N clips; exponential: "
      "alpha = 2 / (N + 1)); 1 = raw scores", 1, MAX_WINDOW, DEFAULT_WINDOW, rw);
  properties[PROP_SMOOTHING] = g_param_spec_enum ("smoothing", "Smoothing",
      "How a label's clip scores are smoothed before the thresholds",
      GST_TYPE_VIDCLS_ACTION_SMOOTHING, DEFAULT_SMOOTHING, rw);
  properties[PROP_MIN_DURATION] = g_param_spec_uint64 ("min-duration", "Minimum duration",
      "Shortest action reported, in nanoseconds: a shorter one posts neither start nor end; "
      "a start is posted once the action has lasted this long. 0 = every action",
      0, G_MAXUINT64, DEFAULT_MIN_DURATION, rw);
  properties[PROP_MAX_GAP] = g_param_spec_uint64 ("max-gap", "Maximum gap",
      "Open actions end (reason gap) when the next clip starts more than this many "
      "nanoseconds after the last one ended, or when another stream or object had clips for "
      "this long; 0 = gaps end nothing", 0, G_MAXUINT64, DEFAULT_MAX_GAP, rw);
  properties[PROP_ACTIONS] = g_param_spec_string ("actions", "Actions",
      "Comma-separated labels that count as actions (empty: every label). A label never seen "
      "in any result is warned about at end of stream", DEFAULT_ACTIONS, rw);
  properties[PROP_SILENT] = vidcls::gst::silent_param_spec ("counters "
      "(notify::actions-started, ...)");
  properties[PROP_ACTIONS_STARTED] = vidcls::gst::counter_param_spec ("actions-started",
      "Actions started", "Action starts posted since the element started");
  properties[PROP_ACTIONS_ENDED] = vidcls::gst::counter_param_spec ("actions-ended",
      "Actions ended", "Action ends posted since the element started");
  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);
}

static void
gst_vidcls_action_detector_class_init (GstVidclsActionDetectorClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->constructed = gst_vidcls_action_detector_constructed;
  gobject_class->finalize = gst_vidcls_action_detector_finalize;
  gobject_class->set_property = gst_vidcls_action_detector_set_property;
  gobject_class->get_property = gst_vidcls_action_detector_get_property;
  install_properties (gobject_class);

  gst_element_class_set_static_metadata (element_class, "Video action events",
      "Filter/Analyzer/Video", "Turns clip classifications into action start and end events "
      "(smoothing, hysteresis, minimum duration), passing the stream through untouched",
      "vidcls developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_vidcls_action_detector_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_vidcls_action_detector_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_vidcls_action_detector_sink_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_vidcls_action_detector_transform_ip);
  trans_class->filter_meta = GST_DEBUG_FUNCPTR (gst_vidcls_action_detector_filter_meta);
  /* The content is never touched, but action metas are attached: staying out of passthrough
   * makes the base class hand transform_ip a writable buffer (a shallow copy sharing the
   * memory when the input is not writable). */
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;

}

static void
gst_vidcls_action_detector_init (GstVidclsActionDetector * self)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  self->priv = new GstVidclsActionDetectorPrivate ();
  gst_base_transform_set_in_place (trans, TRUE);
  gst_base_transform_set_passthrough (trans, FALSE);
}

/* GStreamer names an unnamed element after its type: "vidclsactiondetectorN" would be the
 * source of every message. Named after the element instead; a name given at creation stays. */
static void
gst_vidcls_action_detector_constructed (GObject * object)
{
  G_OBJECT_CLASS (parent_class)->constructed (object);
  gchar *name = gst_object_get_name (GST_OBJECT (object));
  if (name != nullptr && g_str_has_prefix (name, "vidclsactiondetector")) {
    static std::atomic<guint> unnamed{0};
    gchar *ours = g_strdup_printf ("vidclsaction%u", unnamed++);
    gst_object_set_name (GST_OBJECT (object), ours);
    g_free (ours);
  }
  g_free (name);
}

static void
gst_vidcls_action_detector_finalize (GObject * object)
{
  GstVidclsActionDetector *self = GST_VIDCLS_ACTION_DETECTOR (object);
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_vidcls_action_detector_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstVidclsActionDetectorPrivate *priv = GST_VIDCLS_ACTION_DETECTOR (object)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);
  ActionSettings & s = priv->settings;
  switch (prop_id) {
    case PROP_ON_THRESHOLD:
      s.on_threshold = g_value_get_double (value);
      break;
    case PROP_OFF_THRESHOLD:
      s.off_threshold = g_value_get_double (value);
      break;
    case PROP_WINDOW:
      s.window = g_value_get_uint (value);
      break;
    case PROP_SMOOTHING:
      s.smoothing = g_value_get_enum (value) == GST_VIDCLS_ACTION_SMOOTHING_EXPONENTIAL ?
          vidcls::gst::Smoothing::kExponential : vidcls::gst::Smoothing::kMovingAverage;
      break;
    case PROP_MIN_DURATION:
      s.min_duration = g_value_get_uint64 (value);
      break;
    case PROP_MAX_GAP:
      s.max_gap = g_value_get_uint64 (value);
      break;
    case PROP_ACTIONS:{
      const gchar *text = g_value_get_string (value);
      priv->actions_text = text != nullptr ? text : "";
      s.actions = vidcls::gst::parse_action_list (text);
      break;
    }
    case PROP_SILENT:
      priv->silent = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_vidcls_action_detector_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstVidclsActionDetectorPrivate *priv = GST_VIDCLS_ACTION_DETECTOR (object)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);
  const ActionSettings & s = priv->settings;
  switch (prop_id) {
    case PROP_ON_THRESHOLD:
      g_value_set_double (value, s.on_threshold);
      break;
    case PROP_OFF_THRESHOLD:
      g_value_set_double (value, s.off_threshold);
      break;
    case PROP_WINDOW:
      g_value_set_uint (value, s.window);
      break;
    case PROP_SMOOTHING:
      g_value_set_enum (value, s.smoothing == vidcls::gst::Smoothing::kExponential ?
          GST_VIDCLS_ACTION_SMOOTHING_EXPONENTIAL : GST_VIDCLS_ACTION_SMOOTHING_MOVING_AVERAGE);
      break;
    case PROP_MIN_DURATION:
      g_value_set_uint64 (value, s.min_duration);
      break;
    case PROP_MAX_GAP:
      g_value_set_uint64 (value, s.max_gap);
      break;
    case PROP_ACTIONS:
      g_value_set_string (value, priv->actions_text.empty () ? nullptr :
          priv->actions_text.c_str ());
      break;
    case PROP_SILENT:
      g_value_set_boolean (value, priv->silent);
      break;
    case PROP_ACTIONS_STARTED:
      g_value_set_uint64 (value, priv->started);
      break;
    case PROP_ACTIONS_ENDED:
      g_value_set_uint64 (value, priv->ended);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

/* ------------------------------------------------------------------ settings */

/* The settings for the next decision. off-threshold above on-threshold is refused at start; set
 * so while playing, it is warned about once and taken as on-threshold, so the stream goes on. */
static ActionSettings
current_settings (GstVidclsActionDetector * self)
{
  GstVidclsActionDetectorPrivate *priv = self->priv;
  ActionSettings s;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    s = priv->settings;
  }
  if (s.off_threshold <= s.on_threshold) {
    priv->warned_thresholds = false;
    return s;
  }
  if (!priv->warned_thresholds) {
    GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS,
        ("off-threshold (%.3f) is above on-threshold (%.3f): using %.3f for both (no "
            "hysteresis) until off-threshold is set at or below on-threshold.",
            s.off_threshold, s.on_threshold, s.on_threshold), (nullptr));
    priv->warned_thresholds = true;
  }
  s.off_threshold = s.on_threshold;
  return s;
}

static bool
check_settings (GstVidclsActionDetector * self)
{
  GstVidclsActionDetectorPrivate *priv = self->priv;
  double on, off;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    on = priv->settings.on_threshold;
    off = priv->settings.off_threshold;
  }
  if (off <= on)
    return true;
  GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS,
      ("off-threshold (%.3f) is above on-threshold (%.3f): an action would end as soon as it "
          "started.", off, on),
      ("Set off-threshold at or below on-threshold (equal values switch hysteresis off)."));
  return false;
}

/* ------------------------------------------------------------------ lifecycle */

static GstClockTime
running_time_of (GstVidclsActionDetector * self, const std::string & stream_id,
    GstClockTime pts)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  const GstSegment *segment = &trans->segment;
  auto it = self->priv->segments.find (stream_id);
  if (it != self->priv->segments.end ())
    segment = &it->second;
  if (segment->format != GST_FORMAT_TIME)
    return GST_CLOCK_TIME_NONE;
  return gst_segment_to_running_time (segment, GST_FORMAT_TIME, pts);
}

static void
reset_state (GstVidclsActionDetector * self)
{
  GstVidclsActionDetectorPrivate *priv = self->priv;
  priv->tracker = ActionTracker ([self](const std::string & stream_id, GstClockTime pts) {
        return running_time_of (self, stream_id, pts);
      });
  priv->stream_id.clear ();
  priv->segments.clear ();
  priv->warned_untimed = false;
  priv->warned_thresholds = false;
}

static gboolean
gst_vidcls_action_detector_start (GstBaseTransform * trans)
{
  GstVidclsActionDetector *self = GST_VIDCLS_ACTION_DETECTOR (trans);
  if (!check_settings (self))
    return FALSE;
  reset_state (self);
  self->priv->started = 0;
  self->priv->ended = 0;
  return TRUE;
}

static gboolean
gst_vidcls_action_detector_stop (GstBaseTransform * trans)
{
  reset_state (GST_VIDCLS_ACTION_DETECTOR (trans));
  return TRUE;
}

/* ------------------------------------------------------------------ streaming */

static void
log_action (GstVidclsActionDetector * self, const ActionEvent & e)
{
  if (e.phase == GST_VIDCLS_ACTION_PHASE_START)
    GST_INFO_OBJECT (self, "action %" G_GUINT64_FORMAT " '%s' (stream '%s', object %"
        G_GINT64_FORMAT ") started at %" GST_TIME_FORMAT, e.id, e.label.c_str (),
        e.stream_id.c_str (), e.object_id, GST_TIME_ARGS (e.start));
  else
    GST_INFO_OBJECT (self, "action %" G_GUINT64_FORMAT " '%s' ended at %" GST_TIME_FORMAT
        " (%s; %u clips, peak %.3f, mean %.3f)", e.id, e.label.c_str (),
        GST_TIME_ARGS (e.end), vidcls::gst::end_reason_name (e.reason), e.n_clips,
        e.peak_score, e.mean_score);
}

/* Posts each decision on the bus and sends it downstream: as a meta on `buf`, or as a custom
 * event when no buffer carries it. */
static void
emit (GstVidclsActionDetector * self, const std::vector<ActionEvent> & events, GstBuffer * buf)
{
  GstVidclsActionDetectorPrivate *priv = self->priv;
  guint64 started = 0, ended = 0;
  for (const auto &e : events) {
    log_action (self, e);
    gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self),
            vidcls::gst::action_structure (e)));
    if (buf != nullptr)
      vidcls::gst::attach_action (buf, e);
    else
      gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (self),
          vidcls::gst::result_event_new (vidcls::gst::action_structure (e)));
    (e.phase == GST_VIDCLS_ACTION_PHASE_START ? started : ended)++;
  }
  priv->started += started;
  priv->ended += ended;
  gboolean silent;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    silent = priv->silent;
  }
  vidcls::gst::notify_counters (G_OBJECT (self), silent, {
        started > 0 ? properties[PROP_ACTIONS_STARTED] : nullptr,
        ended > 0 ? properties[PROP_ACTIONS_ENDED] : nullptr});
}

/* The decisions `results` lead to, in clip order. */
static std::vector<ActionEvent>
decide (GstVidclsActionDetector * self, const std::vector<ClipResult> & results)
{
  GstVidclsActionDetectorPrivate *priv = self->priv;
  const ActionSettings s = current_settings (self);
  std::vector<ActionEvent> out;
  for (const auto &r : results) {
    GST_LOG_OBJECT (self, "clip %" G_GUINT64_FORMAT " of '%s' %" GST_TIME_FORMAT " - %"
        GST_TIME_FORMAT ": %zu results", r.clip_index, r.stream_id.c_str (),
        GST_TIME_ARGS (r.start), GST_TIME_ARGS (r.end), r.labels.size ());
    const guint64 reversed = priv->tracker.reversed_clips ();
    auto events = priv->tracker.push (r, s);
    if (priv->tracker.reversed_clips () > reversed)
      GST_INFO_OBJECT (self, "clip %" G_GUINT64_FORMAT " ends before it starts (cut across a "
          "stream change): ignored", r.clip_index);
    out.insert (out.end (), events.begin (), events.end ());
  }
  if (priv->tracker.untimed_clips () > 0 && !priv->warned_untimed) {
    GST_ELEMENT_WARNING (self, STREAM, FAILED,
        ("Clip results without timestamps: actions cannot be placed in time, those clips are "
            "ignored."),
        ("The video reaching vidclsclipper has no PTS; timestamp it (e.g. a parser, or "
            "do-timestamp=true on a live source)."));
    priv->warned_untimed = true;
  }
  return out;
}

/* Listed actions no result named: a misspelt label, or one outside the results' top-k. */
static void
warn_unseen_actions (GstVidclsActionDetector * self)
{
  GstVidclsActionDetectorPrivate *priv = self->priv;
  std::vector<std::string> wanted;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    wanted = priv->settings.actions;
  }
  const auto &seen = priv->tracker.labels_seen ();
  if (seen.empty ())
    return;
  std::string unseen, known;
  for (const auto &label : wanted) {
    if (seen.count (label) == 0)
      unseen += (unseen.empty () ? "'" : ", '") + label + "'";
  }
  if (unseen.empty ())
    return;
  for (const auto &label : seen)
    known += (known.empty () ? "" : ", ") + label;
  GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS,
      ("actions= lists %s, which no classification named; the results named: %s.",
          unseen.c_str (), known.c_str ()),
      ("Check the spelling against the model's labels (vidcls-info MODEL), or raise top-k on "
          "the inference element if the label is the model's but never in the top-k."));
}

static GstFlowReturn
gst_vidcls_action_detector_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstVidclsActionDetector *self = GST_VIDCLS_ACTION_DETECTOR (trans);
  const std::vector<ClipResult> results = vidcls::gst::clip_results_of (buf);
  if (results.empty ())
    return GST_FLOW_OK;
  emit (self, decide (self, results), buf);
  return GST_FLOW_OK;
}

/* A result no buffer carried: forwarded unchanged, then the decisions it led to. */
static gboolean
handle_result_event (GstVidclsActionDetector * self, GstEvent * event)
{
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  ClipResult r;
  const GstStructure *s = vidcls::gst::result_event_structure (event);
  if (s == nullptr || !vidcls::gst::clip_result_from_structure (s, &r))
    return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
  const std::vector<ActionEvent> events = decide (self, {r});
  const gboolean ret = GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
  emit (self, events, nullptr);
  return ret;
}

static void
remember_segment (GstVidclsActionDetector * self, GstEvent * event)
{
  GstVidclsActionDetectorPrivate *priv = self->priv;
  const GstSegment *segment = nullptr;
  gst_event_parse_segment (event, &segment);
  if (priv->segments.size () >= MAX_SEGMENTS
      && priv->segments.find (priv->stream_id) == priv->segments.end ())
    priv->segments.clear ();
  priv->segments[priv->stream_id] = *segment;
}

static gboolean
gst_vidcls_action_detector_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVidclsActionDetector *self = GST_VIDCLS_ACTION_DETECTOR (trans);
  GstVidclsActionDetectorPrivate *priv = self->priv;
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:{
      const gchar *stream_id = nullptr;
      gst_event_parse_stream_start (event, &stream_id);
      priv->stream_id = stream_id != nullptr ? stream_id : "";
      break;
    }
    case GST_EVENT_SEGMENT:
      remember_segment (self, event);
      break;
    case GST_EVENT_CUSTOM_DOWNSTREAM:
      return handle_result_event (self, event);
    case GST_EVENT_EOS:
      emit (self, priv->tracker.finish (EndReason::kEos, current_settings (self)), nullptr);
      warn_unseen_actions (self);
      break;
    case GST_EVENT_FLUSH_STOP:{
      /* The ends go after FLUSH_STOP: while flushing nothing can be pushed. */
      const gboolean ret = GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
      emit (self, priv->tracker.finish (EndReason::kFlush, current_settings (self)), nullptr);
      return ret;
    }
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* The content is never read or changed: every meta upstream offers stays valid. */
static gboolean
gst_vidcls_action_detector_filter_meta (GstBaseTransform * trans, GstQuery * query,
    GType api, const GstStructure * params)
{
  (void) trans;
  (void) query;
  (void) api;
  (void) params;
  return TRUE;
}
