/**
 * SECTION:element-resnetvitinfer
 * @title: resnetvitinfer
 *
 * Classifies the clips that vidclsclipper attaches to buffers with a ResNet + Temporal ViT
 * checkpoint. It keeps the backbone features of the frames it has seen, so each sampled frame
 * goes through the ResNet exactly once however much consecutive clips overlap; only the
 * temporal transformer runs per clip. The read-only "backbone-frames" counter shows it.
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

/* The feature ring: backbone features of sampled frames by their index in the clipper's
 * current epoch. A clip takes the features it finds, runs the backbone on the frames it brings
 * new, and only the temporal model runs per clip. Clips come in order, so features of frames
 * before a clip's first one are let go. A model whose backbone trains (not frozen) has no
 * per-frame features to keep: its clips run whole. */
class FeatureRing : public vidcls::gst::ClipRunner
{
public:
  explicit FeatureRing (std::atomic<guint64> *backbone_frames)
      : backbone_frames_ (backbone_frames) {}

  torch::Tensor logits (const vidcls::gst::InferenceModel &m,
      const std::vector<vidcls::gst::Job> &jobs) override
  {
    vidcls::PerFrameBackbone *net = m.model->per_frame_backbone ();
    if (net == nullptr || !net->backbone_frozen ())
      return whole_.logits (m, jobs);
    const int64_t T = m.model->input_shape ().frames;
    std::vector<torch::Tensor> per_clip;
    for (const auto &job : jobs)
      per_clip.push_back (clip_features (m, *net, job, T));
    return net->classify_features (torch::stack (per_clip));
  }

  void reset () override
  {
    features_.clear ();
    stream_.clear ();
    epoch_ = G_MAXUINT64;
  }

private:
  /* [T, D]: the features of the clip's frames, completed to T by the contract's rule. */
  torch::Tensor clip_features (const vidcls::gst::InferenceModel &m,
      vidcls::PerFrameBackbone &net, const vidcls::gst::Job &job, int64_t T)
  {
    const auto &r = job.record;
    if (r.epoch != epoch_ || r.stream != stream_) {
      reset ();
      epoch_ = r.epoch;
      stream_ = r.stream;
    }
    std::vector<guint64> ids;
    std::vector<int64_t> missing_rows;
    for (int64_t row : vidcls::clip_rows (r.n_frames, T)) {
      const guint64 id = r.first_sample + row;
      ids.push_back (id);
      if (!features_.count (id) && std::find (missing_rows.begin (), missing_rows.end (),
              row) == missing_rows.end ())
        missing_rows.push_back (row);
    }
    if (!missing_rows.empty ()) {
      auto idx = torch::tensor (missing_rows, torch::kLong).to (job.clip.device ());
      auto f = net.frame_features (job.clip.index_select (0, idx).to (m.device, m.dtype));
      for (size_t i = 0; i < missing_rows.size (); ++i)
        features_[r.first_sample + missing_rows[i]] = f[i];
      *backbone_frames_ += missing_rows.size ();
    }
    std::vector<torch::Tensor> seq;
    for (guint64 id : ids)
      seq.push_back (features_.at (id));
    features_.erase (features_.begin (), features_.lower_bound (r.first_sample));
    return torch::stack (seq);
  }

  std::atomic<guint64> *backbone_frames_;
  vidcls::gst::WholeClipRunner whole_;
  std::map<guint64, torch::Tensor> features_;
  std::string stream_;
  guint64 epoch_ = G_MAXUINT64;
};

}  // namespace

static gpointer
gst_resnet_vit_infer_create_runner (GstVidclsInfer * infer)
{
  GstResnetVitInfer *self = GST_RESNET_VIT_INFER (infer);
  *self->backbone_frames = 0;
  return static_cast<vidcls::gst::ClipRunner *> (new FeatureRing (self->backbone_frames));
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
