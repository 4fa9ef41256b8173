/* GstVidclsInfer: shared implementation of vividinfer and resnetvitinfer.
 *
 * The element: properties, start/stop, the streaming thread (sync classification, handing clips
 * to the worker, attaching results), events and queries. Loading and running the model is in
 * gstvidclsmodel.cpp, the asynchronous queue in gstvidclsworker.cpp, the shape of results in
 * gstvidclsresult.cpp. */
#include "gstvidclsinfer.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "gstvidclsclip.h"
#include "gstvidclsmodel.h"
#include "gstvidclsresult.h"
#include "gstvidclsworker.h"
#include "vidcls/device.h"
#include "vidcls/errors.h"
#include "vidcls/runtime.h"

GST_DEBUG_CATEGORY_STATIC (gst_vidcls_infer_debug);
#define GST_CAT_DEFAULT gst_vidcls_infer_debug

#define DEFAULT_MODEL NULL
#define DEFAULT_DEVICE "auto"
#define DEFAULT_PRECISION GST_VIDCLS_INFER_PRECISION_FP32
#define DEFAULT_TOP_K 5
#define DEFAULT_THRESHOLD 0.0
#define DEFAULT_BATCH_SIZE 1
#define DEFAULT_MODE GST_VIDCLS_INFER_MODE_AUTO
#define DEFAULT_MAX_PENDING 2
#define DEFAULT_DROP GST_VIDCLS_INFER_DROP_OLDEST
#define DEFAULT_SILENT TRUE

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_PRECISION,
  PROP_TOP_K,
  PROP_THRESHOLD,
  PROP_BATCH_SIZE,
  PROP_MODE,
  PROP_MAX_PENDING,
  PROP_DROP,
  PROP_SILENT,
  PROP_CLIPS_CLASSIFIED,
  PROP_CLIPS_DROPPED,
  PROP_MEAN_LATENCY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

using vidcls::gst::Classification;
using vidcls::gst::ClipRunner;
using vidcls::gst::InferenceModel;
using vidcls::gst::InferenceWorker;
using vidcls::gst::Job;

struct InferState
{
  /* properties and counters, under `lock` */
  std::mutex lock;
  std::string model_path;
  std::string device = DEFAULT_DEVICE;
  GstVidclsInferPrecision precision = DEFAULT_PRECISION;
  guint top_k = DEFAULT_TOP_K;
  gdouble threshold = DEFAULT_THRESHOLD;
  guint batch_size = DEFAULT_BATCH_SIZE;
  GstVidclsInferMode mode = DEFAULT_MODE;
  guint max_pending = DEFAULT_MAX_PENDING;
  GstVidclsInferDrop drop = DEFAULT_DROP;
  gboolean silent = DEFAULT_SILENT;
  guint64 classified = 0;
  guint64 dropped = 0;
  double latency_sum_ms = 0.0;
  /* what the loaded model tells others (the clip-spec query, the latency query), copied here
   * in start() so that answering never waits for a forward pass under `model_lock` */
  bool loaded = false;
  vidcls::ClipSpec clip_spec;
  std::string model_device, model_name;
  double warmup_ms = 0.0;

  /* the model and its runner, taken in start() and released in stop(); used under
   * `model_lock` */
  std::mutex model_lock;
  std::optional<InferenceModel> model;
  std::unique_ptr<ClipRunner> runner;

  /* streaming mode, decided on the first clip */
  bool mode_resolved = false;
  bool async = false;
  std::unique_ptr<InferenceWorker> worker;
};

typedef struct _GstVidclsInferPrivate
{
  InferState *s;
} GstVidclsInferPrivate;

#define gst_vidcls_infer_parent_class parent_class
G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (GstVidclsInfer, gst_vidcls_infer, GST_TYPE_BASE_TRANSFORM);

static InferState *
state (GstVidclsInfer * self)
{
  return ((GstVidclsInferPrivate *) gst_vidcls_infer_get_instance_private (self))->s;
}

/* ------------------------------------------------------------------ enums */

#define GST_TYPE_VIDCLS_INFER_MODE (gst_vidcls_infer_mode_get_type ())
static GType
gst_vidcls_infer_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_INFER_MODE_AUTO, "Async for live sources, sync otherwise", "auto"},
    {GST_VIDCLS_INFER_MODE_SYNC,
        "Classify every clip in the streaming thread (back-pressure; files)", "sync"},
    {GST_VIDCLS_INFER_MODE_ASYNC,
        "Classify in a worker with a bounded queue; frames never wait (live)", "async"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstVidclsInferMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

#define GST_TYPE_VIDCLS_INFER_DROP (gst_vidcls_infer_drop_get_type ())
static GType
gst_vidcls_infer_drop_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_INFER_DROP_OLDEST, "Drop the oldest pending clip", "oldest"},
    {GST_VIDCLS_INFER_DROP_NEWEST, "Drop the clip that just arrived", "newest"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstVidclsInferDrop", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

#define GST_TYPE_VIDCLS_INFER_PRECISION (gst_vidcls_infer_precision_get_type ())
static GType
gst_vidcls_infer_precision_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_VIDCLS_INFER_PRECISION_FP32, "32-bit float", "fp32"},
    {GST_VIDCLS_INFER_PRECISION_FP16, "16-bit float (CUDA only)", "fp16"},
    {GST_VIDCLS_INFER_PRECISION_BF16, "bfloat16", "bf16"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstVidclsInferPrecision", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ------------------------------------------------------------------ classifying */

/* Checks that a clip fits the model; posts an error naming both shapes when it does not. */
static bool
clip_fits (GstVidclsInfer * self, const InferenceModel & m, const Job & job)
{
  const auto shape = m.model->input_shape ();
  const auto &c = job.clip;
  const bool frames_ok = c.dim () == 4 && (c.size (0) == shape.frames
      || (job.record.partial && c.size (0) >= 1 && c.size (0) < shape.frames));
  if (frames_ok && c.size (1) == shape.channels && c.size (2) == shape.height
      && c.size (3) == shape.width)
    return true;
  GST_ELEMENT_ERROR (self, STREAM, FORMAT,
      ("The clips do not fit the model %s", m.name.c_str ()),
      ("the clipper sends clips of %s but the model takes [%" G_GINT64_FORMAT ", %"
          G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
          "] (T, C, H, W): leave vidclsclipper's clip-length, width and height unset so it "
          "follows the model", c10::str (c.sizes ()).c_str (), shape.frames, shape.channels,
          shape.height, shape.width));
  return false;
}

/* Classifies `jobs`; false, with an error posted, when that fails. */
static bool
classify (GstVidclsInfer * self, std::vector<Job> & jobs, std::vector<Classification> & out)
{
  InferState *s = state (self);
  guint top_k;
  gdouble threshold;
  {
    std::lock_guard < std::mutex > g (s->lock);
    top_k = s->top_k;
    threshold = s->threshold;
  }
  try {
    std::lock_guard < std::mutex > g (s->model_lock);
    if (!s->model)
      return false;
    for (const auto &job : jobs) {
      if (!clip_fits (self, *s->model, job))
        return false;
    }
    torch::NoGradGuard no_grad;
    const auto t0 = std::chrono::steady_clock::now ();
    auto logits = s->runner->logits (*s->model, jobs);
    auto probs = logits.to (torch::kFloat32).softmax (-1).to (torch::kCPU);
    const double ms = std::chrono::duration < double, std::milli >
        (std::chrono::steady_clock::now () - t0).count () / jobs.size ();
    std::vector<vidcls::ClipRecord> clips;
    for (const auto &job : jobs)
      clips.push_back (job.record);
    out = vidcls::gst::top_k (probs, clips, s->model->name, s->model->info.labels, top_k,
        threshold, ms);
    return true;
  } catch (const std::exception & e) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Inference failed"), ("%s",
            vidcls::error_message (e).c_str ()));
  }
  return false;
}

/* Counts results and drops; announces the counters (outside every lock) unless silent. */
static void
account (GstVidclsInfer * self, const std::vector<Classification> & results, guint64 dropped)
{
  InferState *s = state (self);
  gboolean silent;
  {
    std::lock_guard < std::mutex > g (s->lock);
    s->classified += results.size ();
    for (const auto &r : results)
      s->latency_sum_ms += r.latency_ms;
    s->dropped += dropped;
    silent = s->silent;
  }
  if (silent)
    return;
  if (!results.empty ()) {
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLIPS_CLASSIFIED]);
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MEAN_LATENCY]);
  }
  if (dropped > 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLIPS_DROPPED]);
}

/* Posts the bus messages of `results` (those above the threshold) and counts them. */
static void
publish (GstVidclsInfer * self, const std::vector<Classification> & results)
{
  for (const auto &r : results) {
    if (r.labels.empty ())
      continue;
    gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self),
            vidcls::gst::classification_structure (r)));
  }
  account (self, results, 0);
}

/* ------------------------------------------------------------------ streaming */

static void
resolve_mode (GstVidclsInfer * self)
{
  InferState *s = state (self);
  if (s->mode_resolved)
    return;
  GstVidclsInferMode mode;
  {
    std::lock_guard < std::mutex > g (s->lock);
    mode = s->mode;
  }
  bool live = false;
  if (mode == GST_VIDCLS_INFER_MODE_AUTO) {
    GstQuery *q = gst_query_new_latency ();
    if (gst_pad_peer_query (GST_BASE_TRANSFORM_SINK_PAD (self), q)) {
      gboolean is_live = FALSE;
      gst_query_parse_latency (q, &is_live, NULL, NULL);
      live = is_live;
    }
    gst_query_unref (q);
  }
  s->async = mode == GST_VIDCLS_INFER_MODE_ASYNC || (mode == GST_VIDCLS_INFER_MODE_AUTO && live);
  s->mode_resolved = true;
  GST_INFO_OBJECT (self, "classifying %s", s->async ? "asynchronously (live)" :
      "synchronously");
}

/* Hands a clip to the worker; a full queue drops one by policy. */
static void
enqueue (GstVidclsInfer * self, Job && job)
{
  InferState *s = state (self);
  guint max_pending, batch_size;
  GstVidclsInferDrop drop;
  {
    std::lock_guard < std::mutex > g (s->lock);
    max_pending = s->max_pending;
    batch_size = s->batch_size;
    drop = s->drop;
  }
  vidcls::ClipRecord dropped;
  if (s->worker->push (std::move (job), max_pending, drop == GST_VIDCLS_INFER_DROP_OLDEST,
          batch_size, &dropped)) {
    GST_LOG_OBJECT (self, "queue full: dropped clip %" G_GUINT64_FORMAT, dropped.index);
    account (self, {}, 1);
  }
}

/* Classifies (sync) or queues (async) the clip of `m`; attaches results to `buf` if given. */
static GstFlowReturn
handle_clip (GstVidclsInfer * self, const GstVidclsClipMeta * m, GstBuffer * buf)
{
  InferState *s = state (self);
  if (m->clip == nullptr || !m->clip->defined () || m->record == nullptr)
    return GST_FLOW_OK;
  resolve_mode (self);
  Job job {*m->clip, *m->record};
  if (s->async) {
    enqueue (self, std::move (job));
    return GST_FLOW_OK;
  }
  std::vector<Job> jobs {std::move (job)};
  std::vector<Classification> results;
  if (!classify (self, jobs, results))
    return GST_FLOW_ERROR;
  if (buf != nullptr) {
    for (const auto &r : results) {
      if (!r.labels.empty ())
        vidcls::gst::attach_classification (buf, r);
    }
  }
  publish (self, results);
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_vidcls_infer_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  if (s->async) {
    /* Never waits for the model: results are complete values. */
    for (const auto &r : s->worker->take_ready ()) {
      if (!r.labels.empty ())
        vidcls::gst::attach_classification (buf, r);
    }
  }
  const GstVidclsClipMeta *m = vidcls::gst::get_clip_meta (buf);
  if (m == nullptr)
    return GST_FLOW_OK;
  return handle_clip (self, m, buf);
}

static gboolean
gst_vidcls_infer_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  if (GstBuffer * carrier = vidcls::gst::eos_clip_event_parse (event)) {
    if (const GstVidclsClipMeta * m = vidcls::gst::get_clip_meta (carrier)) {
      if (handle_clip (self, m, nullptr) != GST_FLOW_OK) {
        gst_event_unref (event);
        return FALSE;
      }
    }
  }
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      if (s->async)
        s->worker->drain ();
      break;
    case GST_EVENT_FLUSH_START:
      s->worker->flush_start ();
      break;
    case GST_EVENT_FLUSH_STOP:{
      s->worker->flush_stop ();
      std::lock_guard < std::mutex > g (s->model_lock);
      if (s->runner)
        s->runner->reset ();
      break;
    }
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* The latency this element adds in sync mode: a buffer that completes a clip waits for it. */
static void
add_own_latency (GstVidclsInfer * self, GstQuery * query)
{
  InferState *s = state (self);
  GstVidclsInferMode mode;
  double mean;
  {
    std::lock_guard < std::mutex > g (s->lock);
    mode = s->mode;
    mean = s->classified ? s->latency_sum_ms / s->classified : s->warmup_ms;
  }
  if (mode != GST_VIDCLS_INFER_MODE_SYNC)
    return;
  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency (query, &live, &min, &max);
  const GstClockTime ours = (GstClockTime) (mean * GST_MSECOND);
  gst_query_set_latency (query, live, min + ours,
      GST_CLOCK_TIME_IS_VALID (max) ? max + ours : max);
  GST_DEBUG_OBJECT (self, "adding latency %" GST_TIME_FORMAT, GST_TIME_ARGS (ours));
}

static gboolean
gst_vidcls_infer_query (GstBaseTransform * trans, GstPadDirection direction, GstQuery * query)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  if (direction == GST_PAD_SINK && vidcls::gst::is_clip_spec_query (query)) {
    std::lock_guard < std::mutex > g (s->lock);
    if (!s->loaded)
      return FALSE;
    vidcls::gst::clip_spec_query_answer (query, s->clip_spec, s->model_device, s->model_name);
    return TRUE;
  }
  gboolean ret = GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query);
  if (ret && direction == GST_PAD_SRC && GST_QUERY_TYPE (query) == GST_QUERY_LATENCY)
    add_own_latency (self, query);
  return ret;
}

/* ------------------------------------------------------------------ lifecycle */

static bool
architecture_accepted (GstVidclsInferClass * klass, const std::string & arch)
{
  for (const gchar * const *a = klass->architectures; a && *a; ++a) {
    if (arch == *a)
      return true;
  }
  return false;
}

static vidcls::gst::Precision
precision_of (GstVidclsInferPrecision p)
{
  switch (p) {
    case GST_VIDCLS_INFER_PRECISION_FP16:
      return vidcls::gst::Precision::kFp16;
    case GST_VIDCLS_INFER_PRECISION_BF16:
      return vidcls::gst::Precision::kBf16;
    default:
      return vidcls::gst::Precision::kFp32;
  }
}

/* Checks what can be checked before loading: a model is given, the file is there, and it is a
 * checkpoint of an architecture this element runs. Posts the error and returns false if not. */
static bool
check_model_file (GstVidclsInfer * self, const std::string & path)
{
  GstVidclsInferClass *klass = GST_VIDCLS_INFER_GET_CLASS (self);
  if (path.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No model given"),
        ("set the 'model' property to a vidcls checkpoint (.safetensors), e.g. one written by "
            "vidcls-train or vidcls-init"));
    return false;
  }
  struct stat st;
  if (stat (path.c_str (), &st) != 0) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Model file '%s' not found", path.c_str ()),
        ("%s", g_strerror (errno)));
    return false;
  }
  const auto info = vidcls::read_checkpoint_info (path);
  if (!architecture_accepted (klass, info.architecture)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("'%s' is a %s checkpoint, which %s does not run", path.c_str (),
            info.architecture.c_str (), GST_ELEMENT_NAME (self)),
        ("use %s for this model", klass->other_element));
    return false;
  }
  return true;
}

/* Turns what loading threw into an element error a user can act on. */
static void
post_load_error (GstVidclsInfer * self, const std::string & path, const std::exception & e)
{
  const std::string text = vidcls::error_message (e);
  if (dynamic_cast < const vidcls::FormatError * >(&e)) {
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not read model '%s'", path.c_str ()),
        ("%s", text.c_str ()));
  } else if (dynamic_cast < const vidcls::MismatchError * >(&e)) {
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Model '%s' does not match its architecture",
            path.c_str ()), ("%s", text.c_str ()));
  } else if (auto * d = dynamic_cast < const vidcls::DeviceError * >(&e)) {
    if (d->kind () == vidcls::DeviceError::Kind::kUnavailable)
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", text.c_str ()), (nullptr));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", text.c_str ()), (nullptr));
  } else if (dynamic_cast < const std::invalid_argument * >(&e)) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", text.c_str ()), (nullptr));
  } else {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("Could not load model '%s'", path.c_str ()),
        ("%s", text.c_str ()));
  }
}

static gboolean
gst_vidcls_infer_start (GstBaseTransform * trans)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  GstVidclsInferClass *klass = GST_VIDCLS_INFER_GET_CLASS (self);
  InferState *s = state (self);
  std::string path, device;
  GstVidclsInferPrecision precision;
  {
    std::lock_guard < std::mutex > g (s->lock);
    path = s->model_path;
    device = s->device;
    precision = s->precision;
    s->classified = s->dropped = 0;
    s->latency_sum_ms = 0.0;
  }
  vidcls::configure_runtime ();
  std::lock_guard < std::mutex > g (s->model_lock);
  try {
    if (!check_model_file (self, path))
      return FALSE;
    s->model = vidcls::gst::load_inference_model (path, device, precision_of (precision));
    s->runner.reset (klass->create_runner ? static_cast < ClipRunner * >
        (klass->create_runner (self)) : new vidcls::gst::WholeClipRunner ());
    GST_INFO_OBJECT (self, "loaded %s (%s) on %s, %s; warm-up clip %.1f ms", path.c_str (),
        s->model->info.architecture.c_str (), s->model->device.str ().c_str (),
        c10::toString (s->model->dtype), s->model->warmup_ms);
    std::lock_guard < std::mutex > p (s->lock);
    s->loaded = true;
    s->clip_spec = s->model->info.clip;
    s->model_device = s->model->device.str ();
    s->model_name = s->model->name;
    s->warmup_ms = s->model->warmup_ms;
  } catch (const std::exception & e) {
    post_load_error (self, path, e);
    s->model.reset ();
    return FALSE;
  }
  s->mode_resolved = false;
  s->async = false;
  return TRUE;
}

static gboolean
gst_vidcls_infer_stop (GstBaseTransform * trans)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  s->worker->stop ();
  {
    std::lock_guard < std::mutex > p (s->lock);
    s->loaded = false;
  }
  std::lock_guard < std::mutex > g (s->model_lock);
  s->model.reset ();
  s->runner.reset ();
  s->mode_resolved = false;
  s->async = false;
  return TRUE;
}

/* ------------------------------------------------------------------ GObject */

static void
gst_vidcls_infer_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  InferState *s = state (GST_VIDCLS_INFER (object));
  std::lock_guard < std::mutex > g (s->lock);
  switch (prop_id) {
    case PROP_MODEL:{
      const gchar *v = g_value_get_string (value);
      s->model_path = v ? v : "";
      break;
    }
    case PROP_DEVICE:{
      const gchar *v = g_value_get_string (value);
      s->device = v ? v : DEFAULT_DEVICE;
      break;
    }
    case PROP_PRECISION:
      s->precision = (GstVidclsInferPrecision) g_value_get_enum (value);
      break;
    case PROP_TOP_K:
      s->top_k = g_value_get_uint (value);
      break;
    case PROP_THRESHOLD:
      s->threshold = g_value_get_double (value);
      break;
    case PROP_BATCH_SIZE:
      s->batch_size = g_value_get_uint (value);
      break;
    case PROP_MODE:
      s->mode = (GstVidclsInferMode) g_value_get_enum (value);
      break;
    case PROP_MAX_PENDING:
      s->max_pending = g_value_get_uint (value);
      break;
    case PROP_DROP:
      s->drop = (GstVidclsInferDrop) g_value_get_enum (value);
      break;
    case PROP_SILENT:
      s->silent = g_value_get_boolean (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_vidcls_infer_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  InferState *s = state (GST_VIDCLS_INFER (object));
  std::lock_guard < std::mutex > g (s->lock);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, s->model_path.empty ()? NULL : s->model_path.c_str ());
      break;
    case PROP_DEVICE:
      g_value_set_string (value, s->device.c_str ());
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, s->precision);
      break;
    case PROP_TOP_K:
      g_value_set_uint (value, s->top_k);
      break;
    case PROP_THRESHOLD:
      g_value_set_double (value, s->threshold);
      break;
    case PROP_BATCH_SIZE:
      g_value_set_uint (value, s->batch_size);
      break;
    case PROP_MODE:
      g_value_set_enum (value, s->mode);
      break;
    case PROP_MAX_PENDING:
      g_value_set_uint (value, s->max_pending);
      break;
    case PROP_DROP:
      g_value_set_enum (value, s->drop);
      break;
    case PROP_SILENT:
      g_value_set_boolean (value, s->silent);
      break;
    case PROP_CLIPS_CLASSIFIED:
      g_value_set_uint64 (value, s->classified);
      break;
    case PROP_CLIPS_DROPPED:
      g_value_set_uint64 (value, s->dropped);
      break;
    case PROP_MEAN_LATENCY:
      g_value_set_double (value, s->classified ? s->latency_sum_ms / s->classified : 0.0);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_vidcls_infer_finalize (GObject * object)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (object);
  auto *priv = (GstVidclsInferPrivate *) gst_vidcls_infer_get_instance_private (self);
  delete priv->s;               /* stops the worker */
  priv->s = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_vidcls_infer_init (GstVidclsInfer * self)
{
  auto *priv = (GstVidclsInferPrivate *) gst_vidcls_infer_get_instance_private (self);
  priv->s = new InferState ();
  priv->s->worker = std::make_unique < InferenceWorker > (
      [self] (std::vector<Job> &jobs, std::vector<Classification> &out) {
        return classify (self, jobs, out);
      },
      [self] (const std::vector<Classification> &results) { publish (self, results); });
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), FALSE);
}

static void
gst_vidcls_infer_class_init (GstVidclsInferClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (gst_vidcls_infer_debug, "vidclsinfer", 0,
      "vidcls inference base class");

  gobject_class->set_property = gst_vidcls_infer_set_property;
  gobject_class->get_property = gst_vidcls_infer_get_property;
  gobject_class->finalize = gst_vidcls_infer_finalize;

  const auto rw = (GParamFlags) (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  const auto rw_ready = (GParamFlags) (rw | GST_PARAM_MUTABLE_READY);
  const auto rw_playing = (GParamFlags) (rw | GST_PARAM_MUTABLE_PLAYING);
  const auto ro = (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);

  properties[PROP_MODEL] = g_param_spec_string ("model", "Model",
      "Path of the vidcls checkpoint (.safetensors); it carries the labels and the clip spec",
      DEFAULT_MODEL, rw_ready);
  properties[PROP_DEVICE] = g_param_spec_string ("device", "Device",
      "Where the model runs: auto (CUDA when LibTorch has a device, else cpu), cpu, cuda, "
      "cuda:N", DEFAULT_DEVICE, rw_ready);
  properties[PROP_PRECISION] = g_param_spec_enum ("precision", "Precision",
      "Arithmetic of the model: fp32, fp16 (CUDA only) or bf16",
      GST_TYPE_VIDCLS_INFER_PRECISION, DEFAULT_PRECISION, rw_ready);
  properties[PROP_TOP_K] = g_param_spec_uint ("top-k", "Top k",
      "Number of best labels reported per clip", 1, 1000, DEFAULT_TOP_K, rw_playing);
  properties[PROP_THRESHOLD] = g_param_spec_double ("threshold", "Threshold",
      "Report only labels whose score (softmax probability) is at least this; a clip with none "
      "gets no meta and no message", 0.0, 1.0, DEFAULT_THRESHOLD, rw_playing);
  properties[PROP_BATCH_SIZE] = g_param_spec_uint ("batch-size", "Batch size",
      "Async mode: pending clips classified together in one forward pass", 1, 64,
      DEFAULT_BATCH_SIZE, rw_playing);
  properties[PROP_MODE] = g_param_spec_enum ("mode", "Mode",
      "sync: classify every clip, holding the stream (files); async: classify in a worker "
      "with a bounded queue so frames never wait (live); auto: async for live sources",
      GST_TYPE_VIDCLS_INFER_MODE, DEFAULT_MODE, rw_ready);
  properties[PROP_MAX_PENDING] = g_param_spec_uint ("max-pending", "Max pending",
      "Async mode: clips waiting for the model before one is dropped", 1, 1024,
      DEFAULT_MAX_PENDING, rw_playing);
  properties[PROP_DROP] = g_param_spec_enum ("drop", "Drop",
      "Async mode: which clip a full queue drops", GST_TYPE_VIDCLS_INFER_DROP, DEFAULT_DROP,
      rw_playing);
  properties[PROP_SILENT] = g_param_spec_boolean ("silent", "Silent",
      "Do not announce changes of the read-only counters (notify::clips-classified, ...); "
      "reading them works either way", DEFAULT_SILENT, rw_playing);
  properties[PROP_CLIPS_CLASSIFIED] = g_param_spec_uint64 ("clips-classified",
      "Clips classified", "Clips classified since start", 0, G_MAXUINT64, 0, ro);
  properties[PROP_CLIPS_DROPPED] = g_param_spec_uint64 ("clips-dropped", "Clips dropped",
      "Async mode: clips dropped because the queue was full", 0, G_MAXUINT64, 0, ro);
  properties[PROP_MEAN_LATENCY] = g_param_spec_double ("mean-latency", "Mean latency",
      "Mean inference time per clip, in milliseconds", 0.0, G_MAXDOUBLE, 0.0, ro);
  g_object_class_install_properties (gobject_class, N_PROPS, properties);

  static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink", GST_PAD_SINK,
      GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw"));
  static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src", GST_PAD_SRC,
      GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw"));
  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_vidcls_infer_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_vidcls_infer_stop);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_vidcls_infer_transform_ip);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_vidcls_infer_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (gst_vidcls_infer_query);
  trans_class->transform_ip_on_passthrough = FALSE;

  gst_type_mark_as_plugin_api (GST_TYPE_VIDCLS_INFER, (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_VIDCLS_INFER_MODE, (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_VIDCLS_INFER_DROP, (GstPluginAPIFlags) 0);
  gst_type_mark_as_plugin_api (GST_TYPE_VIDCLS_INFER_PRECISION, (GstPluginAPIFlags) 0);
}
