/**
 * SECTION:element-vidclsroireplay
 * @title: vidclsroireplay
 * @see_also: vidclsclipper
 *
 * Replays the object tracks of an annotation file onto a stream: every frame gets one
 * #GstVideoRegionOfInterestMeta per object the file has a box for at that frame's time, with the
 * track id as the meta's id and in an "object_id" parameter (id, as DL Streamer's gvatrack writes
 * it), so that per-object clips can be cut and results evaluated on an annotated data set, and
 * tests see the same boxes every run. The video passes through untouched.
 *
 * MOTChallenge files (gt.txt, det.txt) count frames from 1 in pixels: the frame of a buffer is
 * its PTS times the caps' frame rate. AVA files give seconds and boxes in fractions of the frame:
 * a buffer's time is its PTS plus time-offset. Between an object's keys its box follows the rule
 * of vidcls's tracks (the same one training uses): linear between keys at most max-gap apart,
 * the last box held for max-gap after it, none before the first key or later. Boxes are cut to
 * the frame; a box with nothing inside it is not put on the frame.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=MOT17-02/img1.mp4 ! decodebin ! videoconvert ! \
 *     vidclsroireplay location=MOT17-02/gt/gt.txt ! fakesink
 * ]|
 */
#include "gstvidclsroireplay.h"

#include <gst/video/video.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>

#include "gstvidclsproperties.h"
#include "vidcls/errors.h"
#include "vidcls/tracks.h"

GST_DEBUG_CATEGORY_STATIC (gst_vidcls_roi_replay_debug);
#define GST_CAT_DEFAULT gst_vidcls_roi_replay_debug

#define DEFAULT_LOCATION NULL
#define DEFAULT_FORMAT GST_VIDCLS_ROI_REPLAY_FORMAT_AUTO
#define DEFAULT_VIDEO_ID NULL
#define DEFAULT_TIME_OFFSET 0.0
#define DEFAULT_MAX_GAP GST_SECOND
#define DEFAULT_ROI_TYPE "person"

enum
{
  PROP_0,
  PROP_LOCATION,
  PROP_FORMAT,
  PROP_VIDEO_ID,
  PROP_TIME_OFFSET,
  PROP_MAX_GAP,
  PROP_ROI_TYPE,
  PROP_BOXES,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

struct Settings
{
  std::string location;
  GstVidclsRoiReplayFormat format = DEFAULT_FORMAT;
  std::string video_id;
  double time_offset = DEFAULT_TIME_OFFSET;
  guint64 max_gap = DEFAULT_MAX_GAP;
  std::string roi_type = DEFAULT_ROI_TYPE;
};

struct _GstVidclsRoiReplay
{
  GstBaseTransform parent;

  std::mutex *lock;            /* guards settings and boxes */
  Settings *settings;
  guint64 boxes;
  /* from start() to stop(): the tracks replayed, and what the caps say */
  vidcls::Tracks *tracks;
  GQuark roi_type;
  GstVideoInfo info;
};

G_DEFINE_TYPE (GstVidclsRoiReplay, gst_vidcls_roi_replay, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE (vidclsroireplay, "vidclsroireplay", GST_RANK_NONE,
    GST_TYPE_VIDCLS_ROI_REPLAY);

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK,
    GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw(ANY)"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC,
    GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw(ANY)"));

#define GST_TYPE_VIDCLS_ROI_REPLAY_FORMAT (gst_vidcls_roi_replay_format_get_type ())
static GType
gst_vidcls_roi_replay_format_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_ROI_REPLAY_FORMAT_AUTO, "By the file name: .csv is AVA, else MOTChallenge",
        "auto"},
    {GST_VIDCLS_ROI_REPLAY_FORMAT_MOT, "MOTChallenge: frames from 1, boxes in pixels", "mot"},
    {GST_VIDCLS_ROI_REPLAY_FORMAT_AVA, "AVA: seconds, boxes in fractions of the frame", "ava"},
    {0, nullptr, nullptr},
  };
  return vidcls::gst::enum_type_once (&type, "GstVidclsRoiReplayFormat", values);
}

/* ------------------------------------------------------------------ loading */

static bool
is_ava (const Settings & s)
{
  if (s.format != GST_VIDCLS_ROI_REPLAY_FORMAT_AUTO)
    return s.format == GST_VIDCLS_ROI_REPLAY_FORMAT_AVA;
  return g_str_has_suffix (s.location.c_str (), ".csv")
      || g_str_has_suffix (s.location.c_str (), ".CSV");
}

/* The tracks of the file (of `video-id` in an AVA file). Posts the error and returns false when
 * the file cannot be used. */
static bool
load_tracks (GstVidclsRoiReplay * self, const Settings & s)
{
  if (s.location.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No annotation file given"),
        ("set 'location' to a MOTChallenge gt.txt or an AVA CSV file"));
    return false;
  }
  try {
    if (!is_ava (s)) {
      *self->tracks = vidcls::read_mot (s.location);
      return true;
    }
    auto videos = vidcls::read_ava (s.location);
    std::string ids;
    for (const auto &kv : videos)
      ids += (ids.empty ()? "" : ", ") + kv.first;
    if (s.video_id.empty () && videos.size () == 1) {
      *self->tracks = std::move (videos.begin ()->second);
      return true;
    }
    auto it = videos.find (s.video_id);
    if (it == videos.end ()) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", (s.video_id.empty ()?
                  "'" + s.location + "' annotates several videos: set 'video-id' to one" :
                  "'" + s.location + "' has no video '" + s.video_id + "'").c_str ()),
          ("its videos: %s", ids.empty ()? "(none)" : ids.c_str ()));
      return false;
    }
    *self->tracks = std::move (it->second);
    return true;
  } catch (const vidcls::FormatError & e) {
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not read the annotations"), ("%s",
            e.what ()));
    return false;
  }
}

static gboolean
gst_vidcls_roi_replay_start (GstBaseTransform * trans)
{
  GstVidclsRoiReplay *self = GST_VIDCLS_ROI_REPLAY (trans);
  Settings s;
  {
    std::lock_guard<std::mutex> g (*self->lock);
    s = *self->settings;
    self->boxes = 0;
  }
  *self->tracks = vidcls::Tracks ();
  if (!load_tracks (self, s))
    return FALSE;
  self->roi_type = g_quark_from_string (s.roi_type.c_str ());
  GST_INFO_OBJECT (self, "%zu tracks from %s", self->tracks->by_id.size (),
      s.location.c_str ());
  return TRUE;
}

static gboolean
gst_vidcls_roi_replay_stop (GstBaseTransform * trans)
{
  GstVidclsRoiReplay *self = GST_VIDCLS_ROI_REPLAY (trans);
  *self->tracks = vidcls::Tracks ();
  return TRUE;
}

static gboolean
gst_vidcls_roi_replay_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstVidclsRoiReplay *self = GST_VIDCLS_ROI_REPLAY (trans);
  if (!gst_video_info_from_caps (&self->info, incaps)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Caps without a frame size"), ("%"
            GST_PTR_FORMAT, incaps));
    return FALSE;
  }
  if (!self->tracks->normalised && self->info.fps_n <= 0) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION,
        ("MOTChallenge annotations count frames, but the stream has no frame rate"),
        ("caps %" GST_PTR_FORMAT ": put a videorate with a fixed framerate before this element",
            incaps));
    return FALSE;
  }
  return TRUE;
}

/* ------------------------------------------------------------------ replaying */

/* Attaches the ROI meta of one box, cut to the frame; false when nothing of it is inside. */
static bool
attach_box (GstVidclsRoiReplay * self, GstBuffer * buf, const vidcls::Box & b, gint64 id)
{
  const auto whole = vidcls::box_on_frame (b, GST_VIDEO_INFO_WIDTH (&self->info),
      GST_VIDEO_INFO_HEIGHT (&self->info));
  if (!whole)
    return false;
  GstVideoRegionOfInterestMeta *m = gst_buffer_add_video_region_of_interest_meta_id (buf,
      self->roi_type, (guint) whole->x, (guint) whole->y, (guint) whole->w, (guint) whole->h);
  m->id = (gint) id;
  gst_video_region_of_interest_meta_add_param (m, gst_structure_new ("object_id", "id",
          G_TYPE_INT, (gint) id, nullptr));
  return true;
}

static GstFlowReturn
gst_vidcls_roi_replay_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstVidclsRoiReplay *self = GST_VIDCLS_ROI_REPLAY (trans);
  const GstClockTime pts = GST_BUFFER_PTS (buf);
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return GST_FLOW_OK;
  double offset, gap_s;
  {
    std::lock_guard<std::mutex> g (*self->lock);
    offset = self->settings->time_offset;
    gap_s = (double) self->settings->max_gap / GST_SECOND;
  }
  const vidcls::Tracks & tracks = *self->tracks;
  double t, gap;
  if (tracks.normalised) {
    t = (double) pts / GST_SECOND + offset;
    gap = gap_s;
  } else {
    const double fps = (double) self->info.fps_n / self->info.fps_d;
    t = std::round ((double) pts / GST_SECOND * fps);
    gap = gap_s * fps;
  }
  guint64 attached = 0;
  for (const auto &kv : tracks.by_id) {
    auto box = vidcls::box_at (kv.second, t, gap);
    if (!box)
      continue;
    if (tracks.normalised)
      *box = vidcls::box_in_pixels (*box, GST_VIDEO_INFO_WIDTH (&self->info),
          GST_VIDEO_INFO_HEIGHT (&self->info));
    attached += attach_box (self, buf, *box, kv.first) ? 1 : 0;
  }
  std::lock_guard<std::mutex> g (*self->lock);
  self->boxes += attached;
  return GST_FLOW_OK;
}

/* ------------------------------------------------------------------ GObject */

static void
gst_vidcls_roi_replay_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstVidclsRoiReplay *self = GST_VIDCLS_ROI_REPLAY (object);
  std::lock_guard<std::mutex> g (*self->lock);
  Settings & s = *self->settings;
  const auto text = [value] {
    const gchar *v = g_value_get_string (value);
    return std::string (v ? v : "");
  };
  switch (prop_id) {
    case PROP_LOCATION:
      s.location = text ();
      break;
    case PROP_FORMAT:
      s.format = (GstVidclsRoiReplayFormat) g_value_get_enum (value);
      break;
    case PROP_VIDEO_ID:
      s.video_id = text ();
      break;
    case PROP_TIME_OFFSET:
      s.time_offset = g_value_get_double (value);
      break;
    case PROP_MAX_GAP:
      s.max_gap = g_value_get_uint64 (value);
      break;
    case PROP_ROI_TYPE:
      s.roi_type = text ().empty ()? DEFAULT_ROI_TYPE : text ();
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_vidcls_roi_replay_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstVidclsRoiReplay *self = GST_VIDCLS_ROI_REPLAY (object);
  std::lock_guard<std::mutex> g (*self->lock);
  const Settings & s = *self->settings;
  const auto text = [value] (const std::string & v) {
    g_value_set_string (value, v.empty ()? nullptr : v.c_str ());
  };
  switch (prop_id) {
    case PROP_LOCATION:
      text (s.location);
      break;
    case PROP_FORMAT:
      g_value_set_enum (value, s.format);
      break;
    case PROP_VIDEO_ID:
      text (s.video_id);
      break;
    case PROP_TIME_OFFSET:
      g_value_set_double (value, s.time_offset);
      break;
    case PROP_MAX_GAP:
      g_value_set_uint64 (value, s.max_gap);
      break;
    case PROP_ROI_TYPE:
      g_value_set_string (value, s.roi_type.c_str ());
      break;
    case PROP_BOXES:
      g_value_set_uint64 (value, self->boxes);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_vidcls_roi_replay_finalize (GObject * object)
{
  GstVidclsRoiReplay *self = GST_VIDCLS_ROI_REPLAY (object);
  delete self->tracks;
  delete self->settings;
  delete self->lock;
  G_OBJECT_CLASS (gst_vidcls_roi_replay_parent_class)->finalize (object);
}

static void
install_properties (GObjectClass * gobject_class)
{
  const auto ready = (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY);
  const auto playing = (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_PLAYING);
  properties[PROP_LOCATION] = g_param_spec_string ("location", "Location",
      "Annotation file: MOTChallenge (gt.txt, det.txt) or AVA (CSV); read at start",
      DEFAULT_LOCATION, ready);
  properties[PROP_FORMAT] = g_param_spec_enum ("format", "Format",
      "Format of the file; auto: .csv is AVA, anything else MOTChallenge",
      GST_TYPE_VIDCLS_ROI_REPLAY_FORMAT, DEFAULT_FORMAT, ready);
  properties[PROP_VIDEO_ID] = g_param_spec_string ("video-id", "Video id",
      "AVA: the video whose boxes are replayed; unset: the file's only video",
      DEFAULT_VIDEO_ID, ready);
  properties[PROP_TIME_OFFSET] = g_param_spec_double ("time-offset", "Time offset",
      "AVA: seconds added to a buffer's PTS to get the file's timestamp (e.g. 900 for a clip "
      "cut at 15 minutes)", -G_MAXDOUBLE, G_MAXDOUBLE, DEFAULT_TIME_OFFSET, playing);
  properties[PROP_MAX_GAP] = g_param_spec_uint64 ("max-gap", "Maximum gap",
      "Nanoseconds: an object's box is interpolated between keys at most this far apart and "
      "its last box held this long after it; none later", 0, G_MAXUINT64, DEFAULT_MAX_GAP,
      playing);
  properties[PROP_ROI_TYPE] = g_param_spec_string ("roi-type", "ROI type",
      "Type (label) of the region-of-interest metas", DEFAULT_ROI_TYPE, ready);
  properties[PROP_BOXES] = vidcls::gst::counter_param_spec ("boxes", "Boxes",
      "Region-of-interest metas attached since start");
  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);
}

static void
gst_vidcls_roi_replay_class_init (GstVidclsRoiReplayClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_vidcls_roi_replay_debug, "vidclsroireplay", 0,
      "vidcls annotation replay");

  gobject_class->set_property = gst_vidcls_roi_replay_set_property;
  gobject_class->get_property = gst_vidcls_roi_replay_get_property;
  gobject_class->finalize = gst_vidcls_roi_replay_finalize;
  install_properties (gobject_class);

  gst_element_class_set_static_metadata (element_class, "Annotation replay",
      "Filter/Analyzer/Video", "Puts the boxes of a MOTChallenge or AVA annotation file on the "
      "stream as region-of-interest metas with their track ids", "vidcls developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_vidcls_roi_replay_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_vidcls_roi_replay_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_vidcls_roi_replay_set_caps);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_vidcls_roi_replay_transform_ip);
  /* the metas are written: a writable buffer, never passthrough */
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;
}

static void
gst_vidcls_roi_replay_init (GstVidclsRoiReplay * self)
{
  self->lock = new std::mutex ();
  self->settings = new Settings ();
  self->tracks = new vidcls::Tracks ();
  self->boxes = 0;
  gst_video_info_init (&self->info);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), FALSE);
}
