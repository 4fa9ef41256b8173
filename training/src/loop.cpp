#include "loop.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include "vidcls/registry.h"

namespace F = torch::nn::functional;

namespace vidcls::train {

double Schedule::at(int64_t step) const {
  if (step < warmup_steps) return peak * static_cast<double>(step + 1) / warmup_steps;
  const double t =
      static_cast<double>(step - warmup_steps) / std::max<int64_t>(1, total_steps - warmup_steps);
  return peak * 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, t)));
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Recipe &recipe,
                                                        const std::vector<torch::Tensor> &params) {
  if (recipe.optimizer == "adamw") {
    return std::make_unique<torch::optim::AdamW>(
        params, torch::optim::AdamWOptions(recipe.lr).weight_decay(recipe.weight_decay));
  }
  if (recipe.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(recipe.lr).momentum(0.9).nesterov(true).weight_decay(
                    recipe.weight_decay));
  }
  throw std::invalid_argument("unknown optimiser '" + recipe.optimizer + "' (adamw, sgd)");
}

namespace {

// The forward pass and loss of one batch, under autocast; adds distillation terms to `r`.
torch::Tensor batch_loss(Trainee &t, const torch::Tensor &x, const torch::Tensor &y,
                         const Recipe &recipe, torch::Tensor &logits, EpochResult &r) {
  AutocastScope autocast(t.device, t.precision);
  if (t.distiller != nullptr) {
    auto d = (*t.distiller)(*t.model, x, y, recipe.label_smoothing);
    logits = d.logits;
    r.kd += d.kd * x.size(0);
    r.attention += d.attention * x.size(0);
    r.hidden += d.hidden * x.size(0);
    return d.loss;
  }
  logits = t.forward(x);
  return F::cross_entropy(logits, y,
                          F::CrossEntropyFuncOptions().label_smoothing(recipe.label_smoothing));
}

}  // namespace

EpochResult train_one_epoch(Trainee &t, PrefetchLoader &loader, const Recipe &recipe,
                            const Schedule &schedule, int64_t &step, int epoch) {
  t.model->train();
  keep_frozen_in_eval(*t.model);  // a frozen backbone keeps its statistics (--freeze-backbone)
  EpochResult r;
  double loss_sum = 0;
  int64_t hits = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (auto batch = loader.next()) {
    const double lr = schedule.at(step);
    for (auto &g : t.optimizer->param_groups()) g.options().set_lr(lr);
    const auto x = batch->inputs.to(t.device), y = batch->labels.to(t.device);
    torch::Tensor logits;
    if (t.sync != nullptr) t.sync->before_forward();
    const auto loss = batch_loss(t, x, y, recipe, logits, r).to(torch::kFloat32);
    const double value = loss.item<double>();
    if (!std::isfinite(value)) {
      char msg[256];
      std::snprintf(msg, sizeof msg,
                    "the training loss is %g at epoch %d, step %lld (lr %.3g): training stopped. "
                    "Try a lower --lr, a longer --warmup-epochs or --clip-grad 1",
                    value, epoch, static_cast<long long>(step), lr);
      throw std::runtime_error(msg);
    }
    t.optimizer->zero_grad();
    const auto scaled = t.scaler.on ? loss * t.scaler.scale : loss;
    if (t.sync != nullptr) t.sync->before_backward(scaled);
    scaled.backward();
    if (t.sync != nullptr) t.sync->after_backward();
    if (t.scaler.unscale(t.params)) {
      if (recipe.clip_grad > 0) torch::nn::utils::clip_grad_norm_(t.params, recipe.clip_grad);
      t.optimizer->step();
    }
    ++step;
    const int64_t n = y.size(0);
    loss_sum += value * n;
    hits += logits.argmax(1).eq(y).sum().item<int64_t>();
    r.samples += n;
    r.lr = lr;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.wait = loader.wait_seconds();
  if (r.samples > 0) {
    r.loss = loss_sum / r.samples;
    r.acc = static_cast<double>(hits) / r.samples;
    r.kd /= r.samples;
    r.attention /= r.samples;
    r.hidden /= r.samples;
  }
  return r;
}

torch::Tensor eval_logits(Trainee &t, const EvalInputs &inputs, int64_t classes) {
  torch::NoGradGuard no_grad;
  t.model->eval();
  if (inputs.empty()) return torch::zeros({0, classes});
  constexpr int64_t kBatch = 32;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < inputs.x.size(0); i += kBatch) {
    const int64_t n = std::min(kBatch, inputs.x.size(0) - i);
    parts.push_back(
        t.forward(inputs.x.narrow(0, i, n).to(t.device)).to(torch::kCPU, torch::kFloat32));
  }
  return torch::cat(parts);
}

ClassificationMetrics evaluate(Trainee &t, const EvalInputs &inputs,
                               const std::vector<std::string> &classes) {
  ClassificationMetrics m(classes);
  if (inputs.empty()) return m;
  m.add(eval_logits(t, inputs, static_cast<int64_t>(classes.size())), inputs.y);
  return m;
}

}  // namespace vidcls::train
