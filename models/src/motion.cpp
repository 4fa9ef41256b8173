#include "vidcls/motion.h"

#include <vector>

#include <torch/nn/functional/padding.h>

namespace F = torch::nn::functional;

namespace vidcls {

torch::Tensor normal_flow(const torch::Tensor &earlier, const torch::Tensor &later) {
  TORCH_CHECK(earlier.dim() == 4 && earlier.sizes() == later.sizes(),
              "normal flow needs two frame batches [N, C, H, W] of one shape, got ",
              earlier.sizes(), " and ", later.sizes());
  // kEps keeps flat regions (gradient ~ noise) near zero; kMaxFlow bounds what occlusions and
  // noise produce.
  constexpr double kEps = 0.05;     // in squared normalised units per pixel
  constexpr double kMaxFlow = 4.0;  // pixels per sampled frame
  const auto dt = later - earlier;
  const auto m = (earlier + later) * 0.5;
  auto central = [&](int64_t dim) {
    const int64_t n = m.size(dim);
    if (n < 3) return torch::zeros_like(m);
    const auto d = (m.narrow(dim, 2, n - 2) - m.narrow(dim, 0, n - 2)) * 0.5;
    const std::vector<int64_t> pad = dim == 3 ? std::vector<int64_t>{1, 1}
                                               : std::vector<int64_t>{0, 0, 1, 1};
    return F::pad(d, F::PadFuncOptions(pad));
  };
  const auto gx = central(3), gy = central(2);
  const auto den = (gx * gx + gy * gy).sum(1, true) + kEps;
  const auto u = -(dt * gx).sum(1, true) / den, v = -(dt * gy).sum(1, true) / den;
  return torch::cat({u, v}, 1).clamp(-kMaxFlow, kMaxFlow);
}

torch::Tensor pair_motion(const torch::Tensor &earlier, const torch::Tensor &later) {
  const auto flow = normal_flow(earlier, later);
  return torch::cat({flow, (later - earlier).mean(1, true)}, 1);
}

}  // namespace vidcls
