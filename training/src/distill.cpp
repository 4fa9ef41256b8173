#include "distill.h"

#include <cmath>
#include <cstdio>

#include <torch/nn/functional/loss.h>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/train/trainer.h"

namespace F = torch::nn::functional;

namespace vidcls::train {

namespace {

// KL(p || q) over the last dimension, from log-probabilities, averaged over the other ones.
torch::Tensor kl_rows(const torch::Tensor &log_p, const torch::Tensor &log_q) {
  return (log_p.exp() * (log_p - log_q)).sum(-1).mean();
}

// Relation of a layer's tokens to each other, softmax(H H^T / sqrt(d)), as log-probabilities:
// comparable between models of different widths (MiniViT's hidden-state distillation).
torch::Tensor log_relation(const torch::Tensor &hidden) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(hidden.size(-1)));
  return torch::log_softmax(torch::matmul(hidden, hidden.transpose(-2, -1)) * scale, -1);
}

// What a model's last per-frame layer gives for one clip of zeros (empty: no such layer).
LastLayerTrace probe(VideoClassifierImpl &model, const torch::Device &device) {
  const auto shape = model.input_shape();
  const bool was_training = model.is_training();
  torch::NoGradGuard no_grad;
  model.eval();
  LastLayerTrace trace;
  model.forward_traced(torch::zeros({1, shape.frames, shape.channels, shape.height, shape.width},
                                    torch::TensorOptions().device(device)),
                       trace);
  model.train(was_training);
  return trace;
}

}  // namespace

Distiller::Terms Distiller::operator()(VideoClassifierImpl &student, const torch::Tensor &x,
                                       const torch::Tensor &y, double label_smoothing) const {
  LastLayerTrace st, tt;
  Terms r;
  const bool layers = layers_ && beta_ > 0;
  r.logits = layers ? student.forward_traced(x, st) : student.forward(x);
  torch::Tensor t_logits;
  {
    torch::NoGradGuard no_grad;
    t_logits = layers ? teacher_->forward_traced(x, tt) : teacher_->forward(x);
  }
  const double T = temperature_;
  auto kd =
      kl_rows(torch::log_softmax(t_logits / T, -1), torch::log_softmax(r.logits / T, -1)) * (T * T);
  r.loss = alpha_ * kd;
  if (alpha_ < 1) {
    r.loss =
        r.loss + (1 - alpha_) * F::cross_entropy(
                                    r.logits, y,
                                    F::CrossEntropyFuncOptions().label_smoothing(label_smoothing));
  }
  r.kd = kd.item<double>();
  if (layers) {
    // Attention maps averaged over heads (the head counts may differ), compared by squared error
    // summed over the keys, as TinyBERT does: after MiniViT's post-softmax head mixing a
    // student's rows are no longer distributions, so KL would not be defined.
    auto attn = (st.attention.mean(1) - tt.attention.mean(1)).pow(2).sum(-1).mean();
    auto hid = kl_rows(log_relation(tt.hidden), log_relation(st.hidden));
    r.loss = r.loss + beta_ * (attn + hid);
    r.attention = attn.item<double>();
    r.hidden = hid.item<double>();
  }
  return r;
}

std::unique_ptr<Distiller> make_distiller(const TrainOptions &o, VideoClassifierImpl &student,
                                          const std::vector<std::string> &classes,
                                          const ClipSpec &spec, const torch::Device &device) {
  const auto s_trace = probe(student, device);
  if (!s_trace.hidden.defined())
    throw std::invalid_argument(
        "--teacher: distillation trains a ViViT or Mini-ViViT student, "
        "not " +
        student.architecture());
  auto loaded = load_checkpoint(o.teacher);
  auto teacher = loaded.model;
  teacher->to(device);
  const auto t_trace = probe(*teacher, device);
  if (!t_trace.hidden.defined())
    throw MismatchError("--teacher " + o.teacher + ": a " + loaded.info.architecture +
                        " checkpoint; the teacher must be a ViViT or Mini-ViViT");
  if (loaded.info.labels != classes)
    throw MismatchError("--teacher " + o.teacher + " was trained on other classes (" +
                        std::to_string(loaded.info.labels.size()) +
                        " labels); it must have the "
                        "dataset's " +
                        std::to_string(classes.size()) + " in the same order");
  const auto ts = teacher->input_shape(), ss = student.input_shape();
  if (ts.frames != ss.frames || ts.height != ss.height || ts.width != ss.width ||
      loaded.info.clip.width != spec.width || loaded.info.clip.height != spec.height)
    throw MismatchError("--teacher " + o.teacher + " takes " + std::to_string(ts.frames) +
                        " frames at " + std::to_string(ts.height) + " px, the student " +
                        std::to_string(ss.frames) + " at " + std::to_string(ss.height) +
                        ": they must see the same clips");
  auto d = std::make_unique<Distiller>();
  d->teacher_ = teacher;
  d->path_ = o.teacher;
  d->temperature_ = o.distill_temperature;
  d->alpha_ = o.distill_alpha;
  d->beta_ = o.distill_beta;
  const int64_t t_tokens = t_trace.hidden.size(1), s_tokens = s_trace.hidden.size(1);
  d->layers_ = t_tokens == s_tokens;
  if (!d->layers_ && d->beta_ > 0)
    std::printf(
        "--teacher: the teacher has %lld tokens per frame, the student %lld: attention "
        "and hidden-state terms off, soft labels only\n",
        static_cast<long long>(t_tokens), static_cast<long long>(s_tokens));
  teacher->eval();
  for (auto &p : teacher->parameters()) p.set_requires_grad(false);
  std::printf("distilling from %s (%s, preset %s): T %.2g, alpha %.2g, beta %.2g\n",
              o.teacher.c_str(), loaded.info.architecture.c_str(), loaded.info.preset.c_str(),
              d->temperature_, d->alpha_, d->beta_);
  return d;
}

}  // namespace vidcls::train
