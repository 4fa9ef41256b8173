#include "precision.h"

#include <stdexcept>

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace vidcls::train {

namespace {

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

}  // namespace

AutocastScope::AutocastScope(const torch::Device &device, torch::ScalarType dtype)
    : on_(dtype != torch::kFloat32), cuda_(device.is_cuda()) {
  if (!on_) return;
  before_ = autocast_state(cuda_);
  set_autocast_state(cuda_, {true, dtype});
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!on_) return;
  set_autocast_state(cuda_, before_);
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
}

bool LossScaler::unscale(const std::vector<torch::Tensor> &params) {
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

torch::ScalarType precision_dtype(const std::string &precision, const torch::Device &device) {
  if (precision == "fp32") return torch::kFloat32;
  if (precision == "bf16") return torch::kBFloat16;
  if (precision == "fp16") {
    if (!device.is_cuda()) {
      throw std::invalid_argument(
          "--precision fp16 needs --device cuda (on the CPU, autocast "
          "computes in bf16 only: use --precision bf16)");
    }
    return torch::kHalf;
  }
  throw std::invalid_argument("unknown --precision '" + precision + "' (fp32, bf16, fp16)");
}

}  // namespace vidcls::train
