/* GstVidclsInfer: shared implementation of vividinfer and resnetvitinfer. */
#include "gstvidclsinfer.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <torch/cuda.h>
#include <torch/utils.h>

#include "gstvidclsclip.h"
#include "gstvidclsmeta.h"
#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/resnet_tvit.h"
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
  PROP_CLIPS_CLASSIFIED,
  PROP_CLIPS_DROPPED,
  PROP_MEAN_LATENCY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

namespace {

/* A clip waiting for (or going through) the model. */
struct Job
{
  torch::Tensor clip;           /* [T or fewer, C, H, W] */
  guint64 clip_index = 0;
  guint64 first_sample = 0;
  guint64 epoch = 0;
  guint n_frames = 0;
  GstClockTime start = GST_CLOCK_TIME_NONE;
  GstClockTime end = GST_CLOCK_TIME_NONE;
  bool partial = false;
};

struct Result
{
  guint64 clip_index = 0;
  GstClockTime start = GST_CLOCK_TIME_NONE;
  GstClockTime end = GST_CLOCK_TIME_NONE;
  bool partial = false;
  std::vector<std::string> labels;
  std::vector<float> scores;
  std::vector<gint> class_ids;
  std::string top_label;
  float top_score = 0.f;
  double latency_ms = 0.0;
};

}  // namespace

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
  guint64 classified = 0;
  guint64 dropped = 0;
  guint64 backbone_frames = 0;
  double latency_sum_ms = 0.0;

  /* the model, taken in start() and released in stop(); used under `model_lock` */
  std::mutex model_lock;
  vidcls::ClassifierPtr model;
  vidcls::CheckpointInfo info;
  std::string model_name;
  torch::Device dev{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  double warmup_ms = 0.0;
  /* per-frame backbone features by sampled-frame index, for one clipper epoch */
  guint64 ring_epoch = G_MAXUINT64;
  std::map<guint64, torch::Tensor> features;

  /* streaming mode, decided on the first clip */
  bool mode_resolved = false;
  bool async = false;

  /* the asynchronous worker */
  std::thread worker;
  std::mutex q_lock;
  std::condition_variable q_cv;
  std::condition_variable idle_cv;
  std::deque<Job> queue;
  std::deque<Result> ready;     /* results for the next buffer */
  bool stopping = false;
  bool flushing = false;
  bool busy = false;
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

/* ------------------------------------------------------------------ model */

static std::string
base_name (const std::string & path)
{
  std::string name = path.substr (path.find_last_of ('/') + 1);
  const auto dot = name.rfind (".safetensors");
  if (dot != std::string::npos && dot > 0)
    name.erase (dot);
  return name;
}

static bool
architecture_accepted (GstVidclsInferClass * klass, const std::string & arch)
{
  for (const gchar * const *a = klass->architectures; a && *a; ++a) {
    if (arch == *a)
      return true;
  }
  return false;
}

/* Row of the clip tensor that feeds model frame j, for clips shorter than T (eos-policy=partial:
 * nearest-frame resampling to T frames). */
static int64_t
source_row (int64_t j, int64_t rows, int64_t T)
{
  return rows >= T ? j : (j * rows) / T;
}

/* Classifies `jobs` (model_lock held). Throws on LibTorch errors. */
static std::vector<Result>
run_jobs (GstVidclsInfer * self, std::vector<Job> & jobs)
{
  InferState *s = state (self);
  GstVidclsInferClass *klass = GST_VIDCLS_INFER_GET_CLASS (self);
  const auto shape = s->model->input_shape ();
  const int64_t T = shape.frames;
  torch::NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now ();
  torch::Tensor logits;
  guint64 backbone = 0;

  if (klass->per_frame_features) {
    auto *net = dynamic_cast<vidcls::ResNetTViTImpl *> (s->model.get ());
    std::vector<torch::Tensor> per_clip;
    for (auto &job : jobs) {
      if (job.epoch != s->ring_epoch) {
        s->features.clear ();
        s->ring_epoch = job.epoch;
      }
      const int64_t rows = job.clip.size (0);
      const guint64 last_real = job.first_sample + std::max<guint> (job.n_frames, 1) - 1;
      std::vector<guint64> ids (T);
      std::vector<int64_t> missing_rows;
      std::vector<guint64> missing_ids;
      for (int64_t j = 0; j < T; ++j) {
        ids[j] = std::min<guint64> (job.first_sample + source_row (j, rows, T), last_real);
        if (!s->features.count (ids[j]) &&
            std::find (missing_ids.begin (), missing_ids.end (), ids[j]) == missing_ids.end ()) {
          missing_ids.push_back (ids[j]);
          missing_rows.push_back (static_cast<int64_t> (ids[j] - job.first_sample));
        }
      }
      if (!missing_rows.empty ()) {
        auto idx = torch::tensor (missing_rows, torch::kLong).to (job.clip.device ());
        auto frames = job.clip.index_select (0, idx).to (s->dev, s->dtype);
        auto f = net->frame_features (frames);
        for (size_t i = 0; i < missing_ids.size (); ++i)
          s->features[missing_ids[i]] = f[i];
        backbone += missing_ids.size ();
      }
      std::vector<torch::Tensor> seq;
      for (int64_t j = 0; j < T; ++j)
        seq.push_back (s->features.at (ids[j]));
      per_clip.push_back (torch::stack (seq));
      /* Frames before this clip's start are not needed again (clips come in order). */
      s->features.erase (s->features.begin (), s->features.lower_bound (job.first_sample));
    }
    logits = net->classify_features (torch::stack (per_clip));
  } else {
    std::vector<torch::Tensor> clips;
    for (auto &job : jobs) {
      auto clip = job.clip;
      if (clip.size (0) != T) {
        std::vector<int64_t> rows (T);
        for (int64_t j = 0; j < T; ++j)
          rows[j] = source_row (j, clip.size (0), T);
        clip = clip.index_select (0, torch::tensor (rows, torch::kLong).to (clip.device ()));
      }
      clips.push_back (clip);
    }
    logits = s->model->forward (torch::stack (clips).to (s->dev, s->dtype));
  }
  auto probs = logits.to (torch::kFloat32).softmax (-1).to (torch::kCPU);
  const double ms = std::chrono::duration < double, std::milli >
      (std::chrono::steady_clock::now () - t0).count () / jobs.size ();

  guint top_k;
  gdouble threshold;
  {
    std::lock_guard < std::mutex > g (s->lock);
    top_k = s->top_k;
    threshold = s->threshold;
    s->backbone_frames += backbone;
  }
  const int64_t k = std::min<int64_t> (std::max<guint> (top_k, 1), probs.size (1));
  auto top = probs.topk (k, -1);
  auto values = std::get<0> (top), indices = std::get<1> (top);
  std::vector<Result> out;
  for (size_t b = 0; b < jobs.size (); ++b) {
    Result r;
    r.clip_index = jobs[b].clip_index;
    r.start = jobs[b].start;
    r.end = jobs[b].end;
    r.partial = jobs[b].partial;
    r.latency_ms = ms;
    for (int64_t i = 0; i < k; ++i) {
      const float score = values[b][i].item < float >();
      const auto id = indices[b][i].item < int64_t > ();
      if (i == 0) {
        r.top_label = s->info.labels.at (id);
        r.top_score = score;
      }
      if (score < threshold)
        break;
      r.labels.push_back (s->info.labels.at (id));
      r.scores.push_back (score);
      r.class_ids.push_back (static_cast<gint> (id));
    }
    out.push_back (std::move (r));
  }
  return out;
}

static void
post_result (GstVidclsInfer * self, const Result & r)
{
  InferState *s = state (self);
  GstStructure *st = gst_structure_new ("vidcls-classification",
      "clip-index", G_TYPE_UINT64, r.clip_index,
      "start", G_TYPE_UINT64, (guint64) r.start,
      "end", G_TYPE_UINT64, (guint64) r.end,
      "model", G_TYPE_STRING, s->model_name.c_str (),
      "label", G_TYPE_STRING, r.top_label.c_str (),
      "score", G_TYPE_DOUBLE, (gdouble) r.top_score,
      "partial", G_TYPE_BOOLEAN, (gboolean) r.partial,
      "inference-time", G_TYPE_UINT64, (guint64) (r.latency_ms * GST_MSECOND), NULL);
  GValue labels = G_VALUE_INIT, scores = G_VALUE_INIT, ids = G_VALUE_INIT;
  g_value_init (&labels, GST_TYPE_ARRAY);
  g_value_init (&scores, GST_TYPE_ARRAY);
  g_value_init (&ids, GST_TYPE_ARRAY);
  for (size_t i = 0; i < r.labels.size (); ++i) {
    GValue v = G_VALUE_INIT;
    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, r.labels[i].c_str ());
    gst_value_array_append_and_take_value (&labels, &v);
    g_value_init (&v, G_TYPE_DOUBLE);
    g_value_set_double (&v, r.scores[i]);
    gst_value_array_append_and_take_value (&scores, &v);
    g_value_init (&v, G_TYPE_INT);
    g_value_set_int (&v, r.class_ids[i]);
    gst_value_array_append_and_take_value (&ids, &v);
  }
  gst_structure_take_value (st, "labels", &labels);
  gst_structure_take_value (st, "scores", &scores);
  gst_structure_take_value (st, "class-ids", &ids);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), st));
}

static void
attach_result (GstVidclsInfer * self, GstBuffer * buf, const Result & r)
{
  InferState *s = state (self);
  std::vector<const gchar *> labels;
  for (const auto &l : r.labels)
    labels.push_back (l.c_str ());
  gst_buffer_add_vidcls_classification_meta (buf, r.clip_index, r.start, r.end,
      s->model_name.c_str (), r.labels.size (), labels.data (), r.scores.data (),
      r.class_ids.data (), r.partial);
}

/* Counts results and announces the counters (outside every lock). */
static void
account (GstVidclsInfer * self, const std::vector<Result> & results, guint64 dropped)
{
  InferState *s = state (self);
  {
    std::lock_guard < std::mutex > g (s->lock);
    s->classified += results.size ();
    for (const auto &r : results)
      s->latency_sum_ms += r.latency_ms;
    s->dropped += dropped;
  }
  if (!results.empty ()) {
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLIPS_CLASSIFIED]);
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MEAN_LATENCY]);
  }
  if (dropped > 0)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLIPS_DROPPED]);
}

/* Checks that a clip fits the model; posts an error naming both shapes when it does not. */
static bool
clip_fits (GstVidclsInfer * self, const Job & job)
{
  InferState *s = state (self);
  const auto shape = s->model->input_shape ();
  const auto &c = job.clip;
  const bool frames_ok = c.size (0) == shape.frames || (job.partial && c.size (0) < shape.frames);
  if (c.dim () == 4 && frames_ok && c.size (1) == shape.channels && c.size (2) == shape.height
      && c.size (3) == shape.width)
    return true;
  GST_ELEMENT_ERROR (self, STREAM, FORMAT,
      ("The clips do not fit the model %s", s->model_name.c_str ()),
      ("the clipper sends clips of %s but the model takes [%" G_GINT64_FORMAT ", %"
          G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
          "] (T, C, H, W): leave vidclsclipper's clip-length, width and height unset so it "
          "follows the model", c10::str (c.sizes ()).c_str (), shape.frames, shape.channels,
          shape.height, shape.width));
  return false;
}

static bool
classify_now (GstVidclsInfer * self, std::vector<Job> & jobs, std::vector<Result> & out)
{
  InferState *s = state (self);
  try {
    std::lock_guard < std::mutex > g (s->model_lock);
    if (!s->model)
      return false;
    for (const auto &job : jobs) {
      if (!clip_fits (self, job))
        return false;
    }
    out = run_jobs (self, jobs);
    return true;
  } catch (const c10::Error & e) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Inference failed"),
        ("%s", e.what_without_backtrace ()));
  } catch (const std::exception & e) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Inference failed"), ("%s", e.what ()));
  }
  return false;
}

/* ------------------------------------------------------------------ worker */

static void
worker_loop (GstVidclsInfer * self)
{
  InferState *s = state (self);
  for (;;) {
    std::vector<Job> jobs;
    {
      std::unique_lock < std::mutex > l (s->q_lock);
      s->q_cv.wait (l, [s] { return s->stopping || !s->queue.empty (); });
      if (s->stopping)
        return;
      guint batch;
      {
        std::lock_guard < std::mutex > g (s->lock);
        batch = std::max<guint> (s->batch_size, 1);
      }
      while (!s->queue.empty () && jobs.size () < batch) {
        jobs.push_back (std::move (s->queue.front ()));
        s->queue.pop_front ();
      }
      s->busy = true;
    }
    std::vector<Result> results;
    const bool ok = classify_now (self, jobs, results);
    {
      std::lock_guard < std::mutex > l (s->q_lock);
      s->busy = false;
      if (ok && !s->flushing) {
        for (const auto &r : results)
          s->ready.push_back (r);
      }
    }
    s->idle_cv.notify_all ();
    if (!ok) {
      std::lock_guard < std::mutex > l (s->q_lock);
      s->queue.clear ();
      continue;
    }
    for (const auto &r : results) {
      if (!r.labels.empty ())
        post_result (self, r);
    }
    account (self, results, 0);
  }
}

static void
worker_stop (GstVidclsInfer * self)
{
  InferState *s = state (self);
  {
    std::lock_guard < std::mutex > l (s->q_lock);
    s->stopping = true;
  }
  s->q_cv.notify_all ();
  if (s->worker.joinable ())
    s->worker.join ();
  std::lock_guard < std::mutex > l (s->q_lock);
  s->queue.clear ();
  s->ready.clear ();
  s->stopping = false;
  s->busy = false;
}

/* Queues a clip for the worker; a full queue drops by policy. */
static void
enqueue (GstVidclsInfer * self, Job && job)
{
  InferState *s = state (self);
  guint max_pending;
  GstVidclsInferDrop drop;
  {
    std::lock_guard < std::mutex > g (s->lock);
    max_pending = std::max<guint> (s->max_pending, 1);
    drop = s->drop;
  }
  guint64 dropped = 0;
  {
    std::lock_guard < std::mutex > l (s->q_lock);
    if (!s->worker.joinable ())
      s->worker = std::thread (worker_loop, self);
    if (s->queue.size () >= max_pending) {
      dropped = 1;
      if (drop == GST_VIDCLS_INFER_DROP_OLDEST) {
        GST_LOG_OBJECT (self, "queue full: dropping clip %" G_GUINT64_FORMAT,
            s->queue.front ().clip_index);
        s->queue.pop_front ();
        s->queue.push_back (std::move (job));
      } else {
        GST_LOG_OBJECT (self, "queue full: dropping clip %" G_GUINT64_FORMAT, job.clip_index);
      }
    } else {
      s->queue.push_back (std::move (job));
    }
  }
  s->q_cv.notify_one ();
  if (dropped)
    account (self, {}, dropped);
}

/* Waits until every queued clip is classified (EOS in async mode). */
static void
drain (GstVidclsInfer * self)
{
  InferState *s = state (self);
  std::unique_lock < std::mutex > l (s->q_lock);
  s->idle_cv.wait (l, [s] { return s->flushing || s->stopping || !s->worker.joinable ()
        || (s->queue.empty () && !s->busy); });
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

static Job
job_from_meta (const GstVidclsClipMeta * m)
{
  Job job;
  job.clip = *m->clip;
  job.clip_index = m->clip_index;
  job.first_sample = m->first_sample;
  job.epoch = m->epoch;
  job.n_frames = m->n_frames;
  job.start = m->start;
  job.end = m->end;
  job.partial = m->partial;
  return job;
}

/* Classifies (sync) or queues (async) the clip of `m`; attaches results to `buf` if given. */
static GstFlowReturn
handle_clip (GstVidclsInfer * self, GstVidclsClipMeta * m, GstBuffer * buf)
{
  InferState *s = state (self);
  if (m->clip == nullptr || !m->clip->defined ())
    return GST_FLOW_OK;
  resolve_mode (self);
  if (s->async) {
    enqueue (self, job_from_meta (m));
    return GST_FLOW_OK;
  }
  std::vector<Job> jobs {job_from_meta (m)};
  std::vector<Result> results;
  if (!classify_now (self, jobs, results))
    return GST_FLOW_ERROR;
  for (const auto &r : results) {
    if (r.labels.empty ())
      continue;
    if (buf)
      attach_result (self, buf, r);
    post_result (self, r);
  }
  account (self, results, 0);
  return GST_FLOW_OK;
}

static GstFlowReturn
gst_vidcls_infer_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  if (s->async) {
    std::deque<Result> ready;
    {
      std::lock_guard < std::mutex > l (s->q_lock);
      ready.swap (s->ready);
    }
    for (const auto &r : ready) {
      if (!r.labels.empty ())
        attach_result (self, buf, r);
    }
  }
  GstVidclsClipMeta *m = vidcls::gst::get_clip_meta (buf);
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
    if (GstVidclsClipMeta * m = vidcls::gst::get_clip_meta (carrier)) {
      if (handle_clip (self, m, nullptr) != GST_FLOW_OK) {
        gst_event_unref (event);
        return FALSE;
      }
    }
  }
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_EOS:
      if (s->async)
        drain (self);
      break;
    case GST_EVENT_FLUSH_START:{
      std::lock_guard < std::mutex > l (s->q_lock);
      s->flushing = true;
      s->queue.clear ();
      s->idle_cv.notify_all ();
      break;
    }
    case GST_EVENT_FLUSH_STOP:{
      {
        std::lock_guard < std::mutex > l (s->q_lock);
        s->flushing = false;
        s->ready.clear ();
      }
      std::lock_guard < std::mutex > g (s->model_lock);
      s->features.clear ();
      s->ring_epoch = G_MAXUINT64;
      break;
    }
    default:
      break;
  }
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static gboolean
gst_vidcls_infer_query (GstBaseTransform * trans, GstPadDirection direction, GstQuery * query)
{
  GstVidclsInfer *self = GST_VIDCLS_INFER (trans);
  InferState *s = state (self);
  if (direction == GST_PAD_SINK && vidcls::gst::is_clip_spec_query (query)) {
    std::lock_guard < std::mutex > g (s->model_lock);
    if (!s->model)
      return FALSE;
    vidcls::gst::clip_spec_query_answer (query, s->info.clip, s->dev.str (), s->model_name);
    return TRUE;
  }
  gboolean ret = GST_BASE_TRANSFORM_CLASS (parent_class)->query (trans, direction, query);
  if (ret && direction == GST_PAD_SRC && GST_QUERY_TYPE (query) == GST_QUERY_LATENCY) {
    /* In sync mode a buffer that completes a clip waits for the model. */
    GstVidclsInferMode mode;
    double mean;
    {
      std::lock_guard < std::mutex > g (s->lock);
      mode = s->mode;
      mean = s->classified ? s->latency_sum_ms / s->classified : s->warmup_ms;
    }
    if (mode == GST_VIDCLS_INFER_MODE_SYNC) {
      gboolean live;
      GstClockTime min, max;
      gst_query_parse_latency (query, &live, &min, &max);
      const GstClockTime ours = (GstClockTime) (mean * GST_MSECOND);
      gst_query_set_latency (query, live, min + ours,
          GST_CLOCK_TIME_IS_VALID (max) ? max + ours : max);
      GST_DEBUG_OBJECT (self, "adding latency %" GST_TIME_FORMAT, GST_TIME_ARGS (ours));
    }
  }
  return ret;
}

/* ------------------------------------------------------------------ lifecycle */

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
    s->classified = s->dropped = s->backbone_frames = 0;
    s->latency_sum_ms = 0.0;
  }
  if (path.empty ()) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("No model given"),
        ("set the 'model' property to a vidcls checkpoint (.safetensors), e.g. one written by "
            "vidcls-train or vidcls-init"));
    return FALSE;
  }
  struct stat st;
  if (stat (path.c_str (), &st) != 0) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("Model file '%s' not found", path.c_str ()),
        ("%s", g_strerror (errno)));
    return FALSE;
  }
  vidcls::configure_threads ();
  std::lock_guard < std::mutex > g (s->model_lock);
  try {
    auto ckpt = vidcls::load_checkpoint (path);
    if (!architecture_accepted (klass, ckpt.info.architecture)) {
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
          ("'%s' is a %s checkpoint, which %s does not run", path.c_str (),
              ckpt.info.architecture.c_str (), GST_ELEMENT_NAME (self)),
          ("use %s for this model", klass->other_element));
      return FALSE;
    }
    torch::Device dev (torch::kCPU);
    if (device == "auto") {
      dev = torch::cuda::is_available ()? torch::Device (torch::kCUDA, 0) : torch::Device (torch::kCPU);
    } else {
      try {
        dev = torch::Device (device);
      } catch (const c10::Error &) {
        GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Unknown device '%s'", device.c_str ()),
            ("use auto, cpu, cuda or cuda:N"));
        return FALSE;
      }
      if (dev.is_cuda () && (!torch::cuda::is_available ()
              || (dev.has_index () && dev.index () >= (int) torch::cuda::device_count ()))) {
        GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
            ("Device '%s' is not available", device.c_str ()),
            ("LibTorch reports %d CUDA device(s); use device=cpu or device=auto",
                (int) torch::cuda::device_count ()));
        return FALSE;
      }
      if (!dev.is_cuda () && !dev.is_cpu ()) {
        GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("Unsupported device '%s'", device.c_str ()),
            ("use auto, cpu, cuda or cuda:N"));
        return FALSE;
      }
    }
    if (dev.is_cuda () && !dev.has_index ())
      dev = torch::Device (torch::kCUDA, 0);
    torch::ScalarType dtype = torch::kFloat32;
    if (precision == GST_VIDCLS_INFER_PRECISION_FP16) {
      if (!dev.is_cuda ()) {
        GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("precision fp16 needs a CUDA device"),
            ("the model runs on %s: use precision=bf16 or fp32 there", dev.str ().c_str ()));
        return FALSE;
      }
      dtype = torch::kFloat16;
    } else if (precision == GST_VIDCLS_INFER_PRECISION_BF16) {
      dtype = torch::kBFloat16;
    }
    ckpt.model->to (dev, dtype);
    ckpt.model->eval ();
    s->model = ckpt.model;
    s->info = ckpt.info;
    s->model_name = ckpt.info.preset.empty ()? base_name (path) :
        base_name (path) + " (" + ckpt.info.preset + ")";
    s->dev = dev;
    s->dtype = dtype;
    s->features.clear ();
    s->ring_epoch = G_MAXUINT64;
    /* One warm-up clip: the first real clip is not slowed by lazy initialisation, and the
     * latency query has a number before any clip is classified. */
    const auto shape = s->model->input_shape ();
    torch::NoGradGuard no_grad;
    auto zeros = torch::zeros ({1, shape.frames, shape.channels, shape.height, shape.width},
        torch::TensorOptions ().device (dev).dtype (dtype));
    const auto t0 = std::chrono::steady_clock::now ();
    s->model->forward (zeros);
    s->warmup_ms = std::chrono::duration < double, std::milli >
        (std::chrono::steady_clock::now () - t0).count ();
    GST_INFO_OBJECT (self, "loaded %s (%s) on %s, %s; warm-up clip %.1f ms", path.c_str (),
        ckpt.info.architecture.c_str (), dev.str ().c_str (), c10::toString (dtype),
        s->warmup_ms);
  } catch (const vidcls::FormatError & e) {
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Could not read model '%s'", path.c_str ()),
        ("%s", e.what ()));
    s->model.reset ();
    return FALSE;
  } catch (const vidcls::MismatchError & e) {
    GST_ELEMENT_ERROR (self, RESOURCE, READ, ("Model '%s' does not match its architecture",
            path.c_str ()), ("%s", e.what ()));
    s->model.reset ();
    return FALSE;
  } catch (const c10::Error & e) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("Could not load model '%s'", path.c_str ()),
        ("%s", e.what_without_backtrace ()));
    s->model.reset ();
    return FALSE;
  } catch (const std::exception & e) {
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("Could not load model '%s'", path.c_str ()),
        ("%s", e.what ()));
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
  worker_stop (self);
  std::lock_guard < std::mutex > g (s->model_lock);
  s->model.reset ();
  s->features.clear ();
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
  worker_stop (self);
  delete priv->s;
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

guint64
gst_vidcls_infer_get_backbone_frames (GstVidclsInfer * self)
{
  InferState *s = state (self);
  std::lock_guard < std::mutex > g (s->lock);
  return s->backbone_frames;
}
