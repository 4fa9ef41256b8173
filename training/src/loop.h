// The training loop as free functions over a model, a loader and an optimiser: one epoch of
// optimiser steps (train_one_epoch) and the clean evaluation of precomputed inputs (evaluate).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "distill.h"
#include "precision.h"
#include "vidcls/classifier.h"
#include "vidcls/train/metrics.h"
#include "vidcls/train/prefetch.h"
#include "vidcls/train/trainer.h"

namespace vidcls::train {

// Learning rate per optimiser step: linear warmup to the peak, then cosine decay to 0.
struct Schedule {
  double peak = 1e-3;
  int64_t warmup_steps = 0, total_steps = 1;
  double at(int64_t step) const;  // step is 0-based
};

// The model's forward pass as training runs it: the whole model, or its temporal part on
// cached per-frame features.
using Forward = std::function<torch::Tensor(const torch::Tensor &)>;

// Gradient synchronisation between the processes of a data-parallel run, called around every
// step (distributed.h implements it on c10d).
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual void before_forward() = 0;
  virtual void before_backward(const torch::Tensor &loss) = 0;  // the loss backward() starts at
  virtual void after_backward() = 0;  // gradients are averaged over the ranks when this returns
};

// What optimiser steps work on.
struct Trainee {
  VideoClassifierImpl *model = nullptr;
  Forward forward;
  torch::optim::Optimizer *optimizer = nullptr;
  std::vector<torch::Tensor> params;  // the trainable ones
  const Distiller *distiller = nullptr;
  torch::Device device{torch::kCPU};
  torch::ScalarType precision = torch::kFloat32;
  LossScaler scaler;
  GradientSync *sync = nullptr;  // data-parallel runs
};

struct EpochResult {
  double loss = 0, acc = 0, lr = 0, seconds = 0, wait = 0;
  int64_t samples = 0;
  double kd = 0, attention = 0, hidden = 0;  // distillation terms, per-sample means
};

// AdamW, or SGD with momentum 0.9 (nesterov), over `params` at the recipe's peak rate.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const Recipe &recipe,
                                                        const std::vector<torch::Tensor> &params);

// One epoch of steps over `loader`; `step` counts optimiser steps across epochs. Throws
// std::runtime_error with what to try when the loss is not finite.
EpochResult train_one_epoch(Trainee &t, PrefetchLoader &loader, const Recipe &recipe,
                            const Schedule &schedule, int64_t &step, int epoch);

// Clean inputs of one side of the split, one clip per video, and their labels.
struct EvalInputs {
  torch::Tensor x, y;
  bool empty() const { return !x.defined() || x.size(0) == 0; }
};

// The model's float32 CPU logits (eval mode, no autograd) of every input, in batches; [0, classes]
// when there are none.
torch::Tensor eval_logits(Trainee &t, const EvalInputs &inputs, int64_t classes);

// The model (eval mode, no autograd) on every input, in batches.
ClassificationMetrics evaluate(Trainee &t, const EvalInputs &inputs,
                               const std::vector<std::string> &classes);

}  // namespace vidcls::train
