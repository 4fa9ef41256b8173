// Mixed precision for the training forward passes: autocast as torch.autocast does it (both
// LibTorch APIs: 1.13 and >= 2.4), and dynamic loss scaling for float16.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace vidcls::train {

// "fp32", "bf16" or "fp16" as the dtype the forward passes autocast to; fp16 needs CUDA.
// Throws std::invalid_argument saying what to use instead.
torch::ScalarType precision_dtype(const std::string &precision, const torch::Device &device);

// Autocast on or off, and its dtype, for CUDA or the CPU.
struct AutocastState {
  bool on;
  torch::ScalarType dtype;
};

// Autocast for the forward pass of a training step: on for the scope, the previous state
// restored and the cast cache cleared after it. The backward pass runs outside, in the dtypes
// autocast chose. float32 leaves autocast alone.
class AutocastScope {
 public:
  AutocastScope(const torch::Device &device, torch::ScalarType dtype);
  ~AutocastScope();
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
  bool unscale(const std::vector<torch::Tensor> &params);
};

}  // namespace vidcls::train
