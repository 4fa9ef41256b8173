/**
 * SECTION:element-vidclsclipper
 * @title: vidclsclipper
 * @see_also: vividinfer, resnetvitinfer
 *
 * Cuts raw video into the clips a video classifier sees. The video passes through untouched;
 * each sampled frame is converted once into the model's input (RGB, resized, normalised, on
 * the model's device) and kept in a ring. When a clip is complete, a clip meta holding the
 * [T, C, H, W] float32 tensor, its index and its time span is attached to the buffer that
 * completed it.
 *
 * Every property left at its "from downstream" value is taken from the element downstream
 * that answers the clip-spec query (vividinfer and resnetvitinfer answer it from their
 * checkpoint), so `vidclsclipper ! vividinfer model=m.safetensors` needs no settings. Without
 * such an element, the defaults of the clip spec are used (16 frames of 224x224, every frame,
 * ImageNet mean and std) and a warning is logged; set the properties to feed another consumer.
 *
 * Frames are sampled either every frame-stride-th frame or, when sample-rate is set, on
 * timestamps: a frame is sampled when its PTS reaches the next due time, which then advances
 * by 1 / sample-rate. A frame that comes more than one period late (after a gap) is sampled
 * once and the schedule restarts from it; frames are never duplicated. Clips of T sampled
 * frames start every clip-stride sampled frames.
 *
 * A caps change of frame size or format, a flush (seek) and a change of a clip property
 * reset the element: the incomplete clip is dropped, clip and sample indices restart at 0 and
 * the clip meta's epoch changes. At end of stream, eos-policy decides what happens to the
 * sampled frames that no complete clip covers; a clip made of them is sent downstream before
 * EOS in the "vidcls-eos-clip" event.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 filesrc location=video.mp4 ! decodebin ! videoconvert ! \
 *     vidclsclipper ! vividinfer model=m.safetensors ! fakesink
 * ]| Classify a file; the clipper learns everything from the model.
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=90 ! video/x-raw,format=I420,framerate=30/1 ! \
 *     vidclsclipper clip-length=8 sample-rate=10 width=112 height=112 ! fakesink
 * ]| Cut 8-frame clips of 112x112 sampled at 10 frames per second, without a model.
 */
#include "gstvidclsclipper.h"

#include <gst/video/video.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <torch/cuda.h>
#include <torch/types.h>

#include "gstvidclsanalytics.h"
#include "gstvidclsclip.h"
#include "gstvidclsproperties.h"
#include "gstvidclsroi.h"
#include "gstvidclsyuv.h"
#include "vidcls/clip_sampling.h"
#include "vidcls/clip_spec.h"
#include "vidcls/device.h"
#include "vidcls/errors.h"
#include "vidcls/object_clipper.h"
#include "vidcls/runtime.h"

GST_DEBUG_CATEGORY_STATIC (gst_vidcls_clipper_debug);
#define GST_CAT_DEFAULT gst_vidcls_clipper_debug

#define DEFAULT_CLIP_LENGTH 0
#define DEFAULT_FRAME_STRIDE 0
#define DEFAULT_SAMPLE_RATE -1.0
#define DEFAULT_CLIP_STRIDE 0
#define DEFAULT_WIDTH 0
#define DEFAULT_HEIGHT 0
#define DEFAULT_RESIZE GST_VIDCLS_CLIPPER_RESIZE_AUTO
#define DEFAULT_DEVICE "auto"
/* pad: a video shorter than one clip still gets a result, from frames that really are in it */
#define DEFAULT_EOS_POLICY GST_VIDCLS_CLIPPER_EOS_PAD
#define DEFAULT_SILENT TRUE
#define DEFAULT_REGION GST_VIDCLS_CLIPPER_REGION_FULL_FRAME
#define DEFAULT_OBJECT_CLASS NULL
#define DEFAULT_MIN_OBJECT_SIZE 0
#define DEFAULT_MAX_OBJECTS 16
#define DEFAULT_OBJECT_HOLD GST_SECOND
#define DEFAULT_OBJECT_TIMEOUT (2 * GST_SECOND)

#define MAX_CLIP_LENGTH 4096
#define MAX_SIZE 16384

enum
{
  PROP_0,
  PROP_CLIP_LENGTH,
  PROP_FRAME_STRIDE,
  PROP_SAMPLE_RATE,
  PROP_CLIP_STRIDE,
  PROP_WIDTH,
  PROP_HEIGHT,
  PROP_RESIZE,
  PROP_DEVICE,
  PROP_EOS_POLICY,
  PROP_SILENT,
  PROP_FRAMES_IN,
  PROP_FRAMES_SAMPLED,
  PROP_CLIPS_OUT,
  PROP_REGION,
  PROP_OBJECT_CLASS,
  PROP_MIN_OBJECT_SIZE,
  PROP_MAX_OBJECTS,
  PROP_OBJECT_HOLD,
  PROP_OBJECT_TIMEOUT,
  PROP_OBJECT_STATS,
  N_PROPERTIES
};

static GParamSpec *properties[N_PROPERTIES];

#define VIDEO_CAPS \
  GST_VIDEO_CAPS_MAKE ("{ RGB, RGBA, RGBx, BGR, BGRx, BGRA, xRGB, ARGB, xBGR, ABGR, I420, YV12, " \
      "NV12, NV21, Y42B, Y444, Y41B, YUY2, UYVY, YVYU, GRAY8, I420_10LE, P010_10LE }")

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS (VIDEO_CAPS));

namespace {

/* Property values as the user set them; 0 / -1 / auto mean "from downstream". */
struct Settings {
  guint clip_length = DEFAULT_CLIP_LENGTH;
  guint frame_stride = DEFAULT_FRAME_STRIDE;
  gdouble sample_rate = DEFAULT_SAMPLE_RATE;
  guint clip_stride = DEFAULT_CLIP_STRIDE;
  guint width = DEFAULT_WIDTH;
  guint height = DEFAULT_HEIGHT;
  GstVidclsClipperResize resize = DEFAULT_RESIZE;
  std::string device = DEFAULT_DEVICE;
  GstVidclsClipperEosPolicy eos_policy = DEFAULT_EOS_POLICY;
  gboolean silent = DEFAULT_SILENT;
  GstVidclsClipperRegion region = DEFAULT_REGION;
  std::vector<std::string> object_classes;      /* empty: every type */
  guint min_object_size = DEFAULT_MIN_OBJECT_SIZE;
  guint max_objects = DEFAULT_MAX_OBJECTS;
  guint64 object_hold = DEFAULT_OBJECT_HOLD;
  guint64 object_timeout = DEFAULT_OBJECT_TIMEOUT;
};

/* Downstream's answer to the clip-spec query. */
struct Answer {
  bool valid = false;
  vidcls::ClipSpec spec;
  std::string device;
  std::string model;
};

/* gst_video_frame_map / unmap as a scope. */
class MappedFrame
{
public:
  MappedFrame (GstVideoInfo * info, GstBuffer * buffer, GstMapFlags flags)
  {
    mapped_ = gst_video_frame_map (&frame_, info, buffer, flags);
  }
  ~MappedFrame ()
  {
    if (mapped_)
      gst_video_frame_unmap (&frame_);
  }
  MappedFrame (const MappedFrame &) = delete;
  MappedFrame & operator= (const MappedFrame &) = delete;

  bool ok () const { return mapped_; }
  GstVideoFrame *get () { return &frame_; }

private:
  GstVideoFrame frame_;
  bool mapped_ = false;
};

bool
same_clip_shape (const vidcls::ClipSpec & a, const vidcls::ClipSpec & b)
{
  return a.frames == b.frames && a.width == b.width && a.height == b.height;
}

}  // namespace

struct GstVidclsClipperPrivate {
  std::mutex lock;              /* guards settings and fresh_answer */
  Settings settings;
  std::atomic<bool> settings_changed{false};
  /* downstream's answer asked again when its model changed, for the streaming thread to take */
  std::optional<Answer> fresh_answer;

  std::atomic<guint64> frames_in{0};
  std::atomic<guint64> frames_sampled{0};
  std::atomic<guint64> clips_out{0};

  /* The rest belongs to the streaming thread (set_caps, transform_ip, sink_event), and to
   * start() / stop() while it does not run. */
  bool configured = false;
  GstVideoInfo in_info;
  Answer answer;
  vidcls::ClipSpec spec;
  torch::Device device{torch::kCPU};

  /* Frame -> RGB uint8: packed RGB formats are read in place, with `channels` (the byte
   * offsets of R, G and B in a pixel, on the device) reordering them; the others go through
   * `converter` into `rgb_scratch`. */
  GstVideoConverter *converter = nullptr;
  GstVideoInfo rgb_info;
  GstBuffer *rgb_scratch = nullptr;
  torch::Tensor channels;
  bool rgb_in_order = false;
  /* Or, on a GPU, 4:2:0 frames uploaded as they are and converted there. */
  vidcls::gst::Yuv420Layout yuv;
  bool yuv_on_device = false;

  /* T slots [T, 3, H, W]: sampled frame i is converted once, into slot i % T. A finished clip
   * is copied out of the ring (one copy of T slots, in order): whoever takes it may keep it,
   * on another thread, while the ring moves on. (A ring of 2T slots with every frame written
   * twice makes each window one contiguous view, but a view into a ring that keeps changing
   * cannot be handed out, so the clip would be copied anyway.) */
  torch::Tensor ring;

  vidcls::FrameSampler sampler;
  vidcls::ClipCutter cutter;    /* clip records: indices, epochs, time spans */

  /* inference-region=roi-list: a ring per tracked object instead of `ring` */
  bool per_object = false;
  std::vector<std::string> object_classes;
  guint min_object_size = 0;
  vidcls::ObjectClipper objects;
  std::mutex objects_lock;      /* guards `objects` for the object-stats reader */
};

struct _GstVidclsClipper
{
  GstBaseTransform parent;
  GstVidclsClipperPrivate *priv;
};

#define gst_vidcls_clipper_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE (GstVidclsClipper, gst_vidcls_clipper, GST_TYPE_BASE_TRANSFORM,
    GST_DEBUG_CATEGORY_INIT (gst_vidcls_clipper_debug, "vidclsclipper", 0,
        "vidcls clip sampler"));
GST_ELEMENT_REGISTER_DEFINE (vidclsclipper, "vidclsclipper", GST_RANK_NONE,
    GST_TYPE_VIDCLS_CLIPPER);

GType
gst_vidcls_clipper_resize_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_CLIPPER_RESIZE_AUTO, "As the model downstream was trained (crop if none)",
        "auto"},
    {GST_VIDCLS_CLIPPER_RESIZE_CROP, "Scale the short side, then crop the centre", "crop"},
    {GST_VIDCLS_CLIPPER_RESIZE_LETTERBOX, "Scale to fit, pad with the mean colour",
        "letterbox"},
    {GST_VIDCLS_CLIPPER_RESIZE_STRETCH, "Scale each axis on its own", "stretch"},
    {0, nullptr, nullptr},
  };
  return vidcls::gst::enum_type_once (&type, "GstVidclsClipperResize", values);
}

GType
gst_vidcls_clipper_eos_policy_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_CLIPPER_EOS_DROP, "Drop frames that do not fill a clip", "drop"},
    {GST_VIDCLS_CLIPPER_EOS_PAD, "Fill the last clip up with its last frame", "pad"},
    {GST_VIDCLS_CLIPPER_EOS_PARTIAL, "Send the last clip with the frames it has", "partial"},
    {0, nullptr, nullptr},
  };
  return vidcls::gst::enum_type_once (&type, "GstVidclsClipperEosPolicy", values);
}

GType
gst_vidcls_clipper_region_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_CLIPPER_REGION_FULL_FRAME, "Clips of whole frames", "full-frame"},
    {GST_VIDCLS_CLIPPER_REGION_ROI_LIST, "Clips of each tracked object's region of interest",
        "roi-list"},
    {0, nullptr, nullptr},
  };
  return vidcls::gst::enum_type_once (&type, "GstVidclsClipperRegion", values);
}

/* The properties of per-object clips (inference-region=roi-list). */
static void
make_object_properties (void)
{
  const auto ready = static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_READY);
  properties[PROP_REGION] = g_param_spec_enum ("inference-region", "Inference region",
      "full-frame: clips of whole frames; roi-list: clips of each tracked object, cut around "
      "the boxes of the frames' region-of-interest metas by the clip spec's object rule (the "
      "object is the meta's id, or the id of its 'object_id' parameter as DL Streamer's "
      "gvatrack writes it), and on GStreamer 1.24+ of the GstAnalyticsODMtd boxes a "
      "GstAnalyticsTrackingMtd is related to (the object is the track's id)",
      GST_TYPE_VIDCLS_CLIPPER_REGION, DEFAULT_REGION, ready);
  properties[PROP_OBJECT_CLASS] = g_param_spec_string ("object-class", "Object class",
      "roi-list: comma-separated types of the region-of-interest metas (or ODMtds) to clip "
      "(e.g. person); unset: every type", DEFAULT_OBJECT_CLASS, ready);
  properties[PROP_MIN_OBJECT_SIZE] = g_param_spec_uint ("min-object-size", "Min object size",
      "roi-list: boxes narrower or lower than this many pixels are left out", 0, G_MAXINT,
      DEFAULT_MIN_OBJECT_SIZE, ready);
  properties[PROP_MAX_OBJECTS] = g_param_spec_uint ("max-objects", "Max objects",
      "roi-list: most objects followed at once (a clip ring each); a new one beyond ends the "
      "object seen longest ago, or is left out when all were on the frame (see object-stats)",
      1, 4096, DEFAULT_MAX_OBJECTS, ready);
  properties[PROP_OBJECT_HOLD] = g_param_spec_uint64 ("object-hold", "Object hold",
      "roi-list: nanoseconds; a sampled frame without an object's box takes its last box if "
      "the object was seen at most this long before", 0, G_MAXUINT64, DEFAULT_OBJECT_HOLD,
      ready);
  properties[PROP_OBJECT_TIMEOUT] = g_param_spec_uint64 ("object-timeout", "Object timeout",
      "roi-list: nanoseconds; an object not seen this long is let go, its leftover frames "
      "handled as at end of stream (eos-policy)", 0, G_MAXUINT64, DEFAULT_OBJECT_TIMEOUT,
      ready);
  properties[PROP_OBJECT_STATS] = vidcls::gst::stats_param_spec ("roi-list "
      "(vidcls-clipper-objects): tracks (followed now), started, ended (not seen for "
      "object-timeout), dropped (ended for a new one: max-objects), refused (new ones left "
      "out: max-objects), clips", "object-stats");
}

static void gst_vidcls_clipper_finalize (GObject * object);
static void gst_vidcls_clipper_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_vidcls_clipper_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static gboolean gst_vidcls_clipper_start (GstBaseTransform * trans);
static gboolean gst_vidcls_clipper_stop (GstBaseTransform * trans);
static gboolean gst_vidcls_clipper_set_caps (GstBaseTransform * trans, GstCaps * incaps,
    GstCaps * outcaps);
static gboolean gst_vidcls_clipper_sink_event (GstBaseTransform * trans, GstEvent * event);
static gboolean gst_vidcls_clipper_src_event (GstBaseTransform * trans, GstEvent * event);
static GstFlowReturn gst_vidcls_clipper_transform_ip (GstBaseTransform * trans,
    GstBuffer * buf);

static void
gst_vidcls_clipper_class_init (GstVidclsClipperClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  gobject_class->finalize = gst_vidcls_clipper_finalize;
  gobject_class->set_property = gst_vidcls_clipper_set_property;
  gobject_class->get_property = gst_vidcls_clipper_get_property;

  const auto rw = static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
      | GST_PARAM_MUTABLE_PLAYING);

  properties[PROP_CLIP_LENGTH] = g_param_spec_uint ("clip-length", "Clip length",
      "Sampled frames per clip (T); 0 = from the model downstream, else 16. "
      "A change while playing resets the clipper", 0, MAX_CLIP_LENGTH, DEFAULT_CLIP_LENGTH, rw);
  properties[PROP_FRAME_STRIDE] = g_param_spec_uint ("frame-stride", "Frame stride",
      "Sample every k-th frame, counted from the first frame after a reset; used when "
      "sample-rate is 0 (setting it with sample-rate left at -1 selects counting). "
      "0 = from the model downstream, else 1", 0, G_MAXINT, DEFAULT_FRAME_STRIDE, rw);
  properties[PROP_SAMPLE_RATE] = g_param_spec_double ("sample-rate", "Sample rate",
      "Frames per second to sample, on timestamps (frames are never duplicated); "
      "0 = count frames with frame-stride; -1 = from the model downstream, else 0",
      -1.0, G_MAXDOUBLE, DEFAULT_SAMPLE_RATE, rw);
  properties[PROP_CLIP_STRIDE] = g_param_spec_uint ("clip-stride", "Clip stride",
      "Sampled frames between the starts of consecutive clips (the hop; < clip-length "
      "overlaps clips); 0 = from the model downstream, else clip-length",
      0, G_MAXINT, DEFAULT_CLIP_STRIDE, rw);
  properties[PROP_WIDTH] = g_param_spec_uint ("width", "Width",
      "Width of the model input in pixels; 0 = from the model downstream, else 224",
      0, MAX_SIZE, DEFAULT_WIDTH, rw);
  properties[PROP_HEIGHT] = g_param_spec_uint ("height", "Height",
      "Height of the model input in pixels; 0 = from the model downstream, else 224",
      0, MAX_SIZE, DEFAULT_HEIGHT, rw);
  properties[PROP_RESIZE] = g_param_spec_enum ("resize", "Resize",
      "How a frame is brought to width x height; auto = from the model downstream, else crop",
      GST_TYPE_VIDCLS_CLIPPER_RESIZE, DEFAULT_RESIZE, rw);
  properties[PROP_DEVICE] = g_param_spec_string ("device", "Device",
      "Where clips are built and kept: cpu, cuda or cuda:N; auto = the model's device as "
      "downstream reports it, else cpu. Read when the element starts and on caps changes",
      DEFAULT_DEVICE, static_cast<GParamFlags> (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS
          | GST_PARAM_MUTABLE_READY));
  properties[PROP_EOS_POLICY] = g_param_spec_enum ("eos-policy", "EOS policy",
      "At end of stream, what to do with sampled frames that no complete clip covers: drop "
      "them, pad a clip with the last frame, or send the partial clip (fewer than T frames)",
      GST_TYPE_VIDCLS_CLIPPER_EOS_POLICY, DEFAULT_EOS_POLICY, rw);
  properties[PROP_SILENT] = vidcls::gst::silent_param_spec ("counters (notify::frames-in, "
      "...)");
  properties[PROP_FRAMES_IN] = vidcls::gst::counter_param_spec ("frames-in", "Frames in",
      "Frames received since the element started");
  properties[PROP_FRAMES_SAMPLED] = vidcls::gst::counter_param_spec ("frames-sampled",
      "Frames sampled", "Frames sampled since the element started");
  properties[PROP_CLIPS_OUT] = vidcls::gst::counter_param_spec ("clips-out", "Clips out",
      "Clips sent since the element started, end-of-stream clips included");
  make_object_properties ();
  g_object_class_install_properties (gobject_class, N_PROPERTIES, properties);

  gst_element_class_set_static_metadata (element_class, "Video clip sampler",
      "Filter/Video", "Samples frames into clip tensors for a video classifier, passing the "
      "video through untouched", "vidcls developers");
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_vidcls_clipper_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_vidcls_clipper_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_vidcls_clipper_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_vidcls_clipper_sink_event);
  trans_class->src_event = GST_DEBUG_FUNCPTR (gst_vidcls_clipper_src_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_vidcls_clipper_transform_ip);
  /* The pixels are never written, but the clip meta is: staying out of passthrough makes the
   * base class hand transform_ip a writable buffer (a shallow copy sharing the memory when
   * the input is not writable). */
  trans_class->passthrough_on_same_caps = FALSE;
  trans_class->transform_ip_on_passthrough = FALSE;

}

static void
gst_vidcls_clipper_init (GstVidclsClipper * self)
{
  self->priv = new GstVidclsClipperPrivate ();
  gst_video_info_init (&self->priv->in_info);
  gst_video_info_init (&self->priv->rgb_info);
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), FALSE);
}

static void
release_resources (GstVidclsClipperPrivate * priv)
{
  g_clear_pointer (&priv->converter, gst_video_converter_free);
  gst_clear_buffer (&priv->rgb_scratch);
  priv->channels = torch::Tensor ();
  priv->ring = torch::Tensor ();
  priv->configured = false;
  std::lock_guard<std::mutex> g (priv->objects_lock);
  priv->objects.reset ();
}

static void
gst_vidcls_clipper_finalize (GObject * object)
{
  GstVidclsClipper *self = GST_VIDCLS_CLIPPER (object);

  release_resources (self->priv);
  delete self->priv;
  self->priv = nullptr;

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_vidcls_clipper_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  GstVidclsClipperPrivate *priv = GST_VIDCLS_CLIPPER (object)->priv;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    Settings & s = priv->settings;
    switch (prop_id) {
      case PROP_CLIP_LENGTH:
        s.clip_length = g_value_get_uint (value);
        break;
      case PROP_FRAME_STRIDE:
        s.frame_stride = g_value_get_uint (value);
        break;
      case PROP_SAMPLE_RATE:
        s.sample_rate = g_value_get_double (value);
        break;
      case PROP_CLIP_STRIDE:
        s.clip_stride = g_value_get_uint (value);
        break;
      case PROP_WIDTH:
        s.width = g_value_get_uint (value);
        break;
      case PROP_HEIGHT:
        s.height = g_value_get_uint (value);
        break;
      case PROP_RESIZE:
        s.resize = static_cast<GstVidclsClipperResize> (g_value_get_enum (value));
        break;
      case PROP_DEVICE:{
        const gchar *device = g_value_get_string (value);
        s.device = device ? device : DEFAULT_DEVICE;
        return;                 /* taken at the next start or caps change */
      }
      case PROP_EOS_POLICY:
        s.eos_policy = static_cast<GstVidclsClipperEosPolicy> (g_value_get_enum (value));
        return;                 /* read at EOS */
      case PROP_SILENT:
        s.silent = g_value_get_boolean (value);
        return;
      case PROP_REGION:
        s.region = static_cast<GstVidclsClipperRegion> (g_value_get_enum (value));
        return;                 /* taken at the next caps */
      case PROP_OBJECT_CLASS:{
        s.object_classes.clear ();
        const gchar *v = g_value_get_string (value);
        gchar **names = g_strsplit (v ? v : "", ",", -1);
        for (gchar **n = names; *n; ++n) {
          g_strstrip (*n);
          if (**n)
            s.object_classes.push_back (*n);
        }
        g_strfreev (names);
        return;
      }
      case PROP_MIN_OBJECT_SIZE:
        s.min_object_size = g_value_get_uint (value);
        return;
      case PROP_MAX_OBJECTS:
        s.max_objects = g_value_get_uint (value);
        return;
      case PROP_OBJECT_HOLD:
        s.object_hold = g_value_get_uint64 (value);
        return;
      case PROP_OBJECT_TIMEOUT:
        s.object_timeout = g_value_get_uint64 (value);
        return;
      default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
        return;
    }
  }
  priv->settings_changed = true;
}

static void
gst_vidcls_clipper_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstVidclsClipperPrivate *priv = GST_VIDCLS_CLIPPER (object)->priv;
  std::lock_guard<std::mutex> guard (priv->lock);
  const Settings & s = priv->settings;
  switch (prop_id) {
    case PROP_CLIP_LENGTH:
      g_value_set_uint (value, s.clip_length);
      break;
    case PROP_FRAME_STRIDE:
      g_value_set_uint (value, s.frame_stride);
      break;
    case PROP_SAMPLE_RATE:
      g_value_set_double (value, s.sample_rate);
      break;
    case PROP_CLIP_STRIDE:
      g_value_set_uint (value, s.clip_stride);
      break;
    case PROP_WIDTH:
      g_value_set_uint (value, s.width);
      break;
    case PROP_HEIGHT:
      g_value_set_uint (value, s.height);
      break;
    case PROP_RESIZE:
      g_value_set_enum (value, s.resize);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, s.device.c_str ());
      break;
    case PROP_EOS_POLICY:
      g_value_set_enum (value, s.eos_policy);
      break;
    case PROP_SILENT:
      g_value_set_boolean (value, s.silent);
      break;
    case PROP_FRAMES_IN:
      g_value_set_uint64 (value, priv->frames_in);
      break;
    case PROP_FRAMES_SAMPLED:
      g_value_set_uint64 (value, priv->frames_sampled);
      break;
    case PROP_CLIPS_OUT:
      g_value_set_uint64 (value, priv->clips_out);
      break;
    case PROP_REGION:
      g_value_set_enum (value, s.region);
      break;
    case PROP_OBJECT_CLASS:{
      std::string joined;
      for (const auto &c : s.object_classes)
        joined += (joined.empty ()? "" : ",") + c;
      g_value_set_string (value, joined.empty ()? nullptr : joined.c_str ());
      break;
    }
    case PROP_MIN_OBJECT_SIZE:
      g_value_set_uint (value, s.min_object_size);
      break;
    case PROP_MAX_OBJECTS:
      g_value_set_uint (value, s.max_objects);
      break;
    case PROP_OBJECT_HOLD:
      g_value_set_uint64 (value, s.object_hold);
      break;
    case PROP_OBJECT_TIMEOUT:
      g_value_set_uint64 (value, s.object_timeout);
      break;
    case PROP_OBJECT_STATS:{
      vidcls::ObjectClipper::Stats st;
      {
        std::lock_guard<std::mutex> g (priv->objects_lock);
        st = priv->objects.stats ();
      }
      g_value_take_boxed (value, gst_structure_new ("vidcls-clipper-objects",
              "tracks", G_TYPE_UINT64, (guint64) st.tracks,
              "started", G_TYPE_UINT64, (guint64) st.started,
              "ended", G_TYPE_UINT64, (guint64) st.ended,
              "dropped", G_TYPE_UINT64, (guint64) st.dropped,
              "refused", G_TYPE_UINT64, (guint64) st.refused,
              "clips", G_TYPE_UINT64, (guint64) st.clips, nullptr));
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

/* The clip spec in force: each property at its "from downstream" value takes downstream's
 * answer, or the ClipSpec default when nobody answered (listed in `defaulted`). */
static vidcls::ClipSpec
resolve_spec (const Settings & s, const Answer & answer, std::string * defaulted)
{
  vidcls::ClipSpec spec = answer.valid ? answer.spec : vidcls::ClipSpec ();
  auto from_downstream = [&](const char *name) {
    if (!answer.valid && defaulted) {
      if (!defaulted->empty ())
        defaulted->append (", ");
      defaulted->append (name);
    }
  };

  if (s.clip_length > 0)
    spec.frames = static_cast<int> (s.clip_length);
  else
    from_downstream ("clip-length");

  if (s.sample_rate >= 0) {
    spec.sample_rate = s.sample_rate;
    if (s.frame_stride > 0)
      spec.frame_stride = static_cast<int> (s.frame_stride);
    else if (s.sample_rate == 0)
      from_downstream ("frame-stride");
  } else if (s.frame_stride > 0) {
    /* An explicit stride asks for counting frames, whatever rate the model was trained at. */
    spec.frame_stride = static_cast<int> (s.frame_stride);
    spec.sample_rate = 0;
  } else {
    from_downstream ("frame-stride/sample-rate");
  }

  if (s.clip_stride > 0)
    spec.hop = static_cast<int> (s.clip_stride);
  else if (!answer.valid)
    spec.hop = spec.frames;     /* without a model, consecutive clips neither overlap nor skip */

  /* A checkpoint's crop short side belongs to its size; an explicit size takes the default. */
  if (s.width > 0) {
    spec.width = static_cast<int> (s.width);
    spec.short_side = 0;
    spec.resize_width = spec.resize_height = 0;
  } else {
    from_downstream ("width");
  }
  if (s.height > 0) {
    spec.height = static_cast<int> (s.height);
    spec.short_side = 0;
    spec.resize_width = spec.resize_height = 0;
  } else {
    from_downstream ("height");
  }

  switch (s.resize) {
    case GST_VIDCLS_CLIPPER_RESIZE_CROP:
      spec.resize = vidcls::ResizeMode::kCrop;
      break;
    case GST_VIDCLS_CLIPPER_RESIZE_LETTERBOX:
      spec.resize = vidcls::ResizeMode::kLetterbox;
      break;
    case GST_VIDCLS_CLIPPER_RESIZE_STRETCH:
      spec.resize = vidcls::ResizeMode::kStretch;
      break;
    case GST_VIDCLS_CLIPPER_RESIZE_AUTO:
      from_downstream ("resize");
      break;
  }
  return spec;
}

/* Parses and checks a device name; posts an error and returns false when it cannot be used. */
static bool
resolve_device (GstVidclsClipper * self, const std::string & name, torch::Device * device)
{
  try {
    *device = vidcls::parse_device (name, false);
    return true;
  } catch (const vidcls::DeviceError & e) {
    if (e.kind () == vidcls::DeviceError::Kind::kUnavailable)
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", e.what ()), (nullptr));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", e.what ()), (nullptr));
  }
  return false;
}

static void
reset_clips (GstVidclsClipper * self, const char *why)
{
  GstVidclsClipperPrivate *priv = self->priv;
  const guint64 sampled = priv->cutter.sampled ();
  priv->cutter.reset ();
  priv->sampler.reset ();
  {
    std::lock_guard<std::mutex> g (priv->objects_lock);
    priv->objects.reset ();
  }
  GST_INFO_OBJECT (self, "reset (%s) after %" G_GUINT64_FORMAT " sampled frames, epoch %"
      G_GUINT64_FORMAT, why, sampled, priv->cutter.epoch ());
}

/* roi-list: the object clipper for the clip spec in force (its tracks start over). */
static void
configure_objects (GstVidclsClipperPrivate * priv, const Settings & s)
{
  priv->per_object = s.region == GST_VIDCLS_CLIPPER_REGION_ROI_LIST;
  priv->object_classes = s.object_classes;
  priv->min_object_size = s.min_object_size;
  vidcls::ObjectClipper::Settings os;
  os.spec = priv->spec;
  os.eos = s.eos_policy == GST_VIDCLS_CLIPPER_EOS_DROP ? vidcls::EosPolicy::kDrop
      : s.eos_policy == GST_VIDCLS_CLIPPER_EOS_PAD ? vidcls::EosPolicy::kPad
      : vidcls::EosPolicy::kPartial;
  os.hold_ns = s.object_hold;
  os.timeout_ns = s.object_timeout;
  os.max_objects = s.max_objects;
  os.device = priv->device;
  std::lock_guard<std::mutex> g (priv->objects_lock);
  priv->objects.configure (os, priv->cutter.stream ());
}

static void
configure_sampler (GstVidclsClipperPrivate * priv)
{
  priv->sampler.configure (priv->spec, GST_VIDEO_INFO_FPS_N (&priv->in_info),
      GST_VIDEO_INFO_FPS_D (&priv->in_info));
}

static void
allocate_ring (GstVidclsClipperPrivate * priv)
{
  const vidcls::ClipSpec & spec = priv->spec;
  priv->ring = torch::empty ({spec.frames, 3, spec.height, spec.width},
      torch::TensorOptions ().dtype (torch::kFloat32).device (priv->device));
}

/* How frames of `priv->in_info` become RGB: in place for packed 8-bit RGB, else through the
 * converter videoconvert would use for `videoconvert ! video/x-raw,format=RGB` (same options
 * as its defaults), so training's decoded frames and ours are the same pixels. */
static bool
setup_rgb (GstVidclsClipper * self)
{
  GstVidclsClipperPrivate *priv = self->priv;
  const GstVideoFormatInfo *finfo = priv->in_info.finfo;

  g_clear_pointer (&priv->converter, gst_video_converter_free);
  gst_clear_buffer (&priv->rgb_scratch);

  std::vector<int64_t> offsets = {0, 1, 2};
  /* On a GPU, 4:2:0 frames go up as they are and become RGB there. */
  priv->yuv = vidcls::gst::yuv420_layout (&priv->in_info);
  priv->yuv_on_device = priv->yuv.supported && !priv->device.is_cpu ();
  if (priv->yuv_on_device) {
    GST_INFO_OBJECT (self, "%s frames are converted to RGB on %s",
        GST_VIDEO_INFO_NAME (&priv->in_info), priv->device.str ().c_str ());
  } else if (GST_VIDEO_FORMAT_INFO_IS_RGB (finfo) && GST_VIDEO_FORMAT_INFO_N_PLANES (finfo) == 1
      && GST_VIDEO_FORMAT_INFO_BITS (finfo) == 8) {
    for (int c = 0; c < 3; c++)
      offsets[c] = GST_VIDEO_FORMAT_INFO_POFFSET (finfo, GST_VIDEO_COMP_R + c);
    priv->rgb_in_order = offsets[0] == 0 && offsets[1] == 1 && offsets[2] == 2;
  } else {
    vidcls::gst::rgb_info_like (&priv->in_info, &priv->rgb_info);
    GstStructure *config = vidcls::gst::rgb_converter_config ();
    priv->converter = gst_video_converter_new (&priv->in_info, &priv->rgb_info, config);
    if (priv->converter == nullptr) {
      GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (nullptr),
          ("cannot convert %s to RGB", GST_VIDEO_INFO_NAME (&priv->in_info)));
      return false;
    }
    priv->rgb_scratch = gst_buffer_new_allocate (nullptr, GST_VIDEO_INFO_SIZE (&priv->rgb_info),
        nullptr);
    priv->rgb_in_order = true;
  }
  priv->channels = torch::tensor (offsets, torch::kLong).to (priv->device);
  return true;
}

static gboolean
gst_vidcls_clipper_start (GstBaseTransform * trans)
{
  GstVidclsClipper *self = GST_VIDCLS_CLIPPER (trans);
  GstVidclsClipperPrivate *priv = self->priv;

  std::string device_name;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    device_name = priv->settings.device;
  }
  try {
    vidcls::configure_runtime ();
    vidcls::share_malloc_arena ();
    /* An explicit device fails here, before any data flows; "auto" is checked on caps. */
    torch::Device device (torch::kCPU);
    if (device_name != "auto" && !resolve_device (self, device_name, &device))
      return FALSE;
  } catch (const std::exception & e) {
    GST_ELEMENT_ERROR (self, LIBRARY, INIT, ("Could not set up LibTorch."), ("%s",
            vidcls::error_message (e).c_str ()));
    return FALSE;
  }

  priv->frames_in = 0;
  priv->frames_sampled = 0;
  priv->clips_out = 0;
  priv->configured = false;
  priv->cutter.restart ();
  priv->sampler.reset ();
  return TRUE;
}

static gboolean
gst_vidcls_clipper_stop (GstBaseTransform * trans)
{
  GstVidclsClipper *self = GST_VIDCLS_CLIPPER (trans);
  release_resources (self->priv);
  gst_video_info_init (&self->priv->in_info);
  return TRUE;
}

static gboolean
gst_vidcls_clipper_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  GstVidclsClipper *self = GST_VIDCLS_CLIPPER (trans);
  GstVidclsClipperPrivate *priv = self->priv;

  GstVideoInfo info;
  if (!gst_video_info_from_caps (&info, incaps)) {
    GST_ERROR_OBJECT (self, "invalid caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }

  Answer answer;
  GstQuery *query = vidcls::gst::clip_spec_query_new ();
  if (gst_pad_peer_query (GST_BASE_TRANSFORM_SRC_PAD (trans), query)) {
    answer.valid = vidcls::gst::clip_spec_query_parse (query, answer.spec, answer.device,
        answer.model);
  }
  gst_query_unref (query);

  Settings settings;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    settings = priv->settings;
    priv->settings_changed = false;
  }

  try {
    std::string defaulted;
    vidcls::ClipSpec spec = resolve_spec (settings, answer, &defaulted);
    try {
      spec.validate ();
    } catch (const std::invalid_argument & e) {
      GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("Invalid clip settings: %s", e.what ()),
          (nullptr));
      return FALSE;
    }
    if (answer.valid) {
      GST_INFO_OBJECT (self, "clip spec from downstream (model '%s', device %s)",
          answer.model.c_str (), answer.device.c_str ());
    } else if (!defaulted.empty ()) {
      GST_WARNING_OBJECT (self, "no element downstream answered the clip-spec query; "
          "defaults used for %s", defaulted.c_str ());
    }

    const std::string device_name = settings.device != "auto" ? settings.device
        : answer.valid ? answer.device : "cpu";
    torch::Device device (torch::kCPU);
    if (!resolve_device (self, device_name, &device))
      return FALSE;

    const bool geometry_changed = !priv->configured
        || GST_VIDEO_INFO_FORMAT (&info) != GST_VIDEO_INFO_FORMAT (&priv->in_info)
        || GST_VIDEO_INFO_WIDTH (&info) != GST_VIDEO_INFO_WIDTH (&priv->in_info)
        || GST_VIDEO_INFO_HEIGHT (&info) != GST_VIDEO_INFO_HEIGHT (&priv->in_info);
    const bool spec_changed = !priv->configured
        || !vidcls::same_clip_spec (spec, priv->spec)
        || device != priv->device;
    const bool was_configured = priv->configured;

    priv->configured = false;   /* until everything below is in place */
    priv->in_info = info;
    priv->answer = answer;
    if (spec_changed) {
      const bool realloc = !priv->ring.defined () || !same_clip_shape (spec, priv->spec)
          || device != priv->device;
      priv->spec = spec;
      priv->device = device;
      if (realloc)
        allocate_ring (priv);
    }
    if ((geometry_changed || spec_changed) && !setup_rgb (self))
      return FALSE;
    configure_sampler (priv);
    if (spec_changed)
      priv->cutter.configure (spec.frames, spec.hop);
    if (was_configured && (geometry_changed || spec_changed))
      reset_clips (self, geometry_changed ? "caps changed" : "clip spec changed");
    if (!was_configured || geometry_changed || spec_changed)
      configure_objects (priv, settings);
    priv->configured = true;

    GST_INFO_OBJECT (self, "%s %dx%d -> clips of %d x %dx%d (%s), %s %g, hop %d, on %s",
        GST_VIDEO_INFO_NAME (&info), GST_VIDEO_INFO_WIDTH (&info),
        GST_VIDEO_INFO_HEIGHT (&info), spec.frames, spec.width, spec.height,
        vidcls::to_string (spec.resize).c_str (),
        spec.sample_rate > 0 ? "sampled at fps" : "frame stride",
        spec.sample_rate > 0 ? spec.sample_rate : spec.frame_stride, spec.hop,
        device.str ().c_str ());
  } catch (const std::exception & e) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Could not set up the clip ring."), ("%s",
            vidcls::error_message (e).c_str ()));
    return FALSE;
  }
  return TRUE;
}

/* Takes a property change made while streaming: a different clip spec resets the clipper.
 * Returns false, with an error posted, when the new settings are invalid. */
static bool
apply_settings_change (GstVidclsClipper * self)
{
  GstVidclsClipperPrivate *priv = self->priv;
  if (!priv->settings_changed.exchange (false))
    return true;

  Settings settings;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    settings = priv->settings;
    if (priv->fresh_answer) {
      priv->answer = *priv->fresh_answer;
      priv->fresh_answer.reset ();
    }
  }
  vidcls::ClipSpec spec = resolve_spec (settings, priv->answer, nullptr);
  try {
    spec.validate ();
  } catch (const std::invalid_argument & e) {
    GST_ELEMENT_ERROR (self, LIBRARY, SETTINGS, ("Invalid clip settings: %s", e.what ()),
        (nullptr));
    return false;
  }
  if (vidcls::same_clip_spec (spec, priv->spec))
    return true;

  const bool realloc = !same_clip_shape (spec, priv->spec);
  priv->spec = spec;
  if (realloc)
    allocate_ring (priv);
  configure_sampler (priv);
  priv->cutter.configure (spec.frames, spec.hop);
  reset_clips (self, "clip properties changed");
  configure_objects (priv, settings);
  return true;
}

static GstClockTime
frame_end (GstVidclsClipperPrivate * priv, GstBuffer * buf)
{
  const GstClockTime pts = GST_BUFFER_PTS (buf);
  if (!GST_CLOCK_TIME_IS_VALID (pts))
    return GST_CLOCK_TIME_NONE;
  if (GST_BUFFER_DURATION_IS_VALID (buf))
    return pts + GST_BUFFER_DURATION (buf);
  const gint fps_n = GST_VIDEO_INFO_FPS_N (&priv->in_info);
  const gint fps_d = GST_VIDEO_INFO_FPS_D (&priv->in_info);
  if (fps_n > 0 && fps_d > 0)
    return pts + gst_util_uint64_scale_int (GST_SECOND, fps_d, fps_n);
  return GST_CLOCK_TIME_NONE;
}

/* The mapped frame as RGB uint8 [H, W, 3] on the clipper's device: on a GPU, 4:2:0 frames are
 * uploaded as they are and converted there; packed RGB is a view of the mapped pixels (only it
 * goes up to a GPU); other formats go through the converter into the RGB scratch, mapped into
 * `rgb_frame` for as long as the tensor is used. Undefined, with the error posted, when the
 * scratch cannot be mapped. */
static torch::Tensor
frame_rgb (GstVidclsClipper * self, MappedFrame & frame, std::optional<MappedFrame> &rgb_frame)
{
  GstVidclsClipperPrivate *priv = self->priv;
  if (priv->yuv_on_device) {
    vidcls::gst::FramePlanes planes = vidcls::gst::frame_planes (frame.get ());
    planes.bytes = planes.bytes.to (priv->device);
    return vidcls::gst::yuv420_to_rgb (planes, priv->yuv);
  }
  GstVideoFrame *packed = frame.get ();
  if (priv->converter != nullptr) {
    rgb_frame.emplace (&priv->rgb_info, priv->rgb_scratch, GST_MAP_WRITE);
    if (!rgb_frame->ok ()) {
      GST_ELEMENT_ERROR (self, RESOURCE, FAILED, (nullptr), ("failed to map the RGB scratch"));
      return torch::Tensor ();
    }
    gst_video_converter_frame (priv->converter, frame.get (), rgb_frame->get ());
    packed = rgb_frame->get ();
  }

  const int64_t height = GST_VIDEO_FRAME_HEIGHT (packed);
  const int64_t width = GST_VIDEO_FRAME_WIDTH (packed);
  const int64_t stride = GST_VIDEO_FRAME_PLANE_STRIDE (packed, 0);
  const int64_t pixel_stride = GST_VIDEO_FRAME_COMP_PSTRIDE (packed, 0);
  /* A view of the mapped pixels; on a GPU only this is uploaded, the rest happens there. */
  torch::Tensor pixels = torch::from_blob (GST_VIDEO_FRAME_PLANE_DATA (packed, 0),
      {height, width, pixel_stride}, {stride, pixel_stride, 1}, torch::kUInt8)
      .to (priv->device);
  /* RGB first in each pixel: a strided view will do (the CPU preprocessing reads it as is). */
  return priv->rgb_in_order ? pixels.narrow (2, 0, 3) : pixels.index_select (2, priv->channels);
}

/* Maps `buf` for reading; posts the error and returns false when it cannot. */
static bool
map_frame (GstVidclsClipper * self, GstBuffer * buf, MappedFrame & frame)
{
  if (frame.ok ())
    return true;
  GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not read a video frame."),
      ("failed to map %" GST_PTR_FORMAT " as %s", buf, GST_VIDEO_INFO_NAME (&self->priv->in_info)));
  return false;
}

/* Converts `buf` to the model's input and writes it into the ring slot of sampled frame i. */
static bool
write_sample (GstVidclsClipper * self, GstBuffer * buf, guint64 i)
{
  GstVidclsClipperPrivate *priv = self->priv;
  MappedFrame frame (&priv->in_info, buf, GST_MAP_READ);
  if (!map_frame (self, buf, frame))
    return false;
  std::optional<MappedFrame> rgb_frame;
  torch::Tensor rgb = frame_rgb (self, frame, rgb_frame);
  if (!rgb.defined ())
    return false;
  const int64_t slot = static_cast<int64_t> (priv->cutter.slot (i));
  vidcls::preprocess_frames_into (rgb.unsqueeze (0), priv->spec, priv->ring.narrow (0, slot, 1));
  return true;
}

/* roi-list: whether an object of `type` and w x h pixels is clipped: one of the types asked for
 * (object-class), at least min-object-size. */
static bool
wanted_object (GstVidclsClipperPrivate * priv, GQuark type, gint64 w, gint64 h)
{
  if (!priv->object_classes.empty ()) {
    const gchar *name = g_quark_to_string (type);
    if (name == nullptr || std::find (priv->object_classes.begin (),
            priv->object_classes.end (), name) == priv->object_classes.end ())
      return false;
  }
  return w >= priv->min_object_size && h >= priv->min_object_size;
}

/* roi-list: the objects on `buf` that are clipped (wanted_object): region-of-interest metas, each
 * with its track id (roi_object_id); then, built with GStreamer's analytics library, the ODMtds a
 * TrackingMtd relates to, with the track's id (an id given by both: the ROI meta's box counts). */
static std::vector<vidcls::ObjectSighting>
objects_of (GstVidclsClipperPrivate * priv, GstBuffer * buf)
{
  std::vector<vidcls::ObjectSighting> out;
  gpointer state = nullptr;
  while (GstMeta *meta = gst_buffer_iterate_meta_filtered (buf, &state,
          GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) {
    auto *m = reinterpret_cast<GstVideoRegionOfInterestMeta *> (meta);
    if (wanted_object (priv, m->roi_type, m->w, m->h))
      out.push_back ({vidcls::gst::roi_object_id (m),
            {(double) m->x, (double) m->y, (double) m->w, (double) m->h}});
  }
  /* GStreamer's analytics metadata (1.24+): detections a tracker relates a track to */
  for (const auto &o : vidcls::gst::analytics_objects (buf)) {
    if (wanted_object (priv, o.type, o.w, o.h))
      out.push_back ({o.id, {(double) o.x, (double) o.y, (double) o.w, (double) o.h}});
  }
  return out;
}

/* A per-object clip as a clip meta on `buf` (or on an end-of-stream carrier): a partial one
 * (its object let go, or end of stream) completed by the pad policy's rule. */
static void
attach_object_clip (GstVidclsClipperPrivate * priv, GstBuffer * buf,
    const vidcls::ObjectClip & c, GstVidclsClipperEosPolicy policy)
{
  torch::Tensor frames = c.clip;
  if (c.record.partial && policy == GST_VIDCLS_CLIPPER_EOS_PAD)
    frames = vidcls::complete_clip (frames, priv->spec.frames);
  vidcls::gst::add_clip_meta (buf, frames, c.record);
  priv->clips_out++;
}

/* roi-list: the sampled frame `buf` goes to the object clipper with the objects on it; the clips
 * it completes go on `buf`. */
static bool
clip_objects (GstVidclsClipper * self, GstBuffer * buf, bool *clip_done)
{
  GstVidclsClipperPrivate *priv = self->priv;
  GstVidclsClipperEosPolicy policy;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    policy = priv->settings.eos_policy;
  }
  const auto seen = objects_of (priv, buf);
  std::vector<vidcls::ObjectClip> clips;
  {
    /* mapped only here: a mapped frame holds a reference, and the metas need a writable buffer */
    MappedFrame frame (&priv->in_info, buf, GST_MAP_READ);
    if (!map_frame (self, buf, frame))
      return false;
    std::optional<MappedFrame> rgb_frame;
    torch::Tensor rgb = frame_rgb (self, frame, rgb_frame);
    if (!rgb.defined ())
      return false;
    std::lock_guard<std::mutex> g (priv->objects_lock);
    clips = priv->objects.add (rgb, GST_BUFFER_PTS (buf), frame_end (priv, buf), seen);
  }
  for (const auto &c : clips)
    attach_object_clip (priv, buf, c, policy);
  GST_LOG_OBJECT (self, "%zu objects, %zu clips at %" GST_TIME_FORMAT, seen.size (),
      clips.size (), GST_TIME_ARGS (GST_BUFFER_PTS (buf)));
  *clip_done = *clip_done || !clips.empty ();
  return true;
}

/* A copy of the ring's frames of `clip` (its last n_frames sampled frames), in order. On the CPU
 * by memcpy: a clip of a small model is copied in microseconds, less than waking LibTorch's
 * thread team for it would cost. */
static torch::Tensor
ring_window (GstVidclsClipperPrivate * priv, const vidcls::ClipRecord & clip)
{
  const int64_t T = priv->spec.frames;
  const int64_t n = static_cast<int64_t> (clip.n_frames);
  const int64_t first = static_cast<int64_t> (priv->cutter.slot (clip.first_sample));
  const int64_t head = std::min (n, T - first);
  if (!priv->ring.is_cpu ()) {
    if (head == n)
      return priv->ring.narrow (0, first, n).clone ();
    return torch::cat ({priv->ring.narrow (0, first, head),
            priv->ring.narrow (0, 0, n - head)});
  }
  torch::Tensor out = torch::empty ({n, priv->ring.size (1), priv->ring.size (2),
          priv->ring.size (3)}, priv->ring.options ());
  const size_t slot_bytes = priv->ring[0].numel () * sizeof (float);
  const auto *ring = static_cast<const uint8_t *> (priv->ring.data_ptr ());
  auto *dst = static_cast<uint8_t *> (out.data_ptr ());
  std::memcpy (dst, ring + first * slot_bytes, head * slot_bytes);
  std::memcpy (dst + head * slot_bytes, ring, (n - head) * slot_bytes);
  return out;
}

/* Announces changed counters, as videorate does: only when silent is off, so the streaming
 * thread does not emit a signal for every buffer nobody listens to. */
static void
announce_counters (GstVidclsClipper * self, bool in, bool sampled, bool clip)
{
  GstVidclsClipperPrivate *priv = self->priv;
  gboolean silent;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    silent = priv->settings.silent;
  }
  vidcls::gst::notify_counters (G_OBJECT (self), silent, {
        in ? properties[PROP_FRAMES_IN] : nullptr,
        sampled ? properties[PROP_FRAMES_SAMPLED] : nullptr,
        clip ? properties[PROP_CLIPS_OUT] : nullptr});
}

static GstFlowReturn
gst_vidcls_clipper_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstVidclsClipper *self = GST_VIDCLS_CLIPPER (trans);
  GstVidclsClipperPrivate *priv = self->priv;

  if (!priv->configured) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (nullptr), ("no caps before the first buffer"));
    return GST_FLOW_NOT_NEGOTIATED;
  }

  priv->frames_in++;
  bool sampled = false;
  bool clip_done = false;
  try {
    if (!apply_settings_change (self))
      return GST_FLOW_ERROR;

    sampled = priv->sampler.take (GST_BUFFER_PTS_IS_VALID (buf) ? GST_BUFFER_PTS (buf)
        : vidcls::kNoTimestamp);
    if (sampled && priv->per_object) {
      priv->frames_sampled++;
      if (!clip_objects (self, buf, &clip_done))
        return GST_FLOW_ERROR;
    } else if (sampled) {
      priv->frames_sampled++;
      const guint64 i = priv->cutter.next_sample ();
      if (priv->cutter.in_a_clip (i) && !write_sample (self, buf, i))
        return GST_FLOW_ERROR;
      vidcls::ClipRecord clip;
      if (priv->cutter.add (GST_BUFFER_PTS (buf), frame_end (priv, buf), clip)) {
        vidcls::gst::add_clip_meta (buf, ring_window (priv, clip), clip);
        GST_DEBUG_OBJECT (self, "clip %" G_GUINT64_FORMAT " (samples %" G_GUINT64_FORMAT
            "..%" G_GUINT64_FORMAT ") %" GST_TIME_FORMAT " - %" GST_TIME_FORMAT, clip.index,
            clip.first_sample, i, GST_TIME_ARGS (clip.start), GST_TIME_ARGS (clip.end));
        priv->clips_out++;
        clip_done = true;
      }
    }
    GST_LOG_OBJECT (self, "frame %" GST_TIME_FORMAT " %s", GST_TIME_ARGS (GST_BUFFER_PTS (buf)),
        sampled ? "sampled" : "skipped");
  } catch (const std::exception & e) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Could not build a clip."), ("%s",
            vidcls::error_message (e).c_str ()));
    return GST_FLOW_ERROR;
  }
  announce_counters (self, true, sampled, clip_done);
  return GST_FLOW_OK;
}

/* At EOS: when some sampled frames are in no complete clip, the clip that starts where the next
 * clip would have started, padded with its last frame or left short (eos-policy). Frames that
 * fall between clips (hop > T) are skipped by design, and with overlapping clips (hop < T) the
 * last complete clip may already hold every frame: then nothing is sent. */
static void
send_clip_event (GstVidclsClipper * self, const torch::Tensor & frames,
    const vidcls::ClipRecord & clip)
{
  GstBuffer *carrier = gst_buffer_new ();
  GST_BUFFER_PTS (carrier) = clip.start;
  if (GST_CLOCK_TIME_IS_VALID (clip.start) && GST_CLOCK_TIME_IS_VALID (clip.end)
      && clip.end >= clip.start)
    GST_BUFFER_DURATION (carrier) = clip.end - clip.start;
  vidcls::gst::add_clip_meta (carrier, frames, clip);
  GstEvent *event = vidcls::gst::eos_clip_event_new (carrier);
  gst_buffer_unref (carrier);
  gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (self), event);
  self->priv->clips_out++;
}

/* roi-list at EOS: every object's leftover clip by the policy, each in its own event. */
static void
send_object_eos_clips (GstVidclsClipper * self, GstVidclsClipperEosPolicy policy)
{
  GstVidclsClipperPrivate *priv = self->priv;
  if (policy == GST_VIDCLS_CLIPPER_EOS_DROP || !priv->configured)
    return;
  std::vector<vidcls::ObjectClip> clips;
  {
    std::lock_guard<std::mutex> g (priv->objects_lock);
    clips = priv->objects.finish (policy == GST_VIDCLS_CLIPPER_EOS_PAD ?
        vidcls::EosPolicy::kPad : vidcls::EosPolicy::kPartial);
  }
  for (const auto &c : clips) {
    torch::Tensor frames = c.clip;
    if (policy == GST_VIDCLS_CLIPPER_EOS_PAD)
      frames = vidcls::complete_clip (frames, priv->spec.frames);
    send_clip_event (self, frames, c.record);
  }
  if (!clips.empty ())
    announce_counters (self, false, false, true);
}

static void
send_eos_clip (GstVidclsClipper * self)
{
  GstVidclsClipperPrivate *priv = self->priv;
  GstVidclsClipperEosPolicy policy;
  {
    std::lock_guard<std::mutex> guard (priv->lock);
    policy = priv->settings.eos_policy;
  }
  if (priv->per_object) {
    send_object_eos_clips (self, policy);
    return;
  }
  vidcls::ClipRecord clip;
  if (policy == GST_VIDCLS_CLIPPER_EOS_DROP || !priv->configured
      || !priv->cutter.finish (policy == GST_VIDCLS_CLIPPER_EOS_PAD ?
          vidcls::EosPolicy::kPad : vidcls::EosPolicy::kPartial, clip))
    return;

  torch::Tensor frames = ring_window (priv, clip);
  if (policy == GST_VIDCLS_CLIPPER_EOS_PAD)
    frames = vidcls::complete_clip (frames, priv->spec.frames);
  GST_DEBUG_OBJECT (self, "EOS clip %" G_GUINT64_FORMAT " (%" G_GUINT64_FORMAT
      " frames from sample %" G_GUINT64_FORMAT ", %s) %" GST_TIME_FORMAT " - %"
      GST_TIME_FORMAT, clip.index, clip.n_frames, clip.first_sample,
      policy == GST_VIDCLS_CLIPPER_EOS_PAD ? "padded" : "partial", GST_TIME_ARGS (clip.start),
      GST_TIME_ARGS (clip.end));
  send_clip_event (self, frames, clip);
  announce_counters (self, false, false, true);
}

/* The end-of-stream clip of the stream that ends (EOS, or another stream starts). */
static void
end_clips_of_stream (GstVidclsClipper * self)
{
  try {
    send_eos_clip (self);
  } catch (const std::exception & e) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED, ("Could not build the end-of-stream clip."),
        ("%s", vidcls::error_message (e).c_str ()));
  }
}

static gboolean
gst_vidcls_clipper_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVidclsClipper *self = GST_VIDCLS_CLIPPER (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      /* A seek: the next frame starts clip 0 of a new epoch. */
      reset_clips (self, "flush");
      break;
    case GST_EVENT_STREAM_START:{
      const gchar *stream_id = nullptr;
      gst_event_parse_stream_start (event, &stream_id);
      const std::string id = stream_id ? stream_id : "";
      /* Another stream without EOS between (concat, a playlist): no clip takes frames of two
       * streams. The previous one's frames left over end as at its EOS, then clips start over. */
      if (id != self->priv->cutter.stream () && self->priv->cutter.sampled () > 0) {
        end_clips_of_stream (self);
        reset_clips (self, "new stream");
      }
      self->priv->cutter.set_stream (id);
      {
        std::lock_guard<std::mutex> g (self->priv->objects_lock);
        self->priv->objects.set_stream (id);
      }
      break;
    }
    case GST_EVENT_EOS:
      end_clips_of_stream (self);
      break;
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* The model downstream changed its clip spec (a swap): ask again; the streaming thread takes
 * the answer before its next frame, and a different spec resets the clips. */
static gboolean
gst_vidcls_clipper_src_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVidclsClipper *self = GST_VIDCLS_CLIPPER (trans);
  if (!vidcls::gst::is_clip_spec_changed_event (event))
    return GST_BASE_TRANSFORM_CLASS (parent_class)->src_event (trans, event);
  gst_event_unref (event);
  Answer answer;
  GstQuery *query = vidcls::gst::clip_spec_query_new ();
  if (gst_pad_peer_query (GST_BASE_TRANSFORM_SRC_PAD (trans), query))
    answer.valid = vidcls::gst::clip_spec_query_parse (query, answer.spec, answer.device,
        answer.model);
  gst_query_unref (query);
  if (!answer.valid)
    return TRUE;
  GST_INFO_OBJECT (self, "the model downstream changed to '%s': clip spec asked again",
      answer.model.c_str ());
  {
    std::lock_guard<std::mutex> guard (self->priv->lock);
    self->priv->fresh_answer = answer;
  }
  self->priv->settings_changed = true;
  return TRUE;
}
