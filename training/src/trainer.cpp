#include "vidcls/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>

#include <ATen/autocast_mode.h>
#include <nlohmann/json.hpp>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "vidcls/checkpoint.h"
#include "vidcls/errors.h"
#include "vidcls/pretrained.h"
#include "vidcls/resnet_tvit.h"
#include "vidcls/runtime.h"
#include "vidcls/train/clip_cache.h"
#include "vidcls/train/metrics.h"
#include "vidcls/train/prefetch.h"
#include "vidcls/train/transforms.h"
#include "vidcls/train/video_reader.h"
#include "vidcls/vivit.h"

namespace fs = std::filesystem;
namespace F = torch::nn::functional;
using nlohmann::json;

namespace vidcls::train {

Recipe default_recipe(const std::string &preset) {
  Recipe r;
  // The CPU presets, trained from scratch: tuned on 6-class vidcls-synth MSR data (180
  // training videos). At a peak of 1e-3 (batch 16) vivit-xs collapses to uniform predictions
  // within three epochs and never leaves them (loss stuck at ln 6); 2e-4 learns.
  if (preset == "vivit-xs" || preset == "mini-vivit-xs") {
    r.epochs = 30;
    r.lr = 2e-4;
  } else if (preset == "resnet18-tvit-xs") {
    // Trains only the temporal transformer on cached features: cheap epochs, more of them.
    r.epochs = 40;
    r.lr = 1e-3;
  } else {
    // The full-size presets, fine-tuned from image weights.
    r.epochs = 30;
    r.lr = 1e-4;
    r.batch_size = 8;
    r.repeats = 1;
  }
  return r;
}

std::string default_preset(const std::string &model) {
  if (model == "vivit") return "vivit-xs";
  if (model == "mini-vivit") return "mini-vivit-xs";
  if (model == "resnet-vit" || model == "resnet-tvit") return "resnet18-tvit-xs";
  throw std::invalid_argument("unknown model '" + model +
                              "' (known: vivit, mini-vivit, resnet-vit)");
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// SplitMix64 over a few words: independent seeds for each epoch and batch.
uint64_t mix(uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  uint64_t x = a;
  for (uint64_t v : {b, c}) {
    x ^= v + 0x9e3779b97f4a7c15ULL + (x << 6) + (x >> 2);
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
  }
  return x;
}

std::string git_revision() {
  FILE *p = ::popen("git rev-parse HEAD 2>/dev/null", "r");
  if (p == nullptr) return "";
  char buf[128] = {0};
  std::string out;
  if (std::fgets(buf, sizeof buf, p) != nullptr) out = buf;
  ::pclose(p);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string format_duration(double s) {
  char buf[32];
  const long t = std::lround(std::max(0.0, s));
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}

// ---- metrics.csv -----------------------------------------------------------------------------

struct EpochRow {
  int epoch = 0;
  int64_t step = 0;
  double lr = 0, train_loss = 0, train_acc = 0, test_loss = 0, test_top1 = 0, test_top5 = 0;
  double epoch_seconds = 0, data_wait_share = 0;
};

constexpr const char *kMetricsHeader =
    "epoch,step,lr,train_loss,train_acc,test_loss,test_top1,test_top5,epoch_seconds,"
    "data_wait_share";

std::string csv_line(const EpochRow &r) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%d,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.3f,%.4f", r.epoch,
                static_cast<long long>(r.step), r.lr, r.train_loss, r.train_acc, r.test_loss,
                r.test_top1, r.test_top5, r.epoch_seconds, r.data_wait_share);
  return buf;
}

std::vector<EpochRow> read_metrics(const fs::path &path, int up_to_epoch) {
  std::vector<EpochRow> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    EpochRow r;
    long long step = 0;
    if (std::sscanf(line.c_str(), "%d,%lld,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &r.epoch, &step,
                    &r.lr, &r.train_loss, &r.train_acc, &r.test_loss, &r.test_top1, &r.test_top5,
                    &r.epoch_seconds, &r.data_wait_share) == 10 &&
        r.epoch <= up_to_epoch) {
      r.step = step;
      rows.push_back(r);
    }
  }
  return rows;
}

void write_text_atomic(const fs::path &path, const std::string &text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

void write_metrics(const fs::path &path, const std::vector<EpochRow> &rows) {
  std::string text = std::string(kMetricsHeader) + "\n";
  for (const auto &r : rows) text += csv_line(r) + "\n";
  write_text_atomic(path, text);
}

// ---- optimiser state -------------------------------------------------------------------------

std::string state_key(const torch::Tensor &p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}

NamedTensors optimizer_state(torch::optim::Optimizer &opt,
                             const std::vector<std::pair<std::string, torch::Tensor>> &params,
                             const std::string &kind) {
  NamedTensors out;
  auto &state = opt.state();
  for (const auto &[name, p] : params) {
    auto it = state.find(state_key(p));
    if (it == state.end()) continue;
    if (kind == "adamw") {
      auto &s = static_cast<torch::optim::AdamWParamState &>(*it->second);
      out.emplace_back("optim." + name + ".exp_avg", s.exp_avg().cpu().clone());
      out.emplace_back("optim." + name + ".exp_avg_sq", s.exp_avg_sq().cpu().clone());
      out.emplace_back("optim." + name + ".step", torch::tensor({s.step()}, torch::kInt64));
    } else {
      auto &s = static_cast<torch::optim::SGDParamState &>(*it->second);
      out.emplace_back("optim." + name + ".momentum_buffer", s.momentum_buffer().cpu().clone());
    }
  }
  return out;
}

void restore_optimizer_state(torch::optim::Optimizer &opt,
                             const std::vector<std::pair<std::string, torch::Tensor>> &params,
                             const std::string &kind, const std::map<std::string, torch::Tensor> &extra,
                             const std::string &what) {
  auto &state = opt.state();
  auto get = [&](const std::string &key) -> torch::Tensor {
    auto it = extra.find(key);
    return it == extra.end() ? torch::Tensor() : it->second;
  };
  for (const auto &[name, p] : params) {
    if (kind == "adamw") {
      auto m = get("optim." + name + ".exp_avg"), v = get("optim." + name + ".exp_avg_sq"),
           step = get("optim." + name + ".step");
      if (!m.defined()) continue;  // never stepped
      if (!v.defined() || !step.defined() || !m.sizes().equals(p.sizes()))
        throw MismatchError(what + ": optimiser state of " + name + " is incomplete or mis-shaped");
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->step(step.item<int64_t>());
      s->exp_avg(m.to(p.device()).clone());
      s->exp_avg_sq(v.to(p.device()).clone());
      state[state_key(p)] = std::move(s);
    } else {
      auto b = get("optim." + name + ".momentum_buffer");
      if (!b.defined()) continue;
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(b.to(p.device()).clone());
      state[state_key(p)] = std::move(s);
    }
  }
}

// ---- data ------------------------------------------------------------------------------------

struct Sample {
  size_t video = 0;               // cache index
  int64_t label = 0;
  std::vector<int64_t> sampled;   // frame indices FrameSampler takes
};

std::vector<Sample> make_samples(const ClipCache &cache, const std::vector<size_t> &videos,
                                 const ClipSpec &spec) {
  std::vector<Sample> out;
  for (size_t v : videos) {
    Sample s;
    s.video = v;
    s.label = cache.item(v).label;
    s.sampled = sampled_frame_indices(cache.timestamps_ns(v), spec, cache.item(v).fps);
    if (!s.sampled.empty()) out.push_back(std::move(s));
  }
  return out;
}

// The ResNet backbone's feature of every cached frame (through the evaluation transform).
std::vector<torch::Tensor> frame_features(ResNetTViTImpl &model, const ClipCache &cache,
                                          const std::vector<size_t> &videos, const ClipSpec &spec,
                                          const torch::Device &device) {
  torch::NoGradGuard no_grad;
  model.eval();
  std::vector<torch::Tensor> out(cache.size());
  constexpr int64_t kChunk = 64;
  for (size_t v : videos) {
    const auto frames = cache.frames(v);
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < frames.size(0); i += kChunk) {
      const auto x = preprocess_frames(frames.narrow(0, i, std::min(kChunk, frames.size(0) - i)),
                                       spec);
      parts.push_back(model.frame_features(x.to(device)).to(torch::kCPU));
    }
    out[v] = torch::cat(parts);
  }
  return out;
}

// ---- the loop --------------------------------------------------------------------------------

struct Schedule {
  double peak = 1e-3;
  int64_t warmup_steps = 0, total_steps = 1;
  double at(int64_t step) const {  // lr for optimiser step `step` (0-based)
    if (step < warmup_steps) return peak * static_cast<double>(step + 1) / warmup_steps;
    const double t = static_cast<double>(step - warmup_steps) /
                     std::max<int64_t>(1, total_steps - warmup_steps);
    return peak * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, t)));
  }
};

struct EpochResult {
  double loss = 0, acc = 0, lr = 0, seconds = 0, wait = 0;
  int64_t samples = 0;
  double kd = 0, attention = 0, hidden = 0;  // distillation terms, per-sample means
};

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

// MiniViT weight distillation from a ViViT teacher (frozen, eval mode).
struct Distiller {
  ClassifierPtr teacher;
  double temperature = 1.0, alpha = 1.0, beta = 1.0;
  bool layers = true;  // attention / hidden terms (same spatial token count in both models)

  struct Terms {
    torch::Tensor loss, logits;
    double kd = 0, attention = 0, hidden = 0;  // soft-label KL, attention MSE, hidden KL
  };

  Terms operator()(ViViTImpl &student, const torch::Tensor &x, const torch::Tensor &y,
                   double label_smoothing) const {
    auto &t = static_cast<ViViTImpl &>(*teacher);
    ViViTTrace st, tt;
    Terms r;
    r.logits = student.forward_trace(x, st, layers && beta > 0);
    torch::Tensor t_logits;
    {
      torch::NoGradGuard no_grad;
      t_logits = t.forward_trace(x, tt, layers && beta > 0);
    }
    const double T = temperature;
    auto kd = kl_rows(torch::log_softmax(t_logits / T, -1), torch::log_softmax(r.logits / T, -1)) *
              (T * T);
    r.loss = alpha * kd;
    if (alpha < 1) {
      r.loss = r.loss + (1 - alpha) * F::cross_entropy(r.logits, y,
                                                       F::CrossEntropyFuncOptions()
                                                           .label_smoothing(label_smoothing));
    }
    r.kd = kd.item<double>();
    if (layers && beta > 0) {
      // Last spatial layer: attention maps averaged over heads (the head counts may differ),
      // compared by squared error summed over the keys, as TinyBERT does: after MiniViT's
      // post-softmax head mixing a student's rows are no longer distributions, so KL would not
      // be defined.
      const auto &sa = st.spatial.attention.back(), &ta = tt.spatial.attention.back();
      auto attn = (sa.mean(1) - ta.mean(1)).pow(2).sum(-1).mean();  // per query row
      auto hid = kl_rows(log_relation(tt.spatial.hidden.back()),
                         log_relation(st.spatial.hidden.back()));
      r.loss = r.loss + beta * (attn + hid);
      r.attention = attn.item<double>();
      r.hidden = hid.item<double>();
    }
    return r;
  }
};

// Loads and checks a --teacher checkpoint against the student.
std::unique_ptr<Distiller> make_distiller(const TrainOptions &o, VideoClassifierImpl &student,
                                          const std::vector<std::string> &classes,
                                          const ClipSpec &spec, const torch::Device &device) {
  auto *s = dynamic_cast<ViViTImpl *>(&student);
  if (s == nullptr)
    throw std::invalid_argument("--teacher: distillation trains a ViViT or Mini-ViViT student, not " +
                                student.architecture());
  auto loaded = load_checkpoint(o.teacher);
  auto *t = dynamic_cast<ViViTImpl *>(loaded.model.get());
  if (t == nullptr)
    throw MismatchError("--teacher " + o.teacher + ": a " + loaded.info.architecture +
                        " checkpoint; the teacher must be a ViViT or Mini-ViViT");
  if (loaded.info.labels != classes)
    throw MismatchError("--teacher " + o.teacher + " was trained on other classes (" +
                        std::to_string(loaded.info.labels.size()) + " labels); it must have the "
                        "dataset's " + std::to_string(classes.size()) + " in the same order");
  const auto &tc = t->cfg(), &sc = s->cfg();
  if (tc.frames != sc.frames || tc.image_size != sc.image_size ||
      loaded.info.clip.width != spec.width || loaded.info.clip.height != spec.height)
    throw MismatchError("--teacher " + o.teacher + " takes " + std::to_string(tc.frames) +
                        " frames at " + std::to_string(tc.image_size) + " px, the student " +
                        std::to_string(sc.frames) + " at " + std::to_string(sc.image_size) +
                        ": they must see the same clips");
  auto d = std::make_unique<Distiller>();
  d->temperature = o.distill_temperature;
  d->alpha = o.distill_alpha;
  d->beta = o.distill_beta;
  d->layers = tc.grid_h() * tc.grid_w() == sc.grid_h() * sc.grid_w();
  if (!d->layers && d->beta > 0)
    std::printf("--teacher: the teacher has %lld spatial tokens per frame, the student %lld: "
                "attention and hidden-state terms off, soft labels only\n",
                static_cast<long long>(tc.grid_h() * tc.grid_w()),
                static_cast<long long>(sc.grid_h() * sc.grid_w()));
  d->teacher = loaded.model;
  d->teacher->to(device);
  d->teacher->eval();
  for (auto &p : d->teacher->parameters()) p.set_requires_grad(false);
  std::printf("distilling from %s (%s, preset %s): T %.2g, alpha %.2g, beta %.2g\n",
              o.teacher.c_str(), loaded.info.architecture.c_str(), loaded.info.preset.c_str(),
              d->temperature, d->alpha, d->beta);
  return d;
}

using Forward = std::function<torch::Tensor(const torch::Tensor &)>;

// Autocast on or off, and its dtype, for CUDA or the CPU (the API changed in LibTorch 2.4).
struct AutocastState {
  bool on;
  torch::ScalarType dtype;
};

AutocastState autocast_state(bool cuda) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  const auto type = cuda ? at::kCUDA : at::kCPU;
  return {at::autocast::is_autocast_enabled(type), at::autocast::get_autocast_dtype(type)};
#else
  return cuda ? AutocastState{at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()}
              : AutocastState{at::autocast::is_cpu_enabled(),
                              at::autocast::get_autocast_cpu_dtype()};
#endif
}

void set_autocast_state(bool cuda, const AutocastState &state) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  const auto type = cuda ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_dtype(type, state.dtype);
  at::autocast::set_autocast_enabled(type, state.on);
#else
  if (cuda) {
    at::autocast::set_autocast_gpu_dtype(state.dtype);
    at::autocast::set_enabled(state.on);
  } else {
    at::autocast::set_autocast_cpu_dtype(state.dtype);
    at::autocast::set_cpu_enabled(state.on);
  }
#endif
}

// Autocast for the forward pass of a training step, as torch.autocast does it: on for the scope,
// the previous state restored and the cast cache cleared after it. The backward pass runs
// outside, in the dtypes autocast chose.
class AutocastScope {
 public:
  AutocastScope(const torch::Device &device, torch::ScalarType dtype)
      : on_(dtype != torch::kFloat32), cuda_(device.is_cuda()) {
    if (!on_) return;
    before_ = autocast_state(cuda_);
    set_autocast_state(cuda_, {true, dtype});
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!on_) return;
    set_autocast_state(cuda_, before_);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope &) = delete;
  AutocastScope &operator=(const AutocastScope &) = delete;

 private:
  bool on_, cuda_;
  AutocastState before_{false, torch::kFloat32};
};

// Dynamic loss scaling for float16 (float16 gradients underflow where float32 ones do not): the
// loss is multiplied by `scale` before the backward pass and the gradients divided by it after;
// a step whose gradients are not finite is skipped and halves the scale, 2,000 good steps in a
// row double it (the schedule of torch.cuda.amp.GradScaler's defaults).
struct LossScaler {
  bool on = false;
  double scale = 65536.0;
  int good_steps = 0;
  int64_t skipped = 0;

  // Unscales the gradients; false (and the scale halved) when one is not finite.
  bool unscale(const std::vector<torch::Tensor> &params) {
    if (!on) return true;
    torch::Tensor bad;
    for (const auto &p : params) {
      auto g = p.grad();
      if (!g.defined()) continue;
      g.div_(scale);
      auto n = g.isfinite().logical_not().sum();
      bad = bad.defined() ? bad + n : n;
    }
    if (bad.defined() && bad.item<int64_t>() > 0) {
      scale /= 2;
      good_steps = 0;
      ++skipped;
      return false;
    }
    if (++good_steps == 2000) {
      scale *= 2;
      good_steps = 0;
    }
    return true;
  }
};

// How a clip spec samples frames, for messages: "frame stride 2" or "7.5 fps".
std::string sampling(const ClipSpec &c) {
  char buf[64];
  if (c.sample_rate > 0) std::snprintf(buf, sizeof buf, "%.3g fps", c.sample_rate);
  else std::snprintf(buf, sizeof buf, "frame stride %d", c.frame_stride);
  return buf;
}

torch::ScalarType precision_dtype(const std::string &precision, const torch::Device &device) {
  if (precision == "fp32") return torch::kFloat32;
  if (precision == "bf16") return torch::kBFloat16;
  if (precision == "fp16") {
    if (!device.is_cuda()) {
      throw std::invalid_argument("--precision fp16 needs --device cuda (on the CPU, autocast "
                                  "computes in bf16 only: use --precision bf16)");
    }
    return torch::kHalf;
  }
  throw std::invalid_argument("unknown --precision '" + precision + "' (fp32, bf16, fp16)");
}

EpochResult train_one_epoch(torch::nn::Module &model, const Forward &forward,
                            PrefetchLoader &loader, torch::optim::Optimizer &optimizer,
                            const std::vector<torch::Tensor> &params, const Recipe &recipe,
                            const Schedule &schedule, int64_t &step, int epoch,
                            const torch::Device &device, const Distiller *distiller,
                            torch::ScalarType precision, LossScaler &scaler) {
  model.train();
  EpochResult r;
  double loss_sum = 0;
  int64_t hits = 0;
  const auto t0 = Clock::now();
  while (auto batch = loader.next()) {
    const double lr = schedule.at(step);
    for (auto &g : optimizer.param_groups()) g.options().set_lr(lr);
    const auto x = batch->inputs.to(device), y = batch->labels.to(device);
    torch::Tensor logits, loss;
    {
      AutocastScope autocast(device, precision);
      if (distiller != nullptr) {
        auto d = (*distiller)(dynamic_cast<ViViTImpl &>(model), x, y, recipe.label_smoothing);
        logits = d.logits;
        loss = d.loss;
        r.kd += d.kd * x.size(0);
        r.attention += d.attention * x.size(0);
        r.hidden += d.hidden * x.size(0);
      } else {
        logits = forward(x);
        loss = F::cross_entropy(
            logits, y, F::CrossEntropyFuncOptions().label_smoothing(recipe.label_smoothing));
      }
    }
    loss = loss.to(torch::kFloat32);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      char msg[256];
      std::snprintf(msg, sizeof msg,
                    "the training loss is %g at epoch %d, step %lld (lr %.3g): training stopped. "
                    "Try a lower --lr, a longer --warmup-epochs or --clip-grad 1",
                    value, epoch, static_cast<long long>(step), lr);
      throw std::runtime_error(msg);
    }
    optimizer.zero_grad();
    (scaler.on ? loss * scaler.scale : loss).backward();
    if (scaler.unscale(params)) {
      if (recipe.clip_grad > 0) torch::nn::utils::clip_grad_norm_(params, recipe.clip_grad);
      optimizer.step();
    }
    ++step;
    const int64_t n = y.size(0);
    loss_sum += value * n;
    hits += logits.argmax(1).eq(y).sum().item<int64_t>();
    r.samples += n;
    r.lr = lr;
  }
  r.seconds = seconds_since(t0);
  r.wait = loader.wait_seconds();
  r.loss = r.samples > 0 ? loss_sum / r.samples : 0;
  r.acc = r.samples > 0 ? static_cast<double>(hits) / r.samples : 0;
  if (r.samples > 0) {
    r.kd /= r.samples;
    r.attention /= r.samples;
    r.hidden /= r.samples;
  }
  return r;
}

ClassificationMetrics evaluate(torch::nn::Module &model, const Forward &forward,
                               const torch::Tensor &inputs, const torch::Tensor &labels,
                               const std::vector<std::string> &classes,
                               const torch::Device &device) {
  torch::NoGradGuard no_grad;
  model.eval();
  ClassificationMetrics m(classes);
  constexpr int64_t kBatch = 32;
  for (int64_t i = 0; i < inputs.size(0); i += kBatch) {
    const int64_t n = std::min(kBatch, inputs.size(0) - i);
    m.add(forward(inputs.narrow(0, i, n).to(device)), labels.narrow(0, i, n));
  }
  return m;
}

void copy_matching(torch::nn::Module &model, const NamedTensors &tensors,
                   std::vector<std::string> &skipped) {
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string &name, torch::Tensor &t) {
    auto it = by_name.find(name);
    if (it == by_name.end() || !it->second.sizes().equals(t.sizes())) {
      skipped.push_back(name);
      return;
    }
    t.copy_(it->second);
  };
  for (auto &p : model.named_parameters()) copy(p.key(), p.value());
  for (auto &b : model.named_buffers()) copy(b.key(), b.value());
}

void load_pretrained(VideoClassifierImpl &model, const std::string &path) {
  bool is_vidcls = true;
  try {
    read_checkpoint_info(path);
  } catch (const std::exception &) {
    is_vidcls = false;
  }
  if (is_vidcls) {
    const auto loaded = load_checkpoint(path);
    std::vector<std::string> skipped;
    copy_matching(model, state_of(*loaded.model), skipped);
    std::printf("pretrained: %s (vidcls checkpoint, preset %s); %zu tensors left as initialised",
                path.c_str(), loaded.info.preset.c_str(), skipped.size());
    for (size_t i = 0; i < std::min<size_t>(skipped.size(), 4); ++i)
      std::printf("%s %s", i == 0 ? ":" : ",", skipped[i].c_str());
    std::printf("\n");
    return;
  }
  const auto weights = read_pretrained(path);
  ImportReport report;
  if (auto *v = dynamic_cast<ViViTImpl *>(&model)) {
    report = import_vit(*v, weights, TubeletInit::kCentralFrame);
  } else if (auto *r = dynamic_cast<ResNetTViTImpl *>(&model)) {
    report = import_resnet(*r->backbone, weights);
  } else {
    throw std::invalid_argument("--pretrained: no importer for " + model.architecture());
  }
  std::printf("pretrained: %s (%s): %zu tensors loaded, %zu skipped\n", path.c_str(),
              report.source_format.c_str(), report.loaded.size(), report.skipped.size());
}

void print_cache_report(const CacheReport &r) {
  std::printf("cache %s: %zu videos (%zu decoded, %zu reused, %zu removed), %lld frames, "
              "%.1f MB, %.1f s%s\n",
              r.cache_dir.c_str(), r.videos, r.decoded, r.reused, r.removed,
              static_cast<long long>(r.frames), r.bytes / 1e6, r.seconds,
              r.written ? "" : " (up to date)");
  for (const auto &s : r.skipped)
    std::printf("  skipped %s: %s\n", s.path.c_str(), s.reason.c_str());
  for (const auto &m : r.missing) std::printf("  missing %s\n", m.c_str());
  std::fflush(stdout);
}

}  // namespace

double train(const TrainOptions &o) {
  configure_threads();
  const std::string preset_name = o.preset.empty() ? default_preset(o.model) : o.preset;
  const Preset &preset = find_preset(preset_name);
  const std::string want_arch = o.model == "resnet-vit" ? "resnet-tvit" : o.model;
  if (preset.architecture != want_arch) {
    throw std::invalid_argument("preset " + preset_name + " is a " + preset.architecture +
                                " model, not " + o.model);
  }
  ClipSpec spec = preset.clip;
  if (o.sample_rate > 0) {
    spec.sample_rate = o.sample_rate;
  } else if (o.frame_stride > 0) {
    spec.frame_stride = o.frame_stride;
    spec.sample_rate = 0;
  }
  spec.validate();
  Recipe recipe = o.recipe;
  const torch::Device device(o.device);
  if (device.is_cuda() && !torch::cuda::is_available())
    throw std::runtime_error("--device cuda: this LibTorch sees no CUDA device");
  const torch::ScalarType precision = precision_dtype(o.precision, device);
  LossScaler scaler;
  scaler.on = precision == torch::kHalf;
  const fs::path out = o.out;
  fs::create_directories(out);

  // Data: a clip cache, built from a dataset folder on first use.
  std::string cache_dir = o.data;
  if (!is_clip_cache(o.data)) {
    cache_dir = (out / "cache").string();
    CacheOptions co;
    co.short_side = short_side_for_crop(std::max(spec.width, spec.height));
    co.split = o.split;
    std::printf("building the clip cache of %s in %s (short side %d)\n", o.data.c_str(),
                cache_dir.c_str(), co.short_side);
    std::fflush(stdout);
    print_cache_report(build_cache(o.data, cache_dir, co));
  }
  const ClipCache cache = ClipCache::open(cache_dir);
  if (!o.split.empty() && o.split != cache.split()) {
    throw std::invalid_argument("the cache " + cache_dir + " holds split '" + cache.split() +
                                "', not '" + o.split + "': give the dataset folder instead");
  }
  if (is_clip_cache(o.data) && !cache.skipped().empty()) {
    for (const auto &s : cache.skipped())
      std::printf("  skipped %s: %s\n", s.path.c_str(), s.reason.c_str());
  }
  const auto &classes = cache.classes();
  const auto train_videos = cache.indices("train"), test_videos = cache.indices("test");
  if (train_videos.empty()) throw std::runtime_error("the split has no training videos");
  std::printf("data: %s layout, split %s, %zu classes, %zu train / %zu test videos\n",
              cache.layout().c_str(), cache.split().c_str(), classes.size(), train_videos.size(),
              test_videos.size());

  // Model.
  torch::manual_seed(o.seed);
  ClassifierPtr model = make_preset_model(preset_name, static_cast<int64_t>(classes.size()));
  auto *resnet = dynamic_cast<ResNetTViTImpl *>(model.get());
  if (resnet != nullptr && o.fine_tune_backbone) resnet->set_backbone_frozen(false);
  const bool use_features = resnet != nullptr && resnet->backbone_frozen() && !o.no_feature_cache;
  if (!o.pretrained.empty()) load_pretrained(*model, o.pretrained);

  // Resume.
  const fs::path last_path = out / "last.safetensors", best_path = out / "best.safetensors";
  int start_epoch = 0;
  int64_t step = 0;
  double best_top1 = -1;
  std::vector<EpochRow> rows;
  std::map<std::string, torch::Tensor> resume_extra;
  if (o.resume && fs::exists(last_path)) {
    auto loaded = load_checkpoint(last_path.string());
    if (loaded.info.preset != preset_name || loaded.info.labels != classes) {
      throw MismatchError(last_path.string() + " was trained with preset " + loaded.info.preset +
                          " on other classes; --resume needs the same preset and data");
    }
    if (loaded.info.clip.frame_stride != spec.frame_stride ||
        loaded.info.clip.sample_rate != spec.sample_rate) {
      throw MismatchError(last_path.string() + " sampled its clips at " +
                          sampling(loaded.info.clip) + ", not " + sampling(spec) +
                          "; --resume needs the same --frame-stride / --sample-rate");
    }
    load_state(*model, state_of(*loaded.model), last_path.string());
    for (auto &[k, v] : loaded.extra) resume_extra[k] = v;
    start_epoch = static_cast<int>(resume_extra.at("train.epoch").item<int64_t>());
    step = resume_extra.at("train.step").item<int64_t>();
    best_top1 = resume_extra.at("train.best_top1").item<double>();
    rows = read_metrics(out / "metrics.csv", start_epoch);
    std::printf("resuming after epoch %d (step %lld, best test top-1 %.1f%%)\n", start_epoch,
                static_cast<long long>(step), 100.0 * best_top1);
  } else if (o.resume) {
    std::printf("--resume: no %s yet, starting from scratch\n", last_path.c_str());
  }
  model->to(device);
  std::unique_ptr<Distiller> distiller;
  if (!o.teacher.empty()) distiller = make_distiller(o, *model, classes, spec, device);

  // Samples, and the clean test inputs, once.
  const auto train_samples = make_samples(cache, train_videos, spec);
  const auto test_samples = make_samples(cache, test_videos, spec);
  std::vector<torch::Tensor> features;
  const auto t_prep = Clock::now();
  if (use_features) {
    std::vector<size_t> all = train_videos;
    all.insert(all.end(), test_videos.begin(), test_videos.end());
    features = frame_features(*resnet, cache, all, spec, device);
    std::printf("backbone features of %zu videos cached in %.1f s (frozen backbone: the temporal "
                "model trains on features of the clean frames, temporal jitter only)\n",
                all.size(), seconds_since(t_prep));
  }
  auto test_input = [&](const Sample &s) {
    const auto w = eval_windows(static_cast<int64_t>(s.sampled.size()), spec, 1).at(0);
    const auto idx = torch::tensor(window_frame_indices(s.sampled, w, spec.frames), torch::kInt64);
    if (use_features) return features[s.video].index_select(0, idx);
    return preprocess_frames(cache.frames(s.video).index_select(0, idx), spec);
  };
  torch::Tensor test_x, test_y;
  if (!test_samples.empty()) {
    std::vector<torch::Tensor> xs;
    std::vector<int64_t> ys;
    for (const auto &s : test_samples) {
      xs.push_back(test_input(s));
      ys.push_back(s.label);
    }
    test_x = torch::stack(xs);
    test_y = torch::tensor(ys, torch::kInt64);
  }

  Forward forward = [&](const torch::Tensor &x) {
    return use_features ? resnet->classify_features(x) : model->forward(x);
  };

  // Optimiser over what trains.
  std::vector<std::pair<std::string, torch::Tensor>> named;
  std::vector<torch::Tensor> params;
  for (auto &p : model->named_parameters()) {
    if (p.value().requires_grad()) {
      named.emplace_back(p.key(), p.value());
      params.push_back(p.value());
    }
  }
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (recipe.optimizer == "adamw") {
    optimizer = std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(recipe.lr).weight_decay(recipe.weight_decay));
  } else if (recipe.optimizer == "sgd") {
    optimizer = std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(recipe.lr)
                    .momentum(0.9)
                    .nesterov(true)
                    .weight_decay(recipe.weight_decay));
  } else {
    throw std::invalid_argument("unknown optimiser '" + recipe.optimizer + "' (adamw, sgd)");
  }
  if (!resume_extra.empty())
    restore_optimizer_state(*optimizer, named, recipe.optimizer, resume_extra, last_path.string());

  if (recipe.repeats <= 0) {
    const auto n = static_cast<int64_t>(train_samples.size());
    recipe.repeats = static_cast<int>(
        std::max<int64_t>(4, (recipe.min_epoch_clips + n - 1) / std::max<int64_t>(1, n)));
  }
  const int64_t per_epoch = static_cast<int64_t>(train_samples.size()) * recipe.repeats;
  const int64_t batches = (per_epoch + recipe.batch_size - 1) / recipe.batch_size;
  Schedule schedule;
  schedule.peak = recipe.lr;
  schedule.total_steps = batches * recipe.epochs;
  schedule.warmup_steps = static_cast<int64_t>(std::llround(recipe.warmup_epochs * batches));

  Augmentation aug;
  aug.min_scale = recipe.min_scale;
  aug.max_scale = recipe.max_scale;
  aug.flip = o.flip;

  int64_t n_params = 0;
  for (const auto &p : params) n_params += p.numel();
  std::printf("model %s (%s), %lld trainable parameters%s; recipe: %s lr %.3g, wd %.3g, warmup "
              "%.3g epochs, cosine, label smoothing %.2f, clip %.2f, batch %d, %d epochs x %lld "
              "steps (%d clips per video), seed %llu, %s\n",
              preset_name.c_str(), preset.architecture.c_str(), static_cast<long long>(n_params),
              use_features ? " (on cached backbone features)" : "", recipe.optimizer.c_str(),
              recipe.lr, recipe.weight_decay, recipe.warmup_epochs, recipe.label_smoothing,
              recipe.clip_grad, recipe.batch_size, recipe.epochs,
              static_cast<long long>(batches), recipe.repeats,
              static_cast<unsigned long long>(o.seed), o.device.c_str());
  if (precision != torch::kFloat32) {
    std::printf("mixed precision: forward passes autocast to %s%s\n", o.precision.c_str(),
                scaler.on ? ", dynamic loss scaling" : "");
  }
  std::printf("clips: %d frames, %s, %dx%d\n", spec.frames, sampling(spec).c_str(), spec.width,
              spec.height);
  std::fflush(stdout);

  const std::string revision = git_revision();
  auto provenance = [&](int epoch, const EpochRow &row) {
    json p;
    p["dataset"] = cache.dataset_dir();
    p["layout"] = cache.layout();
    p["split"] = cache.split();
    p["cache"] = cache.cache_dir();
    p["epochs"] = epoch;
    p["schedule_epochs"] = recipe.epochs;
    p["seed"] = o.seed;
    p["recipe"] = {{"optimizer", recipe.optimizer}, {"lr", recipe.lr},
                   {"weight_decay", recipe.weight_decay}, {"warmup_epochs", recipe.warmup_epochs},
                   {"label_smoothing", recipe.label_smoothing}, {"clip_grad", recipe.clip_grad},
                   {"batch_size", recipe.batch_size}, {"repeats", recipe.repeats},
                   {"flip", o.flip}, {"scale", {recipe.min_scale, recipe.max_scale}},
                   {"precision", o.precision}};
    p["metrics"] = {{"train_loss", row.train_loss}, {"train_acc", row.train_acc},
                    {"test_loss", row.test_loss}, {"test_top1", row.test_top1},
                    {"test_top5", row.test_top5}};
    if (distiller != nullptr)
      p["distillation"] = {{"teacher", o.teacher}, {"temperature", o.distill_temperature},
                           {"alpha", o.distill_alpha}, {"beta", o.distill_beta},
                           {"layer_terms", distiller->layers}};
    if (!revision.empty()) p["git_revision"] = revision;
    if (!o.command_line.empty()) p["command"] = o.command_line;
    return p;
  };

  const auto t_start = Clock::now();
  for (int epoch = start_epoch + 1; epoch <= recipe.epochs; ++epoch) {
    const auto t_epoch = Clock::now();
    // Everything random in an epoch comes from (seed, epoch): a resumed run repeats it.
    torch::manual_seed(mix(o.seed, static_cast<uint64_t>(epoch), 1));
    std::vector<size_t> order(per_epoch);
    for (int64_t i = 0; i < per_epoch; ++i) order[i] = i % train_samples.size();
    std::shuffle(order.begin(), order.end(), std::mt19937_64(mix(o.seed, epoch, 2)));

    auto make_batch = [&](size_t b) {
      std::mt19937_64 rng(mix(o.seed, epoch, 1000 + b));
      const size_t begin = b * recipe.batch_size;
      const size_t end = std::min<size_t>(begin + recipe.batch_size, order.size());
      std::vector<torch::Tensor> xs;
      std::vector<int64_t> ys;
      for (size_t i = begin; i < end; ++i) {
        const Sample &s = train_samples[order[i]];
        if (use_features) {
          const auto idx = random_window(s.sampled, spec.frames, rng);
          xs.push_back(features[s.video].index_select(0, torch::tensor(idx, torch::kInt64)));
        } else if (o.decode_every_step) {
          // The notebook way: the whole file decoded and scaled for one clip.
          const auto &item = cache.item(s.video);
          auto frames = resize_short_side(decode_video(item.path).frames,
                                          static_cast<int>(std::min(item.height, item.width)));
          xs.push_back(train_clip(frames, s.sampled, spec, aug, rng));
        } else {
          xs.push_back(train_clip(cache.frames(s.video), s.sampled, spec, aug, rng));
        }
        ys.push_back(s.label);
      }
      return Batch{torch::stack(xs), torch::tensor(ys, torch::kInt64)};
    };
    PrefetchLoader loader(static_cast<size_t>(batches), make_batch,
                          static_cast<size_t>(std::max(1, o.prefetch)));
    const int64_t skipped_before = scaler.skipped;
    const auto tr = train_one_epoch(*model, forward, loader, *optimizer, params, recipe, schedule,
                                    step, epoch, device, distiller.get(), precision, scaler);
    if (scaler.skipped > skipped_before) {
      std::printf("  fp16: %lld steps skipped for non-finite gradients, loss scale now %g\n",
                  static_cast<long long>(scaler.skipped - skipped_before), scaler.scale);
    }

    EpochRow row;
    row.epoch = epoch;
    row.step = step;
    row.lr = tr.lr;
    row.train_loss = tr.loss;
    row.train_acc = tr.acc;
    if (test_x.defined()) {
      const auto m = evaluate(*model, forward, test_x, test_y, classes, device);
      row.test_loss = m.loss();
      row.test_top1 = m.top1();
      row.test_top5 = m.top5();
    }
    row.data_wait_share = tr.seconds > 0 ? tr.wait / tr.seconds : 0;

    // Checkpoints: last (with what resuming needs) every epoch, best on a better test top-1.
    CheckpointInfo info;
    info.preset = preset_name;
    info.labels = classes;
    info.clip = spec;
    info.provenance = provenance(epoch, row);
    model->to(torch::kCPU);
    auto extra = optimizer_state(*optimizer, named, recipe.optimizer);
    const bool improved = row.test_top1 > best_top1;
    if (improved) best_top1 = row.test_top1;
    extra.emplace_back("train.epoch", torch::tensor({static_cast<int64_t>(epoch)}));
    extra.emplace_back("train.step", torch::tensor({step}));
    extra.emplace_back("train.best_top1", torch::tensor({best_top1}, torch::kFloat64));
    if (improved) save_checkpoint(best_path.string(), *model, info);
    save_checkpoint(last_path.string(), *model, info, extra);
    model->to(device);

    row.epoch_seconds = seconds_since(t_epoch);
    rows.push_back(row);
    write_metrics(out / "metrics.csv", rows);
    std::vector<CurvePoint> curve;
    for (const auto &r : rows)
      curve.push_back({r.epoch, r.lr, r.train_loss, r.train_acc, r.test_loss, r.test_top1});
    try {
      write_curves_png((out / "curves.png").string(), curve);
    } catch (const std::exception &e) {
      std::fprintf(stderr, "warning: %s\n", e.what());
    }

    const double elapsed = seconds_since(t_start);
    const double eta = elapsed / (epoch - start_epoch) * (recipe.epochs - epoch);
    std::printf("epoch %3d/%d  loss %.4f  train %5.1f%%  test top-1 %5.1f%% top-5 %5.1f%%%s  "
                "lr %.2e  %.0f clips/s  data wait %.1f%%  %.1f s  ETA %s\n",
                epoch, recipe.epochs, row.train_loss, 100 * row.train_acc, 100 * row.test_top1,
                100 * row.test_top5, improved ? " *" : "  ", row.lr,
                tr.seconds > 0 ? tr.samples / tr.seconds : 0.0, 100 * row.data_wait_share,
                row.epoch_seconds, format_duration(eta).c_str());
    if (distiller != nullptr)
      std::printf("  distillation: soft-label KL %.4f  attention MSE %.3g  hidden KL %.4f\n",
                  tr.kd, tr.attention, tr.hidden);
    std::fflush(stdout);
    if (o.stop_after > 0 && epoch >= o.stop_after) {
      std::printf("stopping after epoch %d (--stop-after)\n", epoch);
      break;
    }
  }
  std::printf("best test top-1 %.1f%%: %s\n", 100 * std::max(0.0, best_top1), best_path.c_str());
  return best_top1;
}

}  // namespace vidcls::train
