/* GstVidclsInfer: shared implementation of vividinfer and resnetvitinfer.
 *
 * The element: properties, start/stop, the streaming thread (sync classification, handing clips
 * to the worker, attaching results), events and queries, the hot model swap. Loading and
 * running the model, the model instance shared by elements with the same model-instance-id and
 * its batching thread are the serving engine's (gst-plugins/engine/: model, instance, worker),
 * which knows no GStreamer; the shape of results on buffers, the bus and events is in
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

#include "engine/feature_ring.h"
#include "engine/instance.h"
#include "engine/model.h"
#include "engine/worker.h"
#include "gstvidclsclip.h"
#include "gstvidclsproperties.h"
#include "gstvidclsresult.h"
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
#define DEFAULT_INSTANCE_ID NULL
/* DeepStream's reference apps run nvstreammux with a 40 ms batched-push-timeout */
#define DEFAULT_BATCH_TIMEOUT 40
#define DEFAULT_REUSE TRUE

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
  PROP_INSTANCE_ID,
  PROP_BATCH_TIMEOUT,
  PROP_REUSE,
  PROP_STATS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

using vidcls::engine::Classification;
using vidcls::engine::ClipRunner;
using vidcls::engine::InferenceModel;
using vidcls::engine::InferenceWorker;
using vidcls::engine::Job;
using vidcls::engine::ModelInstance;
using vidcls::engine::Outcome;

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
  guint batch_timeout = DEFAULT_BATCH_TIMEOUT;
  GstVidclsInferMode mode = DEFAULT_MODE;
  guint max_pending = DEFAULT_MAX_PENDING;
  GstVidclsInferDrop drop = DEFAULT_DROP;
  gboolean silent = DEFAULT_SILENT;
  std::string instance_id;
  gboolean reuse = DEFAULT_REUSE;
  guint64 classified = 0;
  guint64 dropped = 0;
  double latency_sum_ms = 0.0, delay_sum_ms = 0.0;
  /* what the running model tells others (the clip-spec query, the latency query), copied here
   * in start() and on a swap so that answering never waits for a forward pass */
  bool loaded = false;
  std::string running_path;
  vidcls::ClipSpec clip_spec;
  std::string model_device, model_name;
  double warmup_ms = 0.0, load_ms = 0.0;
  /* why the running model's clips cannot share tokens; "" when they can */
  std::string reuse_blocker;

  /* the model instance this element is a member of, from start() to stop() */
  std::shared_ptr<ModelInstance> instance;
  InferenceWorker::ClientId client = 0;
  std::shared_ptr<vidcls::engine::FeatureRing> stream;
  /* tokens computed and reused (stats), for the element's life: the ring points at them */
  vidcls::engine::FeatureCounters counters;

  /* streaming mode, decided on the first clip */
  bool mode_resolved = false;
  bool async = false;
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
  return vidcls::gst::enum_type_once (&type, "GstVidclsInferMode", values);
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
  return vidcls::gst::enum_type_once (&type, "GstVidclsInferDrop", values);
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
  return vidcls::gst::enum_type_once (&type, "GstVidclsInferPrecision", values);
}

/* ------------------------------------------------------------------ classifying */

/* Posts the error of a clip that could not be classified. */
static void
post_failure (GstVidclsInfer * self, const Outcome & o)
{
  if (o.format)
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("%s", o.error.c_str ()), ("%s",
            o.detail.c_str ()));
  else
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("%s", o.error.c_str ()), ("%s",
            o.detail.c_str ()));
}

/* Counts results and drops; announces the statistics (outside every lock) unless silent. */
static void
account (GstVidclsInfer * self, const std::vector<Classification> & results, guint64 dropped)
{
  InferState *s = state (self);
  gboolean silent;
  {
    std::lock_guard < std::mutex > g (s->lock);
    s->classified += results.size ();
    for (const auto &r : results) {
      s->latency_sum_ms += r.latency_ms;
      s->delay_sum_ms += r.delay_ms;
    }
    s->dropped += dropped;
    silent = s->silent;
  }
  if (!results.empty () || dropped > 0)
    vidcls::gst::notify_counters (G_OBJECT (self), silent, {properties[PROP_STATS]});
}

/* Posts the bus messages of `results` (those above the threshold) and counts them. */
static void
publish (GstVidclsInfer * self, const std::vector<Classification> & results, guint64 dropped)
{
  for (const auto &r : results) {
    if (r.labels.empty ())
      continue;
    gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self),
            vidcls::gst::classification_structure (r)));
  }
  account (self, results, dropped);
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

static vidcls::engine::Batching
batching_of (InferState * s)
{
  vidcls::engine::Batching b;
  b.batch_size = s->batch_size;
  b.timeout = std::chrono::milliseconds (s->batch_timeout);
  return b;
}

/* Hands a clip to the instance's worker; a full queue drops one by policy. */
static void
enqueue (GstVidclsInfer * self, Job && job)
{
  InferState *s = state (self);
  guint max_pending;
  GstVidclsInferDrop drop;
  vidcls::engine::Batching batching;
  {
    std::lock_guard < std::mutex > g (s->lock);
    max_pending = s->max_pending;
    drop = s->drop;
    batching = batching_of (s);
  }
  vidcls::ClipRecord dropped;
  if (s->instance->worker ().push (s->client, std::move (job), max_pending,
          drop == GST_VIDCLS_INFER_DROP_OLDEST, batching, &dropped)) {
    GST_LOG_OBJECT (self, "queue full: dropped clip %" G_GUINT64_FORMAT, dropped.index);
    account (self, {}, 1);
  }
}

/* A result no buffer will carry (the end-of-stream clip; async results ready at EOS) goes
 * downstream as a serialized custom event with the bus message's structure, before EOS, so that
 * elements after this one (vidclsaction, vidclspublish, vidclsoverlay) see every result. */
static void
forward_result (GstVidclsInfer * self, const Classification & r)
{
  gst_pad_push_event (GST_BASE_TRANSFORM_SRC_PAD (self),
      vidcls::gst::classification_event (r));
}

/* Classifies the clips and waits for them (sync), as one batch where the instance's batch size
 * allows; attaches each result to `buf` if given, else forwards it as an event. */
static GstFlowReturn
classify_now (GstVidclsInfer * self, std::vector < Job > &&jobs, GstBuffer * buf)
{
  InferState *s = state (self);
  vidcls::engine::Batching batching;
  {
    std::lock_guard < std::mutex > g (s->lock);
    batching = batching_of (s);
  }
  std::vector < Outcome > outcomes;
  if (!s->instance->worker ().classify_now (s->client, std::move (jobs), batching, &outcomes))
    return GST_FLOW_FLUSHING;
  std::vector < Classification > done;
  guint64 dropped = 0;
  for (const Outcome & o:outcomes) {
    switch (o.kind) {
      case Outcome::Kind::kFailed:
        post_failure (self, o);
        return GST_FLOW_ERROR;
      case Outcome::Kind::kDropped:
        ++dropped;
        break;
      case Outcome::Kind::kDone:
        if (buf != nullptr)
          vidcls::gst::attach_classification (buf, o.result);
        else
          forward_result (self, o.result);
        done.push_back (o.result);
        break;
    }
  }
  if (dropped > 0)
    account (self, {}, dropped);
  if (!done.empty ())
    publish (self, done, 0);
  return GST_FLOW_OK;
}

/* The job of classifying the clip of `m`; false when the meta holds no clip. */
static bool
make_job (GstVidclsInfer * self, const GstVidclsClipMeta * m, Job * job)
{
  InferState *s = state (self);
  if (m->clip == nullptr || !m->clip->defined () || m->record == nullptr)
    return false;
  *job = Job {*m->clip, *m->record, s->stream};
  std::lock_guard < std::mutex > g (s->lock);
  job->top_k = s->top_k;
  job->threshold = s->threshold;
  return true;
}

/* Classifies (sync: all together) or queues (async) the clips of `metas`; attaches results to
 * `buf` if given. */
static GstFlowReturn
handle_clips (GstVidclsInfer * self, const std::vector < GstVidclsClipMeta * >&metas,
    GstBuffer * buf)
{
  InferState *s = state (self);
  resolve_mode (self);
  std::vector < Job > jobs;
  for (const GstVidclsClipMeta * m:metas) {
    Job job;
    if (!make_job (self, m, &job))
      continue;
    if (s->async)
      enqueue (self, std::move (job));
    else
      jobs.push_back (std::move (job));
  }
  if (jobs.empty ())
    return GST_FLOW_OK;
  return classify_now (self, std::move (jobs), buf);
}

static GstFlowReturn
gst_vidcls_infer_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  if (s->async) {
    /* Never waits for the model: results are complete values. */
    for (const auto &r : s->instance->worker ().take_ready (s->client))
      vidcls::gst::attach_classification (buf, r);
  }
  /* one clip, or with per-object clips one per object that completed a clip on this frame */
  return handle_clips (self, vidcls::gst::clip_metas (buf), buf);
}

static gboolean
gst_vidcls_infer_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  if (GstBuffer * carrier = vidcls::gst::eos_clip_event_parse (event)) {
    if (s->instance && handle_clips (self, vidcls::gst::clip_metas (carrier),
            nullptr) != GST_FLOW_OK) {
      gst_event_unref (event);
      return FALSE;
    }
  }
  if (s->instance) {
    auto &worker = s->instance->worker ();
    switch (GST_EVENT_TYPE (event)) {
      case GST_EVENT_EOS:
        worker.drain (s->client);
        for (const auto &r : worker.take_ready (s->client))
          forward_result (self, r);
        break;
      case GST_EVENT_FLUSH_START:
        worker.flush_start (s->client);
        break;
      case GST_EVENT_FLUSH_STOP:
        worker.flush_stop (s->client);
        if (s->stream)
          s->stream->request_reset ();
        break;
      default:
        break;
    }
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
  if (klass->architectures == NULL)
    return true;                /* vidclsinfer */
  for (const gchar * const *a = klass->architectures; a && *a; ++a) {
    if (arch == *a)
      return true;
  }
  return false;
}

static vidcls::engine::Precision
precision_of (GstVidclsInferPrecision p)
{
  switch (p) {
    case GST_VIDCLS_INFER_PRECISION_FP16:
      return vidcls::engine::Precision::kFp16;
    case GST_VIDCLS_INFER_PRECISION_BF16:
      return vidcls::engine::Precision::kBf16;
    default:
      return vidcls::engine::Precision::kFp32;
  }
}

/* "" when this element runs `info`'s architecture, else a message that says which element does. */
static std::string
architecture_problem (GstVidclsInfer * self, const std::string & path,
    const vidcls::CheckpointInfo & info)
{
  GstVidclsInferClass *klass = GST_VIDCLS_INFER_GET_CLASS (self);
  if (architecture_accepted (klass, info.architecture))
    return "";
  const bool trained_here = info.architecture == "vivit"
      || info.architecture == "mini-vivit" || info.architecture == "resnet-tvit";
  return "'" + path + "' is a " + info.architecture + " checkpoint, which "
      + GST_ELEMENT_NAME (self) + " does not run: use "
      + (trained_here ? klass->other_element : "vidclsinfer") + " for this model";
}

/* Checks what can be checked before loading: a model is given, the file is there, and it is a
 * checkpoint of an architecture this element runs. Posts the error and returns false if not. */
static bool
check_model_file (GstVidclsInfer * self, const std::string & path)
{
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
  const std::string problem = architecture_problem (self, path, info);
  if (!problem.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", problem.c_str ()), (nullptr));
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

/* Copies what the running model tells others into the element's state. */
static void
take_model_facts (InferState * s, const std::string & path, const InferenceModel & m)
{
  std::lock_guard < std::mutex > p (s->lock);
  s->loaded = true;
  s->running_path = path;
  s->clip_spec = m.info.clip;
  s->model_device = m.device.str ();
  s->model_name = m.name;
  s->warmup_ms = m.warmup_ms;
  s->load_ms = m.load_ms;
  const vidcls::TokenSequenceModel *net = m.model->token_sequence ();
  s->reuse_blocker = net ? net->token_reuse_blocker () :
      "the architecture has no tokens of its own windows";
}

/* A swap of the instance is done (on its loader thread): the element follows the new model,
 * tells the clipper when the clip spec changed, and says so on the bus. */
static void
model_changed (GstVidclsInfer * self, const std::string & path, const InferenceModel & m,
    bool spec_changed)
{
  InferState *s = state (self);
  std::string before;
  {
    std::lock_guard < std::mutex > g (s->lock);
    before = s->running_path;
    s->model_path = path;
  }
  take_model_facts (s, path, m);
  GST_INFO_OBJECT (self, "model swapped: %s -> %s (%s), loaded in %.0f ms%s", before.c_str (),
      path.c_str (), m.info.architecture.c_str (), m.load_ms,
      spec_changed ? "; clip spec changed" : "");
  if (spec_changed)
    gst_pad_push_event (GST_BASE_TRANSFORM_SINK_PAD (self),
        vidcls::gst::clip_spec_changed_event_new ());
  GstStructure *st = gst_structure_new ("vidcls-model-changed",
      "model", G_TYPE_STRING, path.c_str (),
      "previous", G_TYPE_STRING, before.c_str (),
      "name", G_TYPE_STRING, m.name.c_str (),
      "architecture", G_TYPE_STRING, m.info.architecture.c_str (),
      "clip-spec-changed", G_TYPE_BOOLEAN, (gboolean) spec_changed,
      "load-time", G_TYPE_DOUBLE, m.load_ms,
      "running-time", G_TYPE_UINT64, (guint64) gst_element_get_current_running_time
      (GST_ELEMENT (self)),
      "realtime", G_TYPE_INT64, (gint64) g_get_real_time (), nullptr);
  gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), st));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL]);
}

/* A swap this element asked for failed: the old model runs on, and `model` says so again. */
static void
swap_failed (GstVidclsInfer * self, const std::string & problem)
{
  InferState *s = state (self);
  std::string asked, running;
  {
    std::lock_guard < std::mutex > g (s->lock);
    asked = s->model_path;
    running = s->model_path = s->running_path;
  }
  GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS,
      ("Model not changed: %s; still running '%s'", problem.c_str (), running.c_str ()),
      ("asked for '%s'", asked.c_str ()));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODEL]);
}

/* What this element brings to its model instance: its callbacks and its per-stream state. */
static vidcls::engine::Member
member_of (GstVidclsInfer * self)
{
  vidcls::engine::Member m;
  m.name = GST_ELEMENT_NAME (self);
  m.client.publish = [self] (const std::vector<Classification> &r, uint64_t dropped) {
    publish (self, r, dropped);
  };
  m.client.fail = [self] (const Outcome & o) { post_failure (self, o); };
  {
    InferState *s = state (self);
    std::lock_guard < std::mutex > g (s->lock);
    m.client.batching = batching_of (s);
  }
  m.stream = state (self)->stream;
  m.check = [self] (const std::string &path, const vidcls::CheckpointInfo & info) {
    return architecture_problem (self, path, info);
  };
  m.model_changed = [self] (const std::string &path, const InferenceModel &model,
      bool spec_changed) {
    model_changed (self, path, model, spec_changed);
  };
  m.swap_failed = [self] (const std::string &problem) { swap_failed (self, problem); };
  return m;
}

/* Joins (or makes) the model instance. Posts the error and returns false when that fails. */
static bool
join_instance (GstVidclsInfer * self, const vidcls::engine::InstanceRequest & request)
{
  InferState *s = state (self);
  GstVidclsInferClass *klass = GST_VIDCLS_INFER_GET_CLASS (self);
  try {
    if (!check_model_file (self, request.path))
      return false;
    s->instance = vidcls::engine::acquire_model_instance (request);
  } catch (const vidcls::engine::InstanceRefused & e) {
    GST_ELEMENT_ERROR (self, RESOURCE, BUSY, ("%s", e.what ()), (nullptr));
    return false;
  } catch (const std::exception & e) {
    post_load_error (self, request.path, e);
    return false;
  }
  s->counters.clear ();
  {
    std::lock_guard < std::mutex > g (s->lock);     /* set_property reads it */
    s->stream = std::make_shared < vidcls::engine::FeatureRing > (&s->counters);
    s->stream->reuse = s->reuse;
  }
  s->client = s->instance->join (member_of (self));
  const auto m = s->instance->model ();
  take_model_facts (s, request.path, *m);
  if (!s->reuse_blocker.empty ())
    GST_INFO_OBJECT (self, "overlapping clips run whole: %s", s->reuse_blocker.c_str ());
  GST_INFO_OBJECT (self, "%s %s (%s) on %s, %s: loaded in %.0f ms, warm-up clip %.1f ms",
      request.id.empty ()? "loaded" : ("model-instance-id '" + request.id + "':").c_str (),
      request.path.c_str (), m->info.architecture.c_str (), m->device.str ().c_str (),
      c10::toString (m->dtype), m->load_ms, m->warmup_ms);
  return true;
}

static gboolean
gst_vidcls_infer_start (GstBaseTransform * trans)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  vidcls::engine::InstanceRequest request;
  {
    std::lock_guard < std::mutex > g (s->lock);
    request.id = s->instance_id;
    request.path = s->model_path;
    request.device = s->device;
    request.precision = precision_of (s->precision);
    s->classified = s->dropped = 0;
    s->latency_sum_ms = s->delay_sum_ms = 0.0;
  }
  request.element = GST_ELEMENT_NAME (self);
  request.make_runner = [] {
    return std::unique_ptr < ClipRunner > (new vidcls::engine::FeatureRunner ());
  };
  vidcls::configure_runtime ();
  vidcls::share_malloc_arena ();
  s->mode_resolved = false;
  s->async = false;
  return join_instance (self, request);
}

static gboolean
gst_vidcls_infer_stop (GstBaseTransform * trans)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  {
    std::lock_guard < std::mutex > p (s->lock);
    s->loaded = false;
  }
  if (s->instance)
    s->instance->leave (s->client);
  std::shared_ptr < ModelInstance > instance;
  {
    std::lock_guard < std::mutex > p (s->lock);
    instance.swap (s->instance);   /* swap() reads it under the lock */
  }
  instance.reset ();            /* the last member frees the model */
  {
    std::lock_guard < std::mutex > p (s->lock);
    s->stream.reset ();
  }
  s->client = 0;
  s->mode_resolved = false;
  s->async = false;
  return TRUE;
}

/* Setting `model` while the element runs: the instance loads it in the background. */
static void
set_model (GstVidclsInfer * self, const gchar * v)
{
  InferState *s = state (self);
  std::shared_ptr < ModelInstance > instance;
  const std::string path = v ? v : "";
  {
    std::lock_guard < std::mutex > g (s->lock);
    const bool same = path == s->model_path;
    s->model_path = path;
    if (same || !s->instance)
      return;
    instance = s->instance;
  }
  if (path.empty ()) {
    swap_failed (self, "an empty model");
    return;
  }
  GST_INFO_OBJECT (self, "loading '%s' to swap it in", path.c_str ());
  instance->swap (path, s->client);
}

/* ------------------------------------------------------------------ GObject */

static void
gst_vidcls_infer_set_property (GObject * object, guint prop_id, const GValue * value,
    GParamSpec * pspec)
{
  InferState *s = state (GST_VIDCLS_INFER (object));
  if (prop_id == PROP_MODEL) {
    set_model (GST_VIDCLS_INFER (object), g_value_get_string (value));
    return;
  }
  std::lock_guard < std::mutex > g (s->lock);
  switch (prop_id) {
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
    case PROP_INSTANCE_ID:{
      const gchar *v = g_value_get_string (value);
      s->instance_id = v ? v : "";
      break;
    }
    case PROP_BATCH_TIMEOUT:
      s->batch_timeout = g_value_get_uint (value);
      break;
    case PROP_REUSE:
      s->reuse = g_value_get_boolean (value);
      if (s->stream)
        s->stream->reuse = s->reuse;
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

/* The statistics of the element, of its model instance (zero when it has none) and what the
 * subclass adds. */
static GstStructure *
make_stats (GstVidclsInfer * self)
{
  InferState *s = state (self);
  GstStructure *st;
  std::shared_ptr < ModelInstance > instance;
  {
    std::lock_guard < std::mutex > g (s->lock);
    const double n = s->classified ? (double) s->classified : 1.0;
    st = gst_structure_new ("vidcls-infer-stats",
        "clips-classified", G_TYPE_UINT64, s->classified,
        "clips-dropped", G_TYPE_UINT64, s->dropped,
        "mean-latency", G_TYPE_DOUBLE, s->latency_sum_ms / n,
        "mean-delay", G_TYPE_DOUBLE, s->delay_sum_ms / n,
        "load-time", G_TYPE_DOUBLE, s->load_ms,
        "features-computed", G_TYPE_UINT64, (guint64) s->counters.computed.load (),
        "features-reused", G_TYPE_UINT64, (guint64) s->counters.reused.load (),
        "reuse", G_TYPE_STRING, !s->reuse ? "off" : !s->loaded ? "" :
        s->reuse_blocker.empty ()? "on" : ("unavailable: " + s->reuse_blocker).c_str (),
        nullptr);
    instance = s->instance;
  }
  const auto w = instance ? instance->worker ().stats () : vidcls::engine::WorkerStats ();
  gst_structure_set (st,
      "instance-streams", G_TYPE_UINT, (guint) w.streams,
      "instance-clips", G_TYPE_UINT64, (guint64) w.clips,
      "instance-batches", G_TYPE_UINT64, (guint64) w.batches,
      "instance-mean-batch", G_TYPE_DOUBLE, w.mean_batch (),
      "instance-dropped", G_TYPE_UINT64, (guint64) w.dropped,
      "instance-mean-delay", G_TYPE_DOUBLE, w.mean_delay (), nullptr);
  GstVidclsInferClass *klass = GST_VIDCLS_INFER_GET_CLASS (self);
  if (klass->add_stats)
    klass->add_stats (self, st);
  return st;
}

static void
gst_vidcls_infer_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  if (prop_id == PROP_STATS) {
    g_value_take_boxed (value, make_stats (GST_VIDCLS_INFER (object)));
    return;
  }
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
    case PROP_INSTANCE_ID:
      g_value_set_string (value, s->instance_id.empty ()? NULL : s->instance_id.c_str ());
      break;
    case PROP_BATCH_TIMEOUT:
      g_value_set_uint (value, s->batch_timeout);
      break;
    case PROP_REUSE:
      g_value_set_boolean (value, s->reuse);
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
  delete priv->s;               /* a member leaves its instance in stop() */
  priv->s = nullptr;
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_vidcls_infer_init (GstVidclsInfer * self)
{
  auto *priv = (GstVidclsInferPrivate *) gst_vidcls_infer_get_instance_private (self);
  priv->s = new InferState ();
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

  properties[PROP_MODEL] = g_param_spec_string ("model", "Model",
      "Path of the vidcls checkpoint (.safetensors); it carries the labels and the clip spec. "
      "Set while playing, the checkpoint loads in the background and replaces the running "
      "model between two clips (message vidcls-model-changed); one that fails its checks "
      "leaves the old model running (a warning says why)", DEFAULT_MODEL, rw_playing);
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
      "gets a meta with no results (downstream elements still see it was classified) and no bus "
      "message", 0.0, 1.0, DEFAULT_THRESHOLD, rw_playing);
  properties[PROP_BATCH_SIZE] = g_param_spec_uint ("batch-size", "Batch size",
      "Most clips classified together in one forward pass, of all the streams of the model "
      "instance (its elements' largest batch-size counts)", 1, 64, DEFAULT_BATCH_SIZE,
      rw_playing);
  properties[PROP_BATCH_TIMEOUT] = g_param_spec_uint ("batch-timeout", "Batch timeout",
      "Most milliseconds a clip waits for a batch to fill (the instance's elements' smallest "
      "counts); a batch runs at once when every stream that shares the instance waits on it",
      0, 60000, DEFAULT_BATCH_TIMEOUT, rw_playing);
  properties[PROP_INSTANCE_ID] = g_param_spec_string ("model-instance-id", "Model instance id",
      "Inference elements of the process with the same id share one loaded model and one "
      "worker that batches their clips together; they must name the same model, device and "
      "precision. Unset: a model of this element's own", DEFAULT_INSTANCE_ID, rw_ready);
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
  properties[PROP_REUSE] = g_param_spec_boolean ("reuse", "Reuse",
      "Compute what overlapping clips share once: each tubelet's spatial encoding (ViViT, "
      "Mini-ViViT), each frame's backbone feature (ResNet + Temporal ViT), kept by the sampled "
      "frames they come from; only the temporal transformer runs per clip, with the same scores "
      "(float rounding). Pays with clip-stride below clip-length, a multiple of the tubelet's "
      "frames for ViViT. A ViViT whose input transform looks at the whole clip (normal-flow, "
      "normal-flow-stabilised, temporal-residual) runs every clip whole: stats say so under "
      "'reuse'. false: every clip runs whole (comparison, debugging)", DEFAULT_REUSE, rw_playing);
  properties[PROP_SILENT] = vidcls::gst::silent_param_spec ("statistics (notify::stats)");
  properties[PROP_STATS] = vidcls::gst::stats_param_spec ("Statistics since start "
      "(vidcls-infer-stats): clips-classified, clips-dropped (async: full queue; clips cut for "
      "a model swapped out), mean-latency (ms of inference per clip), mean-delay (ms from a "
      "clip's last frame to its result: queue, batch and inference), load-time (ms to read the "
      "running checkpoint), features-computed and features-reused (tokens: ViViT tubelets through "
      "the spatial encoder, ResNet frames through the backbone; a clip run whole counts all its "
      "tokens as computed), reuse (on, off, or unavailable: why); of the model instance, the same on every element that shares it: "
      "instance-streams (elements now), instance-clips, instance-batches (forward passes), "
      "instance-mean-batch, instance-dropped, instance-mean-delay");
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
}
