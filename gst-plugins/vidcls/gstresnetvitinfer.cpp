/**
 * SECTION:element-resnetvitinfer
 * @title: resnetvitinfer
 *
 * Classifies the clips that vidclsclipper attaches to buffers with a ResNet + Temporal ViT
 * checkpoint. It keeps the backbone features of the frames it has seen, so each sampled frame
 * goes through the ResNet exactly once however much consecutive clips overlap; only the
 * temporal transformer runs per clip. The read-only "backbone-frames" counter shows it. With a
 * motion or two-stream backbone a frame's feature is that of the pair it makes with the frame
 * sampled before it, which the clip holds too, and is kept the same way. Elements
 * that share a model instance keep a ring each; the backbone and the temporal model run over the
 * clips of all of them in one batch.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=v.mp4 ! decodebin ! videoconvert ! \
 *     vidclsclipper clip-stride=2 ! resnetvitinfer model=r.safetensors ! fakesink
 * ]|
 */
#include "gstresnetvitinfer.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "gstvidclsmodel.h"
#include "vidcls/clip_sampling.h"

enum
{
  PROP_0,
  PROP_BACKBONE_FRAMES,
};

struct _GstResnetVitInfer
{
  GstVidclsInfer parent;
  std::atomic<guint64> *backbone_frames;
};

G_DEFINE_TYPE (GstResnetVitInfer, gst_resnet_vit_infer, GST_TYPE_VIDCLS_INFER);
GST_ELEMENT_REGISTER_DEFINE (resnetvitinfer, "resnetvitinfer", GST_RANK_NONE,
    GST_TYPE_RESNET_VIT_INFER);

static const gchar *const resnet_vit_architectures[] = { "resnet-tvit", NULL };

namespace {

using vidcls::gst::Job;

/* The sampled frames (indices in the clipper's epoch) a backbone feature is computed from: the
 * earlier frame of a motion pair and the frame itself (the same index twice for a frame alone,
 * or for the still pair that a padded clip's repeated last frame makes). */
using FeatureKey = std::pair<guint64, guint64>;

/* One stream's feature ring: backbone features of sampled frames by their index in the
 * clipper's current epoch. Clips come in order, so features of frames before a clip's first one
 * are let go. */
class Ring : public vidcls::gst::StreamState
{
public:
  explicit Ring (std::atomic<guint64> *backbone_frames) : backbone_frames (backbone_frames) {}

  /* Starts over on a new epoch or stream, a flush or a model swap. */
  void follow (const vidcls::ClipRecord &r)
  {
    if (take_reset () || r.epoch != epoch_ || r.stream != stream_) {
      features.clear ();
      epoch_ = r.epoch;
      stream_ = r.stream;
    }
  }

  std::map<FeatureKey, torch::Tensor> features;
  std::atomic<guint64> *backbone_frames;

private:
  std::string stream_;
  guint64 epoch_ = G_MAXUINT64;
};

/* A clip takes the features its stream's ring has, the frames it brings new go through the
 * backbone (those of every clip of the batch, whatever its stream, in one pass), and only the
 * temporal model runs per clip. A backbone that was fine-tuned is fixed here too (the model runs
 * in eval mode: BatchNorm uses its running statistics), so its features are kept the same way. */
class FeatureRunner : public vidcls::gst::ClipRunner
{
public:
  torch::Tensor logits (const vidcls::gst::InferenceModel &m,
      const std::vector<Job> &jobs) override
  {
    vidcls::PerFrameBackbone *net = m.model->per_frame_backbone ();
    if (net == nullptr)
      return whole_.logits (m, jobs);
    const size_t split = epoch_change (jobs);
    if (split > 0) {
      /* a stream restarted within the batch: its two epochs' frames share indices */
      std::vector<Job> head (jobs.begin (), jobs.begin () + split);
      std::vector<Job> tail (jobs.begin () + split, jobs.end ());
      return torch::cat ({logits (m, head), logits (m, tail)});
    }
    const int64_t T = m.model->input_shape ().frames;
    run_new_frames (m, *net, jobs, T);
    std::vector<torch::Tensor> per_clip;
    for (const auto &job : jobs) {
      Ring &ring = ring_of (job);
      std::vector<torch::Tensor> seq;
      for (const auto &token : tokens (job, T, net->frame_context ()))
        seq.push_back (ring.features.at (token.key));
      per_clip.push_back (torch::stack (seq));
    }
    for (const auto &job : jobs) {
      Ring &ring = ring_of (job);
      ring.features.erase (ring.features.begin (),
          ring.features.lower_bound (FeatureKey (job.record.first_sample, 0)));
    }
    return net->classify_features (torch::stack (per_clip));
  }

private:
  static Ring &ring_of (const Job &job) { return static_cast<Ring &> (*job.stream); }

  /* A temporal token of a clip: the ring key of its feature and the clip rows of its frame and
   * of the earlier frame of its pair. */
  struct Token
  {
    FeatureKey key;
    int64_t row, earlier_row;
  };

  /* The tokens of a clip of T frames (padded as vidcls::clip_rows says), the first `context`
   * frames serving only as the earlier frame of a pair. */
  static std::vector<Token> tokens (const Job &job, int64_t T, int64_t context)
  {
    const auto rows = vidcls::clip_rows (job.record.n_frames, T);
    std::vector<Token> out;
    for (int64_t k = context; k < T; ++k) {
      const int64_t earlier = rows[k - context];
      out.push_back ({FeatureKey (job.record.first_sample + earlier,
                  job.record.first_sample + rows[k]), rows[k], earlier});
    }
    return out;
  }

  /* The first job whose stream had a clip of another epoch earlier in the batch; 0: none. */
  static size_t epoch_change (const std::vector<Job> &jobs)
  {
    std::map<const vidcls::gst::StreamState *, std::pair<std::string, guint64>> seen;
    for (size_t i = 0; i < jobs.size (); ++i) {
      const auto key = std::make_pair (jobs[i].record.stream, jobs[i].record.epoch);
      auto it = seen.emplace (jobs[i].stream.get (), key).first;
      if (it->second != key)
        return i;
    }
    return 0;
  }

  /* Runs the backbone once over the frames of the batch that no ring has yet. */
  void run_new_frames (const vidcls::gst::InferenceModel &m, vidcls::PerFrameBackbone &net,
      const std::vector<Job> &jobs, int64_t T)
  {
    std::vector<torch::Tensor> frames, earlier;
    std::vector<std::pair<Ring *, FeatureKey>> owners;
    const int64_t context = net.frame_context ();
    for (const auto &job : jobs) {
      Ring &ring = ring_of (job);
      ring.follow (job.record);
      for (const auto &token : tokens (job, T, context)) {
        if (ring.features.count (token.key) || std::find (owners.begin (), owners.end (),
                std::make_pair (&ring, token.key)) != owners.end ())
          continue;
        frames.push_back (job.clip[token.row]);
        earlier.push_back (job.clip[token.earlier_row]);
        owners.emplace_back (&ring, token.key);
      }
    }
    if (frames.empty ())
      return;
    auto f = context > 0
        ? net.frame_features (torch::stack (frames).to (m.device, m.dtype),
            torch::stack (earlier).to (m.device, m.dtype))
        : net.frame_features (torch::stack (frames).to (m.device, m.dtype));
    for (size_t i = 0; i < owners.size (); ++i) {
      owners[i].first->features[owners[i].second] = f[i];
      *owners[i].first->backbone_frames += 1;
    }
  }

  vidcls::gst::WholeClipRunner whole_;
};

}  // namespace

static gpointer
gst_resnet_vit_infer_create_runner (GstVidclsInfer * infer)
{
  return static_cast<vidcls::gst::ClipRunner *> (new FeatureRunner ());
}

static gpointer
gst_resnet_vit_infer_create_stream (GstVidclsInfer * infer)
{
  GstResnetVitInfer *self = GST_RESNET_VIT_INFER (infer);
  *self->backbone_frames = 0;
  return static_cast<vidcls::gst::StreamState *> (new Ring (self->backbone_frames));
}

static void
gst_resnet_vit_infer_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstResnetVitInfer *self = GST_RESNET_VIT_INFER (object);
  switch (prop_id) {
    case PROP_BACKBONE_FRAMES:
      g_value_set_uint64 (value, *self->backbone_frames);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
}

static void
gst_resnet_vit_infer_finalize (GObject * object)
{
  GstResnetVitInfer *self = GST_RESNET_VIT_INFER (object);
  G_OBJECT_CLASS (gst_resnet_vit_infer_parent_class)->finalize (object);
  delete self->backbone_frames;   /* after the base class stopped its worker */
}

static void
gst_resnet_vit_infer_class_init (GstResnetVitInferClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstVidclsInferClass *infer_class = GST_VIDCLS_INFER_CLASS (klass);
  infer_class->architectures = resnet_vit_architectures;
  infer_class->other_element = "vividinfer";
  infer_class->create_runner = gst_resnet_vit_infer_create_runner;
  infer_class->create_stream = gst_resnet_vit_infer_create_stream;

  gobject_class->get_property = gst_resnet_vit_infer_get_property;
  gobject_class->finalize = gst_resnet_vit_infer_finalize;
  g_object_class_install_property (gobject_class, PROP_BACKBONE_FRAMES,
      g_param_spec_uint64 ("backbone-frames", "Backbone frames",
          "Sampled frames that went through the ResNet backbone since start (each once, "
          "however much clips overlap)", 0, G_MAXUINT64, 0,
          (GParamFlags) (G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "ResNet + Temporal ViT video classifier", "Filter/Analyzer/Video",
      "Classifies clips from vidclsclipper with a ResNet + Temporal ViT checkpoint, running "
      "the backbone once per frame", "vidcls developers");
}

static void
gst_resnet_vit_infer_init (GstResnetVitInfer * self)
{
  self->backbone_frames = new std::atomic<guint64> (0);
}
