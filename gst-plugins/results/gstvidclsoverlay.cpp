/**
 * SECTION:element-vidclsoverlay
 * @title: vidclsoverlay
 * @see_also: vividinfer, resnetvitinfer, vidclsaction, textoverlay
 *
 * Draws what the classifier upstream says on the video: the labels of the latest
 * classification with their scores (best first, at most top-k lines), held until the next one,
 * and the actions that are open (started and not yet ended), as "● waving since 12.3 s", the
 * time being the stream time at which the action started.
 *
 * It reads the results in-band, as every vidcls element passes them on: a
 * #GstVidclsClassificationMeta or #GstVidclsActionMeta on a buffer, or the
 * "vidcls-classification", "vidcls-action-start" and "vidcls-action-end" custom downstream
 * events that carry results no buffer follows. A classification with no label above the
 * inference element's threshold clears the label lines.
 *
 * Results about tracked objects (vidclsclipper inference-region=roi-list) are drawn at the
 * object: an outline of its box (in action-color while one of its actions is open, else in
 * text-color) and a text box with its latest labels and open actions, above the box where the
 * frame has room. The box is the object's region-of-interest meta on the frame being drawn, so
 * the label follows the object; on frames that carry no region-of-interest metas at all, the box
 * the result was computed on. An object with region-of-interest metas on the frame but none of
 * its own has left: it is not drawn. show-objects turns this off.
 *
 * The text is rendered with Pango and Cairo into one ARGB rectangle, again only when the text,
 * a property or the frame size changes, and then either
 *
 * - attached to the buffer as a #GstVideoOverlayCompositionMeta, the pixels left alone, when
 *   downstream negotiates the meta:GstVideoOverlayComposition caps feature and announces the
 *   meta in the allocation query (glimagesink and other compositing sinks draw it, at their
 *   own resolution), or
 * - blended into the frame (gst_video_overlay_composition_blend()) otherwise, in any of the
 *   formats of the pad templates.
 *
 * A flush (seek) and the stream-start of another stream clear what is shown; end of stream and
 * caps changes keep it. font-size is in pixels of the frame; 0 takes the size in font-desc, or
 * else scales with the frame (a twentieth of its height, at least 10 px).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=video.mp4 ! decodebin ! videoconvert ! \
 *     vidclsclipper ! vividinfer model=m.safetensors ! vidclsoverlay ! videoconvert ! \
 *     autovideosink
 * ]| Play a file with its labels on it.
 * |[
 * gst-launch-1.0 filesrc location=video.mp4 ! decodebin ! videoconvert ! \
 *     vidclsclipper ! vividinfer model=m.safetensors top-k=2 ! \
 *     vidclsoverlay position=bottom-right font-size=24 text-color=0xffffff00 ! \
 *     videoconvert ! jpegenc ! avimux ! filesink location=labelled.avi
 * ]| Write a copy with the two best labels in yellow at the bottom right.
 */
#include "gstvidclsoverlay.h"

#include <gst/video/video.h>
#include <pango/pangocairo.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "gstvidclsevents.h"
#include "gstvidclsproperties.h"
#include "gstvidclsroi.h"

GST_DEBUG_CATEGORY_STATIC (gst_vidcls_overlay_debug);
#define GST_CAT_DEFAULT gst_vidcls_overlay_debug

#define DEFAULT_FONT_DESC "Sans Bold"
#define DEFAULT_FONT_SIZE 0
#define DEFAULT_POSITION GST_VIDCLS_OVERLAY_POSITION_TOP_LEFT
#define DEFAULT_X_OFFSET 8
#define DEFAULT_Y_OFFSET 8
#define DEFAULT_TEXT_COLOR 0xffffffffu
#define DEFAULT_BACKGROUND_COLOR 0xa0000000u
#define DEFAULT_ACTION_COLOR 0xffffc040u
#define DEFAULT_TOP_K 3
#define DEFAULT_SHOW_SCORES TRUE
#define DEFAULT_SHOW_ACTIONS TRUE
#define DEFAULT_SHOW_OBJECTS TRUE
/* tracked objects whose latest result is kept; beyond, the one updated longest ago goes */
#define MAX_SHOWN_OBJECTS 256

#define MAX_FONT_SIZE 1000
#define MAX_OFFSET 32767
#define MAX_TOP_K 1000
/* font-size 0 without a size in font-desc: a twentieth of the frame height, at least this */
#define MIN_AUTO_FONT_SIZE 10

enum
{
  PROP_0,
  PROP_FONT_DESC,
  PROP_FONT_SIZE,
  PROP_POSITION,
  PROP_X_OFFSET,
  PROP_Y_OFFSET,
  PROP_TEXT_COLOR,
  PROP_BACKGROUND_COLOR,
  PROP_ACTION_COLOR,
  PROP_TOP_K,
  PROP_SHOW_SCORES,
  PROP_SHOW_ACTIONS,
  PROP_SHOW_OBJECTS,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

/* The raw formats gst_video_overlay_composition_blend() draws into correctly (each one is
 * checked by tests/results/test_overlay.cpp). */
#define OVERLAY_FORMATS \
  "{ I420, YV12, NV12, NV21, NV16, NV24, Y42B, Y444, Y41B, YUY2, UYVY, YVYU, AYUV, VUYA, " \
  "A420, RGBA, BGRA, ARGB, ABGR, RGBx, BGRx, xRGB, xBGR, RGB, BGR, RGB16, BGR16, GRAY8, " \
  "GRAY16_LE, I420_10LE, I422_10LE, Y444_10LE, P010_10LE, v210 }"

/* As textoverlay offers it: system memory that may carry a composition for downstream. */
#define COMPOSITION_FEATURES \
  GST_CAPS_FEATURE_MEMORY_SYSTEM_MEMORY ", " GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (OVERLAY_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE_WITH_FEATURES (COMPOSITION_FEATURES, OVERLAY_FORMATS)
        "; " GST_VIDEO_CAPS_MAKE (OVERLAY_FORMATS)));

namespace {

using vidcls::gst::ActionEvent;
using vidcls::gst::ClipResult;

struct Settings {
  std::string font_desc = DEFAULT_FONT_DESC;
  guint font_size = DEFAULT_FONT_SIZE;
  GstVidclsOverlayPosition position = DEFAULT_POSITION;
  guint x_offset = DEFAULT_X_OFFSET;
  guint y_offset = DEFAULT_Y_OFFSET;
  guint text_color = DEFAULT_TEXT_COLOR;
  guint background_color = DEFAULT_BACKGROUND_COLOR;
  guint action_color = DEFAULT_ACTION_COLOR;
  guint top_k = DEFAULT_TOP_K;
  gboolean show_scores = DEFAULT_SHOW_SCORES;
  gboolean show_actions = DEFAULT_SHOW_ACTIONS;
  gboolean show_objects = DEFAULT_SHOW_OBJECTS;
};

struct Line {
  std::string text;
  guint color;                  /* 0xAARRGGBB */
  bool operator== (const Line & o) const { return text == o.text && color == o.color; }
};

/* What the cached composition was rendered from. */
struct RenderKey {
  std::vector<Line> lines;
  guint settings_version = 0;
  gint width = 0;
  gint height = 0;
  bool operator== (const RenderKey & o) const
  {
    return lines == o.lines && settings_version == o.settings_version && width == o.width
        && height == o.height;
  }
};

/* An open action, by stream, object and the action element's number. */
using ActionKey = std::tuple<std::string, gint64, guint64>;

using BufferPtr = std::shared_ptr<GstBuffer>;

/* A tracked object's latest result, and the text box last drawn for it. */
struct ShownObject {
  std::optional<ClipResult> result;
  guint64 order = 0;            /* when it last changed, for MAX_SHOWN_OBJECTS */
  std::optional<RenderKey> key; /* what `pixels` were rendered from */
  BufferPtr pixels;
  int w = 0, h = 0;
};

/* A box in whole pixels of the frame. */
struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
};

}  // namespace

struct GstVidclsOverlayPrivate {
  std::mutex lock;              /* guards settings */
  Settings settings;
  std::atomic<guint> settings_version{1};

  /* The rest belongs to the streaming thread (set_caps, sink_event, transform_ip), and to
   * start() / stop() while it does not run. */
  GstVideoInfo info;
  bool out_has_feature = false; /* the src caps carry meta:GstVideoOverlayComposition */
  std::atomic<bool> check_downstream{false};    /* ask the allocation query again */
  bool attach = false;          /* attach the composition instead of blending */

  std::string stream_id;
  std::optional<ClipResult> latest;
  std::map<ActionKey, ActionEvent> open_actions;
  std::map<gint64, ShownObject> objects;        /* by object id */
  guint64 object_order = 0;
  std::map<guint, BufferPtr> solids;            /* a small rectangle of one colour each */

  Settings used;                /* settings the streaming thread last took */
  guint used_version = 0;
  PangoFontMap *font_map = nullptr;
  PangoContext *context = nullptr;
  PangoFontDescription *font = nullptr;         /* font-desc, checked; size set per render */
  std::string font_desc;                        /* the font-desc `font` was made from */
  std::optional<RenderKey> cached_key;
  GstVideoOverlayComposition *composition = nullptr;    /* nullptr: nothing to draw */
};

struct _GstVidclsOverlay
{
  GstBaseTransform parent;
  GstVidclsOverlayPrivate *priv;
};

#define gst_vidcls_overlay_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstVidclsOverlay, gst_vidcls_overlay, GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_vidcls_overlay_debug, "vidclsoverlay", 0,
        "vidcls result overlay"));
GST_ELEMENT_REGISTER_DEFINE (vidclsoverlay, "vidclsoverlay", GST_RANK_NONE,
    GST_TYPE_VIDCLS_OVERLAY);

GType
gst_vidcls_overlay_position_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_OVERLAY_POSITION_TOP_LEFT, "Top left corner", "top-left"},
    {GST_VIDCLS_OVERLAY_POSITION_TOP_RIGHT, "Top right corner", "top-right"},
    {GST_VIDCLS_OVERLAY_POSITION_BOTTOM_LEFT, "Bottom left corner", "bottom-left"},
    {GST_VIDCLS_OVERLAY_POSITION_BOTTOM_RIGHT, "Bottom right corner", "bottom-right"},
    {0, nullptr, nullptr},
  };
  return vidcls::gst::enum_type_once (&type, "GstVidclsOverlayPosition", values);
}

static void gst_vidcls_overlay_finalize (GObject * object);
static void gst_vidcls_overlay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_vidcls_overlay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static gboolean gst_vidcls_overlay_start (GstBaseTransform * trans);
static gboolean gst_vidcls_overlay_stop (GstBaseTransform * trans);
static GstCaps *gst_vidcls_overlay_transform_caps (GstBaseTransform * trans,
    GstPadDirection direction, GstCaps * caps, GstCaps * filter);
static gboolean gst_vidcls_overlay_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps);
static gboolean gst_vidcls_overlay_sink_event (GstBaseTransform * trans, GstEvent * event);
static gboolean gst_vidcls_overlay_src_event (GstBaseTransform * trans, GstEvent * event);
static void gst_vidcls_overlay_before_transform (GstBaseTransform * trans, GstBuffer * buf);
static GstFlowReturn gst_vidcls_overlay_transform_ip (GstBaseTransform * trans,
    GstBuffer * buf);

static void
install_properties (GObjectClass * gobject_class)
{
  const auto rw = static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_PLAYING);
  const auto rwc = static_cast<GParamFlags> (rw | GST_PARAM_CONTROLLABLE);

  properties[PROP_FONT_DESC] = g_param_spec_string ("font-desc", "Font description",
      "Pango font description: family, style, weight (e.g. \"Sans Bold\", \"DejaVu Serif "
      "Italic\"); a size in it is used when font-size is 0. A family that is not installed "
      "gives a warning and the default family", DEFAULT_FONT_DESC, rw);
  properties[PROP_FONT_SIZE] = g_param_spec_uint ("font-size", "Font size",
      "Height of the font in pixels of the frame; 0 = the size in font-desc, or else a "
      "twentieth of the frame height (at least 10 px)", 0, MAX_FONT_SIZE, DEFAULT_FONT_SIZE,
      rwc);
  properties[PROP_POSITION] = g_param_spec_enum ("position", "Position",
      "Corner of the frame the text box is anchored to", GST_TYPE_VIDCLS_OVERLAY_POSITION,
      DEFAULT_POSITION, rw);
  properties[PROP_X_OFFSET] = g_param_spec_uint ("x-offset", "X offset",
      "Pixels between the text box and the left or right edge of the frame (the edge of "
      "position's corner)", 0, MAX_OFFSET, DEFAULT_X_OFFSET, rwc);
  properties[PROP_Y_OFFSET] = g_param_spec_uint ("y-offset", "Y offset",
      "Pixels between the text box and the top or bottom edge of the frame (the edge of "
      "position's corner)", 0, MAX_OFFSET, DEFAULT_Y_OFFSET, rwc);
  properties[PROP_TEXT_COLOR] = g_param_spec_uint ("text-color", "Text colour",
      "Colour of the label lines, 0xAARRGGBB (default opaque white)", 0, G_MAXUINT32,
      DEFAULT_TEXT_COLOR, rwc);
  properties[PROP_BACKGROUND_COLOR] = g_param_spec_uint ("background-color",
      "Background colour", "Colour of the box behind the text, 0xAARRGGBB (default black at "
      "alpha 0xa0; 0 = no box)", 0, G_MAXUINT32, DEFAULT_BACKGROUND_COLOR, rwc);
  properties[PROP_ACTION_COLOR] = g_param_spec_uint ("action-color", "Action colour",
      "Colour of the open-action lines, 0xAARRGGBB (default opaque amber 0xffffc040)", 0,
      G_MAXUINT32, DEFAULT_ACTION_COLOR, rwc);
  properties[PROP_TOP_K] = g_param_spec_uint ("top-k", "Top k",
      "Label lines at most, best first (the result may carry fewer: see the inference "
      "element's top-k and threshold); 0 = every label of the result", 0, MAX_TOP_K,
      DEFAULT_TOP_K, rwc);
  properties[PROP_SHOW_SCORES] = g_param_spec_boolean ("show-scores", "Show scores",
      "Write each label's score (0..1, two decimals) after it", DEFAULT_SHOW_SCORES, rw);
  properties[PROP_SHOW_ACTIONS] = g_param_spec_boolean ("show-actions", "Show actions",
      "Draw the open actions (from vidclsaction) below the labels", DEFAULT_SHOW_ACTIONS, rw);
  properties[PROP_SHOW_OBJECTS] = g_param_spec_boolean ("show-objects", "Show objects",
      "Draw the results about tracked objects at each object: its box outlined and its labels "
      "and open actions beside it (the box of its region-of-interest meta on the frame, else "
      "the one its result was computed on)", DEFAULT_SHOW_OBJECTS, rw);
  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);
}

static void
gst_vidcls_overlay_class_init (GstVidclsOverlayClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->finalize = gst_vidcls_overlay_finalize;
  gobject_class->set_property = gst_vidcls_overlay_set_property;
  gobject_class->get_property = gst_vidcls_overlay_get_property;
  install_properties (gobject_class);

  gst_element_class_set_static_metadata (element_class, "Video classification overlay",
      "Filter/Editor/Video", "Draws the latest top-k labels with their scores and the open "
      "actions on the video, or attaches them as an overlay composition", "vidcls developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_vidcls_overlay_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_vidcls_overlay_stop);
  trans_class->transform_caps = GST_DEBUG_FUNCPTR (gst_vidcls_overlay_transform_caps);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_vidcls_overlay_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_vidcls_overlay_sink_event);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_vidcls_overlay_src_event);
  trans_class->before_transform = GST_DEBUG_FUNCPTR (gst_vidcls_overlay_before_transform);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_vidcls_overlay_transform_ip);
  /* The buffer is written even when the caps are the same (pixels or a meta). */
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;

}

static void
gst_vidcls_overlay_init (GstVidclsOverlay * self)
{
  self->priv = new GstVidclsOverlayPrivate ();
  gst_video_info_init (&self->priv->info);
  /* A font map of the element's own: Pango objects are not shared between threads. */
  self->priv->font_map = pango_cairo_font_map_new ();
  self->priv->context = pango_font_map_create_context (self->priv->font_map);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), FALSE);
}

static void
clear_results (GstVidclsOverlayPrivate * priv)
{
  priv->latest.reset ();
  priv->open_actions.clear ();
  priv->objects.clear ();
}

static void
clear_render (GstVidclsOverlayPrivate * priv)
{
  priv->cached_key.reset ();
  g_clear_pointer (&priv->composition, gst_video_overlay_composition_unref);
  for (auto &kv : priv->objects) {
    kv.second.key.reset ();
    kv.second.pixels.reset ();
  }
}

static void
gst_vidcls_overlay_finalize (GObject * object)
{
  GstVidclsOverlayPrivate *priv = GST_VIDCLS_OVERLAY (object)->priv;

  clear_render (priv);
  g_clear_pointer (&priv->font, pango_font_description_free);
  g_clear_object (&priv->context);
  g_clear_object (&priv->font_map);
  delete priv;
  GST_VIDCLS_OVERLAY (object)->priv = nullptr;

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_vidcls_overlay_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstVidclsOverlayPrivate *priv = GST_VIDCLS_OVERLAY (object)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);
  Settings & s = priv->settings;
  switch (prop_id) {
    case PROP_FONT_DESC:{
      const gchar *desc = g_value_get_string (value);
      s.font_desc = desc != nullptr ? desc : DEFAULT_FONT_DESC;
      break;
    }
    case PROP_FONT_SIZE:
      s.font_size = g_value_get_uint (value);
      break;
    case PROP_POSITION:
      s.position = static_cast<GstVidclsOverlayPosition> (g_value_get_enum (value));
      break;
    case PROP_X_OFFSET:
      s.x_offset = g_value_get_uint (value);
      break;
    case PROP_Y_OFFSET:
      s.y_offset = g_value_get_uint (value);
      break;
    case PROP_TEXT_COLOR:
      s.text_color = g_value_get_uint (value);
      break;
    case PROP_BACKGROUND_COLOR:
      s.background_color = g_value_get_uint (value);
      break;
    case PROP_ACTION_COLOR:
      s.action_color = g_value_get_uint (value);
      break;
    case PROP_TOP_K:
      s.top_k = g_value_get_uint (value);
      break;
    case PROP_SHOW_SCORES:
      s.show_scores = g_value_get_boolean (value);
      break;
    case PROP_SHOW_ACTIONS:
      s.show_actions = g_value_get_boolean (value);
      break;
    case PROP_SHOW_OBJECTS:
      s.show_objects = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
  }
  priv->settings_version++;
}

static void
gst_vidcls_overlay_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstVidclsOverlayPrivate *priv = GST_VIDCLS_OVERLAY (object)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);
  const Settings & s = priv->settings;
  switch (prop_id) {
    case PROP_FONT_DESC:
      g_value_set_string (value, s.font_desc.c_str ());
      break;
    case PROP_FONT_SIZE:
      g_value_set_uint (value, s.font_size);
      break;
    case PROP_POSITION:
      g_value_set_enum (value, s.position);
      break;
    case PROP_X_OFFSET:
      g_value_set_uint (value, s.x_offset);
      break;
    case PROP_Y_OFFSET:
      g_value_set_uint (value, s.y_offset);
      break;
    case PROP_TEXT_COLOR:
      g_value_set_uint (value, s.text_color);
      break;
    case PROP_BACKGROUND_COLOR:
      g_value_set_uint (value, s.background_color);
      break;
    case PROP_ACTION_COLOR:
      g_value_set_uint (value, s.action_color);
      break;
    case PROP_TOP_K:
      g_value_set_uint (value, s.top_k);
      break;
    case PROP_SHOW_SCORES:
      g_value_set_boolean (value, s.show_scores);
      break;
    case PROP_SHOW_ACTIONS:
      g_value_set_boolean (value, s.show_actions);
      break;
    case PROP_SHOW_OBJECTS:
      g_value_set_boolean (value, s.show_objects);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static gboolean
gst_vidcls_overlay_start (GstBaseTransform * trans)
{
  GstVidclsOverlayPrivate *priv = GST_VIDCLS_OVERLAY (trans)->priv;
  clear_results (priv);
  clear_render (priv);
  priv->stream_id.clear ();
  priv->attach = false;
  return TRUE;
}

static gboolean
gst_vidcls_overlay_stop (GstBaseTransform * trans)
{
  GstVidclsOverlayPrivate *priv = GST_VIDCLS_OVERLAY (trans)->priv;
  clear_results (priv);
  clear_render (priv);
  return TRUE;
}

/* ------------------------------------------------------------------ caps */

/* `caps` with the composition feature added to (add) or removed from (!add) every structure. */
static GstCaps *
with_composition_feature (GstCaps * caps, bool add)
{
  GstCaps *out = gst_caps_new_empty ();
  for (guint i = 0; i < gst_caps_get_size (caps); ++i) {
    GstCapsFeatures *f = gst_caps_features_copy (gst_caps_get_features (caps, i));
    if (!gst_caps_features_is_any (f)) {
      if (add) {
        if (!gst_caps_features_contains (f, GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION))
          gst_caps_features_add (f, GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);
      } else {
        gst_caps_features_remove (f, GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);
        if (gst_caps_features_get_size (f) == 0)
          gst_caps_features_add (f, GST_CAPS_FEATURE_MEMORY_SYSTEM_MEMORY);
      }
    }
    out = gst_caps_merge_structure_full (out,
        gst_structure_copy (gst_caps_get_structure (caps, i)), f);
  }
  return out;
}

/* Downstream may take the frames with the composition feature (preferred: then the text can be
 * drawn by the sink and the pixels stay untouched) or as they are; upstream gets them without. */
static GstCaps *
gst_vidcls_overlay_transform_caps (GstBaseTransform * trans, GstPadDirection direction,
    GstCaps * caps, GstCaps * filter)
{
  GstCaps *out;
  if (direction == GST_PAD_SINK) {
    out = gst_caps_merge (with_composition_feature (caps, true), gst_caps_ref (caps));
  } else {
    out = with_composition_feature (caps, false);
  }
  if (filter != nullptr) {
    GstCaps *filtered = gst_caps_intersect_full (filter, out, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (out);
    out = filtered;
  }
  GST_LOG_OBJECT (trans, "%s %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
      direction == GST_PAD_SINK ? "sink" : "src", caps, out);
  return out;
}

static gboolean
gst_vidcls_overlay_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstVidclsOverlay *self = GST_VIDCLS_OVERLAY (trans);
  GstVidclsOverlayPrivate *priv = self->priv;
  if (!gst_video_info_from_caps (&priv->info, incaps)) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, ("Cannot read video caps %" GST_PTR_FORMAT,
            incaps), ("vidclsoverlay takes raw video in system memory"));
    return FALSE;
  }
  GstCapsFeatures *f = gst_caps_get_features (outcaps, 0);
  priv->out_has_feature = f != nullptr
      && gst_caps_features_contains (f, GST_CAPS_FEATURE_META_GST_VIDEO_OVERLAY_COMPOSITION);
  priv->check_downstream = true;
  clear_render (priv);          /* the frame size may have changed */
  GST_DEBUG_OBJECT (self, "caps %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT, incaps, outcaps);
  return TRUE;
}

/* Whether downstream draws a composition meta itself: it negotiated the caps feature and lists
 * the meta in its answer to an allocation query (as textoverlay decides). The element works in
 * place, so GstBaseTransform sends no allocation query of its own. */
static bool
downstream_draws_composition (GstVidclsOverlay * self)
{
  if (!self->priv->out_has_feature)
    return false;
  GstBaseTransform *trans = GST_BASE_TRANSFORM (self);
  GstCaps *caps = gst_pad_get_current_caps (trans->srcpad);
  if (caps == nullptr)
    return false;
  GstQuery *query = gst_query_new_allocation (caps, FALSE);
  gst_caps_unref (caps);
  bool supported = gst_pad_peer_query (trans->srcpad, query)
      && gst_query_find_allocation_meta (query, GST_VIDEO_OVERLAY_COMPOSITION_META_API_TYPE,
      nullptr);
  gst_query_unref (query);
  return supported;
}

/* ------------------------------------------------------------------ results */

static void
take_classification (GstVidclsOverlayPrivate * priv, const ClipResult & r)
{
  if (r.object_id == -1) {
    priv->latest = r;
    return;
  }
  ShownObject & o = priv->objects[r.object_id];
  o.result = r;
  o.order = ++priv->object_order;
  if (priv->objects.size () > MAX_SHOWN_OBJECTS) {
    auto oldest = std::min_element (priv->objects.begin (), priv->objects.end (),
        [] (const auto & a, const auto & b) { return a.second.order < b.second.order; });
    priv->objects.erase (oldest);
  }
}

static void
take_action (GstVidclsOverlay * self, const ActionEvent & a)
{
  GstVidclsOverlayPrivate *priv = self->priv;
  ActionKey key{a.stream_id, a.object_id, a.id};
  if (a.phase == GST_VIDCLS_ACTION_PHASE_START) {
    priv->open_actions[key] = a;
  } else if (priv->open_actions.erase (key) == 0) {
    GST_DEBUG_OBJECT (self, "end of action %" G_GUINT64_FORMAT " (%s) that was not open",
        a.id, a.label.c_str ());
  }
}

static void
take_results_of (GstVidclsOverlay * self, GstBuffer * buf)
{
  for (const ClipResult & r : vidcls::gst::clip_results_of (buf))
    take_classification (self->priv, r);
  for (const ActionEvent & a : vidcls::gst::actions_of (buf))
    take_action (self, a);
}

/* A result event (no buffer followed it upstream): shown on the frames that come after. */
static void
take_result_event (GstVidclsOverlay * self, const GstStructure * s)
{
  ClipResult r;
  ActionEvent a;
  if (vidcls::gst::clip_result_from_structure (s, &r))
    take_classification (self->priv, r);
  else if (vidcls::gst::action_from_structure (s, &a))
    take_action (self, a);
  else
    GST_WARNING_OBJECT (self, "unreadable result event %" GST_PTR_FORMAT, s);
}

static gboolean
gst_vidcls_overlay_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVidclsOverlay *self = GST_VIDCLS_OVERLAY (trans);
  GstVidclsOverlayPrivate *priv = self->priv;
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:{
      const gchar *id = nullptr;
      gst_event_parse_stream_start (event, &id);
      const std::string stream_id = id != nullptr ? id : "";
      if (stream_id != priv->stream_id) {
        GST_DEBUG_OBJECT (self, "stream %s: results of %s cleared", stream_id.c_str (),
            priv->stream_id.c_str ());
        clear_results (priv);
        priv->stream_id = stream_id;
      }
      break;
    }
    case GST_EVENT_FLUSH_STOP:
      clear_results (priv);     /* what was shown is about frames before the seek */
      break;
    case GST_EVENT_CUSTOM_DOWNSTREAM:
      if (const GstStructure * s = vidcls::gst::result_event_structure (event))
        take_result_event (self, s);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static gboolean
gst_vidcls_overlay_src_event (GstBaseTransform * trans, GstEvent * event)
{
  /* Downstream changed (a sink that draws compositions may have come or gone). */
  if (GST_EVENT_TYPE (event) == GST_EVENT_RECONFIGURE)
    GST_VIDCLS_OVERLAY (trans)->priv->check_downstream = true;
  return GST_BASE_TRANSFORM_CLASS (parent_class)->src_event (trans, event);
}

/* ------------------------------------------------------------------ text */

/* The stream time of `pts` in seconds, or a negative number when unknown. */
static gdouble
stream_seconds (GstBaseTransform * trans, GstClockTime pts)
{
  if (!GST_CLOCK_TIME_IS_VALID (pts) || trans->segment.format != GST_FORMAT_TIME)
    return -1.0;
  const guint64 t = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME, pts);
  return GST_CLOCK_TIME_IS_VALID (t) ? static_cast<gdouble> (t) / GST_SECOND : -1.0;
}

/* The label lines of result `r` and the lines of the open actions about `object_id`. */
static std::vector<Line>
compose_lines (GstVidclsOverlay * self, const Settings & s, const ClipResult * r,
    gint64 object_id)
{
  GstVidclsOverlayPrivate *priv = self->priv;
  std::vector<Line> lines;
  if (r != nullptr) {
    const size_t n = s.top_k == 0 ? r->labels.size () : std::min<size_t> (s.top_k,
        r->labels.size ());
    for (size_t i = 0; i < n; ++i) {
      gchar *text = s.show_scores ? g_strdup_printf ("%s %.2f", r->labels[i].c_str (),
          r->scores[i]) : g_strdup (r->labels[i].c_str ());
      lines.push_back ({text, s.text_color});
      g_free (text);
    }
  }
  if (s.show_actions) {
    for (const auto & kv : priv->open_actions) {
      const ActionEvent & a = kv.second;
      if (a.object_id != object_id)
        continue;
      const gdouble since = stream_seconds (GST_BASE_TRANSFORM (self), a.start);
      gchar *text = since >= 0 ? g_strdup_printf ("\u25cf %s since %.1f s", a.label.c_str (),
          since) : g_strdup_printf ("\u25cf %s", a.label.c_str ());
      lines.push_back ({text, s.action_color});
      g_free (text);
    }
  }
  return lines;
}

static bool
is_generic_family (const std::string & family)
{
  static const char *const generic[] = {"sans", "sans-serif", "serif", "monospace", "mono",
    "cursive", "fantasy", "system-ui", "emoji"};
  for (const char *g : generic) {
    if (g_ascii_strcasecmp (family.c_str (), g) == 0)
      return true;
  }
  return false;
}

/* Whether fontconfig gives a font of the family `desc` asks for (one of a comma-separated list,
 * or a generic name) rather than a stand-in. */
static bool
family_installed (GstVidclsOverlayPrivate * priv, const PangoFontDescription * desc)
{
  const char *families = pango_font_description_get_family (desc);
  if (families == nullptr)
    return true;
  PangoFont *font = pango_font_map_load_font (priv->font_map, priv->context, desc);
  if (font == nullptr)
    return false;
  PangoFontDescription *got = pango_font_describe (font);
  const char *got_family = pango_font_description_get_family (got);
  bool found = false;
  gchar **asked = g_strsplit (families, ",", -1);
  for (gchar **f = asked; *f != nullptr && !found; ++f) {
    const std::string family = g_strstrip (*f);
    found = is_generic_family (family) || (got_family != nullptr
        && g_ascii_strcasecmp (family.c_str (), got_family) == 0);
  }
  g_strfreev (asked);
  pango_font_description_free (got);
  g_object_unref (font);
  return found;
}

/* priv->font from font-desc, taken again when the settings changed; an uninstalled family is
 * replaced by the default one, with a warning. */
static void
update_font (GstVidclsOverlay * self, const std::string & font_desc)
{
  GstVidclsOverlayPrivate *priv = self->priv;
  PangoFontDescription *desc = pango_font_description_from_string (font_desc.c_str ());
  if (!family_installed (priv, desc)) {
    PangoFontDescription *fallback = pango_font_description_from_string (DEFAULT_FONT_DESC);
    GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
        ("Font \"%s\" is not installed; drawing with \"%s\"", font_desc.c_str (),
            pango_font_description_get_family (fallback)),
        ("Set font-desc to an installed family (fc-list : family lists them)"));
    pango_font_description_set_family (desc, pango_font_description_get_family (fallback));
    pango_font_description_free (fallback);
  }
  if (priv->font != nullptr)
    pango_font_description_free (priv->font);
  priv->font = desc;
}

/* Font height in pixels: font-size, else the size in font-desc (points at 96 dpi, as Pango's
 * default resolution), else a twentieth of the frame height. */
static int
font_pixels (const GstVidclsOverlayPrivate * priv, const Settings & s, int frame_height)
{
  if (s.font_size > 0)
    return static_cast<int> (s.font_size);
  const int size = pango_font_description_get_size (priv->font);
  if (size > 0) {
    const double px = static_cast<double> (size) / PANGO_SCALE;
    return std::max (1, static_cast<int> (pango_font_description_get_size_is_absolute (
                    priv->font) ? px : px * 96.0 / 72.0 + 0.5));
  }
  return std::max (MIN_AUTO_FONT_SIZE, frame_height / 20);
}

static void
set_source_argb (cairo_t * cr, guint argb)
{
  cairo_set_source_rgba (cr, ((argb >> 16) & 0xff) / 255.0, ((argb >> 8) & 0xff) / 255.0,
      (argb & 0xff) / 255.0, ((argb >> 24) & 0xff) / 255.0);
}

/* Where the box of w x h goes in a frame of frame_w x frame_h. */
static void
place_box (const Settings & s, int frame_w, int frame_h, int w, int h, int *x, int *y)
{
  const bool right = s.position == GST_VIDCLS_OVERLAY_POSITION_TOP_RIGHT
      || s.position == GST_VIDCLS_OVERLAY_POSITION_BOTTOM_RIGHT;
  const bool bottom = s.position == GST_VIDCLS_OVERLAY_POSITION_BOTTOM_LEFT
      || s.position == GST_VIDCLS_OVERLAY_POSITION_BOTTOM_RIGHT;
  const int xo = static_cast<int> (s.x_offset), yo = static_cast<int> (s.y_offset);
  *x = std::clamp (right ? frame_w - w - xo : xo, 0, frame_w - w);
  *y = std::clamp (bottom ? frame_h - h - yo : yo, 0, frame_h - h);
}

/* The Cairo ARGB32 image (premultiplied, native endian) as the pixels of an overlay rectangle:
 * GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB is the same byte order. */
static GstBuffer *
surface_to_buffer (cairo_surface_t * surface, int w, int h)
{
  const int stride = cairo_image_surface_get_stride (surface);
  GstBuffer *pixels = gst_buffer_new_allocate (nullptr, static_cast<gsize> (stride) * h,
      nullptr);
  gst_buffer_fill (pixels, 0, cairo_image_surface_get_data (surface),
      static_cast<gsize> (stride) * h);
  gsize offset[GST_VIDEO_MAX_PLANES] = {0};
  gint strides[GST_VIDEO_MAX_PLANES] = {stride};
  gst_buffer_add_video_meta_full (pixels, GST_VIDEO_FRAME_FLAG_NONE,
      GST_VIDEO_OVERLAY_COMPOSITION_FORMAT_RGB, w, h, 1, offset, strides);
  return pixels;
}

/* The lines in a text box, as the pixels of an overlay rectangle (*w x *h, at most the frame's
 * size); nullptr when it cannot be drawn. */
static GstBuffer *
render_text (GstVidclsOverlay * self, const std::vector<Line> & lines, const Settings & s,
    int frame_w, int frame_h, int *w, int *h)
{
  GstVidclsOverlayPrivate *priv = self->priv;
  const int px = font_pixels (priv, s, frame_h);
  PangoFontDescription *desc = pango_font_description_copy (priv->font);
  pango_font_description_set_absolute_size (desc, static_cast<double> (px) * PANGO_SCALE);
  std::vector<PangoLayout *> layouts;
  std::vector<PangoRectangle> extents;
  int text_w = 0, text_h = 0;
  for (const Line & line : lines) {
    PangoLayout *layout = pango_layout_new (priv->context);
    pango_layout_set_font_description (layout, desc);
    pango_layout_set_text (layout, line.text.c_str (), -1);
    PangoRectangle logical;
    pango_layout_get_pixel_extents (layout, nullptr, &logical);
    text_w = std::max (text_w, logical.width);
    text_h += logical.height;
    layouts.push_back (layout);
    extents.push_back (logical);
  }
  pango_font_description_free (desc);

  const int pad = std::max (2, px / 4);
  *w = std::min (text_w + 2 * pad, frame_w);
  *h = std::min (text_h + 2 * pad, frame_h);
  GstBuffer *pixels = nullptr;
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, *w, *h);
  if (cairo_surface_status (surface) == CAIRO_STATUS_SUCCESS) {
    cairo_t *cr = cairo_create (surface);
    cairo_set_operator (cr, CAIRO_OPERATOR_SOURCE);
    set_source_argb (cr, s.background_color);
    cairo_paint (cr);
    cairo_set_operator (cr, CAIRO_OPERATOR_OVER);
    int y = pad;
    for (size_t i = 0; i < layouts.size (); ++i) {
      cairo_move_to (cr, pad - extents[i].x, y - extents[i].y);
      set_source_argb (cr, lines[i].color);
      pango_cairo_show_layout (cr, layouts[i]);
      y += extents[i].height;
    }
    cairo_destroy (cr);
    cairo_surface_flush (surface);
    pixels = surface_to_buffer (surface, *w, *h);
    GST_DEBUG_OBJECT (self, "rendered %zu lines, %d px font: %dx%d", lines.size (), px, *w, *h);
  } else {
    GST_ELEMENT_WARNING (self, RESOURCE, FAILED, ("Cannot draw a %dx%d text box: %s", *w, *h,
            cairo_status_to_string (cairo_surface_status (surface))), (nullptr));
  }
  cairo_surface_destroy (surface);
  for (PangoLayout *layout : layouts)
    g_object_unref (layout);
  return pixels;
}

/* The lines in a box, as a composition of one rectangle placed as the settings ask; nullptr
 * when the frame cannot hold it. */
static GstVideoOverlayComposition *
render_lines (GstVidclsOverlay * self, const std::vector<Line> & lines, const Settings & s,
    int frame_w, int frame_h)
{
  int w = 0, h = 0, x = 0, top = 0;
  GstBuffer *pixels = render_text (self, lines, s, frame_w, frame_h, &w, &h);
  if (pixels == nullptr)
    return nullptr;
  place_box (s, frame_w, frame_h, w, h, &x, &top);
  GstVideoOverlayRectangle *rect = gst_video_overlay_rectangle_new_raw (pixels, x, top, w, h,
      GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA);
  gst_buffer_unref (pixels);
  GstVideoOverlayComposition *composition = gst_video_overlay_composition_new (rect);
  gst_video_overlay_rectangle_unref (rect);
  return composition;
}

/* The composition for what is to be shown now: the cached one unless the text, the settings or
 * the frame size changed; nullptr when there is nothing to show. */
static GstVideoOverlayComposition *
current_composition (GstVidclsOverlay * self)
{
  GstVidclsOverlayPrivate *priv = self->priv;
  const guint version = priv->settings_version;
  if (version != priv->used_version) {
    {
      std::lock_guard<std::mutex> guard (priv->lock);
      priv->used = priv->settings;
    }
    priv->used_version = version;
    if (priv->font == nullptr || priv->used.font_desc != priv->font_desc) {
      update_font (self, priv->used.font_desc);
      priv->font_desc = priv->used.font_desc;
    }
  }
  RenderKey key{compose_lines (self, priv->used, priv->latest ? &*priv->latest : nullptr, -1),
    version, GST_VIDEO_INFO_WIDTH (&priv->info), GST_VIDEO_INFO_HEIGHT (&priv->info)};
  if (priv->cached_key && *priv->cached_key == key)
    return priv->composition;
  g_clear_pointer (&priv->composition, gst_video_overlay_composition_unref);
  if (!key.lines.empty () && key.width > 0 && key.height > 0)
    priv->composition = render_lines (self, key.lines, priv->used, key.width, key.height);
  priv->cached_key = std::move (key);
  return priv->composition;
}

/* ------------------------------------------------------------------ objects */

/* The boxes of the frame's region-of-interest metas by object id (the id of an "object_id"
 * parameter, as trackers write it, else the meta's id); `any` tells whether it has any. */
static std::map<gint64, Rect>
object_boxes (GstBuffer * buf, bool *any)
{
  std::map<gint64, Rect> boxes;
  *any = false;
  gpointer state = nullptr;
  while (GstMeta * meta = gst_buffer_iterate_meta_filtered (buf, &state,
          GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *m = reinterpret_cast<GstVideoRegionOfInterestMeta *> (meta);
    *any = true;
    auto px = [] (guint v) {
      return static_cast<int> (std::min<guint> (v, G_MAXINT));
    };
    boxes.emplace (vidcls::gst::roi_object_id (m), Rect {px (m->x), px (m->y), px (m->w),
            px (m->h)});
  }
  return boxes;
}

/* A rectangle of one colour: a few pixels, scaled to the size it is drawn at. */
static GstBuffer *
solid_pixels (GstVidclsOverlayPrivate * priv, guint argb)
{
  BufferPtr & pixels = priv->solids[argb];
  if (!pixels) {
    const int n = 4;
    cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, n, n);
    cairo_t *cr = cairo_create (surface);
    cairo_set_operator (cr, CAIRO_OPERATOR_SOURCE);
    set_source_argb (cr, argb);
    cairo_paint (cr);
    cairo_destroy (cr);
    cairo_surface_flush (surface);
    pixels.reset (surface_to_buffer (surface, n, n), gst_buffer_unref);
    cairo_surface_destroy (surface);
  }
  return pixels.get ();
}

static void
add_rect (std::vector<GstVideoOverlayRectangle *> &out, GstBuffer * pixels, int x, int y,
    int w, int h)
{
  if (w > 0 && h > 0)
    out.push_back (gst_video_overlay_rectangle_new_raw (pixels, x, y, w, h,
            GST_VIDEO_OVERLAY_FORMAT_FLAG_PREMULTIPLIED_ALPHA));
}

/* One object's outline and text box at `box` (within the frame). */
static void
object_rectangles (GstVidclsOverlay * self, gint64 id, ShownObject & o, Rect box,
    std::vector<GstVideoOverlayRectangle *> &out)
{
  GstVidclsOverlayPrivate *priv = self->priv;
  const Settings & s = priv->used;
  const int fw = GST_VIDEO_INFO_WIDTH (&priv->info), fh = GST_VIDEO_INFO_HEIGHT (&priv->info);
  RenderKey key{compose_lines (self, s, o.result ? &*o.result : nullptr, id),
    priv->used_version, fw, fh};
  if (key.lines.empty ())
    return;
  const bool acting = std::any_of (key.lines.begin (), key.lines.end (),
      [&s] (const Line & l) { return l.color == s.action_color; });
  GstBuffer *solid = solid_pixels (priv, acting ? s.action_color : s.text_color);
  const int t = std::max (2, font_pixels (priv, s, fh) / 10);
  add_rect (out, solid, box.x, box.y, box.w, std::min (t, box.h));
  add_rect (out, solid, box.x, box.y + box.h - std::min (t, box.h), box.w, std::min (t, box.h));
  add_rect (out, solid, box.x, box.y, std::min (t, box.w), box.h);
  add_rect (out, solid, box.x + box.w - std::min (t, box.w), box.y, std::min (t, box.w), box.h);
  if (!o.key || !(*o.key == key)) {
    GstBuffer *pixels = render_text (self, key.lines, s, fw, fh, &o.w, &o.h);
    o.pixels = pixels != nullptr ? BufferPtr (pixels, gst_buffer_unref) : nullptr;
    o.key = std::move (key);
  }
  if (!o.pixels)
    return;
  /* above the box where the frame has room, else inside it at the top */
  const int x = std::clamp (box.x, 0, fw - o.w);
  const int y = box.y >= o.h ? box.y - o.h : std::clamp (box.y, 0, fh - o.h);
  add_rect (out, o.pixels.get (), x, y, o.w, o.h);
}

/* The rectangles of every tracked object shown on this frame. */
static std::vector<GstVideoOverlayRectangle *>
objects_on (GstVidclsOverlay * self, GstBuffer * buf)
{
  GstVidclsOverlayPrivate *priv = self->priv;
  std::vector<GstVideoOverlayRectangle *> out;
  if (priv->objects.empty () || !priv->used.show_objects)
    return out;
  const int fw = GST_VIDEO_INFO_WIDTH (&priv->info), fh = GST_VIDEO_INFO_HEIGHT (&priv->info);
  bool any_roi = false;
  const auto boxes = object_boxes (buf, &any_roi);
  for (auto & kv : priv->objects) {
    Rect box;
    auto it = boxes.find (kv.first);
    if (it != boxes.end ())
      box = it->second;
    else if (!any_roi && kv.second.result && kv.second.result->has_box ())
      box = Rect {kv.second.result->box_x, kv.second.result->box_y,
        kv.second.result->box_width, kv.second.result->box_height};
    else
      continue;                 /* not on this frame */
    /* within the frame (64-bit: boxes come from other elements and may be anything) */
    const gint64 x0 = std::clamp<gint64> (box.x, 0, fw), y0 = std::clamp<gint64> (box.y, 0, fh);
    const gint64 x1 = std::clamp<gint64> ((gint64) box.x + box.w, 0, fw);
    const gint64 y1 = std::clamp<gint64> ((gint64) box.y + box.h, 0, fh);
    if (x1 <= x0 || y1 <= y0)
      continue;
    object_rectangles (self, kv.first, kv.second, Rect {(int) x0, (int) y0, (int) (x1 - x0),
          (int) (y1 - y0)}, out);
  }
  return out;
}

static void
gst_vidcls_overlay_before_transform (GstBaseTransform * trans, GstBuffer * buf)
{
  /* controlled properties (font-size, offsets, colours, top-k) follow the stream time */
  const GstClockTime pts = GST_BUFFER_PTS (buf);
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return;
  const GstClockTime t = gst_segment_to_stream_time (&trans->segment, GST_FORMAT_TIME, pts);
  if (GST_CLOCK_TIME_IS_VALID (t))
    gst_object_sync_values (GST_OBJECT (trans), t);
}

static GstFlowReturn
draw (GstVidclsOverlay * self, GstBuffer * buf, GstVideoOverlayComposition * composition)
{
  GstVidclsOverlayPrivate *priv = self->priv;
  if (priv->attach) {
    gst_buffer_add_video_overlay_composition_meta (buf, composition);
    return GST_FLOW_OK;
  }
  GstVideoFrame frame;
  if (!gst_video_frame_map (&frame, &priv->info, buf, GST_MAP_READWRITE)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Cannot map a video frame to draw on"),
        ("buffer %" GST_PTR_FORMAT " does not match the caps", buf));
    return GST_FLOW_ERROR;
  }
  gst_video_overlay_composition_blend (composition, &frame);
  gst_video_frame_unmap (&frame);
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_vidcls_overlay_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstVidclsOverlay *self = GST_VIDCLS_OVERLAY (trans);
  GstVidclsOverlayPrivate *priv = self->priv;
  if (priv->check_downstream.exchange (false)) {
    priv->attach = downstream_draws_composition (self);
    GST_INFO_OBJECT (self, "%s", priv->attach ? "downstream draws the composition meta"
        : "drawing into the frames");
  }
  take_results_of (self, buf);
  GstVideoOverlayComposition *composition = current_composition (self);
  const std::vector<GstVideoOverlayRectangle *> objects = objects_on (self, buf);
  if (!objects.empty ()) {
    /* the frame's own text box (cached) and this frame's object rectangles */
    size_t first = 0;
    if (composition != nullptr) {
      composition = gst_video_overlay_composition_copy (composition);
    } else {
      composition = gst_video_overlay_composition_new (objects[0]);
      first = 1;
    }
    for (size_t i = first; i < objects.size (); ++i)
      gst_video_overlay_composition_add_rectangle (composition, objects[i]);
    for (GstVideoOverlayRectangle *r : objects)
      gst_video_overlay_rectangle_unref (r);
  } else if (composition != nullptr) {
    gst_video_overlay_composition_ref (composition);
  }
  if (composition == nullptr)
    return GST_FLOW_OK;
  const GstFlowReturn ret = draw (self, buf, composition);
  gst_video_overlay_composition_unref (composition);
  return ret;
}
