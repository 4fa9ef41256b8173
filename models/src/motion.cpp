#include "vidcls/motion.h"

#include <utility>
#include <vector>

#include <torch/nn/functional/padding.h>

namespace F = torch::nn::functional;

namespace vidcls {

namespace {

// The translation (u, v) per pair [N, 1, 1, 1] that explains most of the temporal difference dt
// through I_x u + I_y v + I_t = 0: least squares over the whole frame, then reweighted (Cauchy
// weights, scale from the median residual) so that what moves on its own -- the object, moving
// clutter -- stops pulling.
std::pair<torch::Tensor, torch::Tensor> global_translation(const torch::Tensor &gx,
                                                           const torch::Tensor &gy,
                                                           const torch::Tensor &dt) {
  constexpr int kIterations = 3;
  constexpr double kRidge = 1e-3;    // keeps the 2x2 system solvable on a flat frame
  constexpr double kMaxShift = 4.0;  // pixels per sampled frame, as the normal flow's bound
  const std::vector<int64_t> pix = {1, 2, 3};
  const int64_t N = dt.size(0);
  auto w = torch::ones_like(dt.narrow(1, 0, 1));
  torch::Tensor u, v;
  for (int it = 0; it < kIterations; ++it) {
    const auto sxx = (w * gx * gx).sum(pix, true) + kRidge;
    const auto syy = (w * gy * gy).sum(pix, true) + kRidge;
    const auto sxy = (w * gx * gy).sum(pix, true);
    const auto bx = -(w * gx * dt).sum(pix, true), by = -(w * gy * dt).sum(pix, true);
    const auto det = sxx * syy - sxy * sxy;
    u = ((syy * bx - sxy * by) / det).clamp(-kMaxShift, kMaxShift);
    v = ((sxx * by - sxy * bx) / det).clamp(-kMaxShift, kMaxShift);
    const auto r = (gx * u + gy * v + dt).abs().sum(1, true);  // [N, 1, H, W]
    const auto scale = std::get<0>(r.flatten(1).median(1)).view({N, 1, 1, 1}) * 2.5 + 1e-6;
    w = 1.0 / (1.0 + (r / scale).pow(2));
  }
  return {u, v};
}

// The normal flow [N, 2, H, W] of `later` against `earlier` and the temporal difference it was
// computed from [N, C, H, W] (with `stabilise`, after the global translation was taken out).
std::pair<torch::Tensor, torch::Tensor> flow_and_difference(const torch::Tensor &earlier,
                                                            const torch::Tensor &later,
                                                            bool stabilise) {
  TORCH_CHECK(earlier.dim() == 4 && earlier.sizes() == later.sizes(),
              "normal flow needs two frame batches [N, C, H, W] of one shape, got ",
              earlier.sizes(), " and ", later.sizes());
  // kEps keeps flat regions (gradient ~ noise) near zero; kMaxFlow bounds what occlusions and
  // noise produce.
  constexpr double kEps = 0.05;     // in squared normalised units per pixel
  constexpr double kMaxFlow = 4.0;  // pixels per sampled frame
  auto dt = later - earlier;
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
  if (stabilise) {
    const auto [gu, gv] = global_translation(gx, gy, dt);
    dt = dt + gx * gu + gy * gv;
  }
  const auto den = (gx * gx + gy * gy).sum(1, true) + kEps;
  const auto u = -(dt * gx).sum(1, true) / den, v = -(dt * gy).sum(1, true) / den;
  return {torch::cat({u, v}, 1).clamp(-kMaxFlow, kMaxFlow), dt};
}

}  // namespace

torch::Tensor normal_flow(const torch::Tensor &earlier, const torch::Tensor &later,
                          bool stabilise) {
  return flow_and_difference(earlier, later, stabilise).first;
}

torch::Tensor pair_motion(const torch::Tensor &earlier, const torch::Tensor &later,
                          bool stabilise) {
  const auto [flow, dt] = flow_and_difference(earlier, later, stabilise);
  return torch::cat({flow, dt.mean(1, true)}, 1);
}

}  // namespace vidcls
