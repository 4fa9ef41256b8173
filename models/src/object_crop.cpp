#include "vidcls/object_crop.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace vidcls {

namespace {

// One axis of a region: centre `c` and extent `e` (finite, > 0) on an axis of `n` pixels ->
// start and length, the extent kept and moved inside [0, n) where it fits, else all of [0, n).
std::pair<int64_t, int64_t> fit_axis(double c, double e, int64_t n) {
  if (e >= static_cast<double>(n)) return {0, n};
  const int64_t len = std::clamp<int64_t>(std::llround(e), 1, n);
  const double start = std::clamp(c - e / 2, 0.0, static_cast<double>(n - len));
  return {std::clamp<int64_t>(std::llround(start), 0, n - len), len};
}

}  // namespace

std::optional<PixelRect> object_region(const Box &box, int64_t H, int64_t W,
                                       const ObjectCrop &rule) {
  if (H < 1 || W < 1) return std::nullopt;
  if (!std::isfinite(box.x) || !std::isfinite(box.y) || !std::isfinite(box.w) ||
      !std::isfinite(box.h) || !(box.w > 0) || !(box.h > 0))
    return std::nullopt;
  // No overlap with the frame: nothing of the object is in it.
  if (box.x >= W || box.y >= H || box.x + box.w <= 0 || box.y + box.h <= 0) return std::nullopt;
  const double grow = 1.0 + 2.0 * std::max(0.0, rule.margin);
  double ew = box.w * grow, eh = box.h * grow;
  if (!std::isfinite(ew) || !std::isfinite(eh)) return std::nullopt;
  if (rule.square) ew = eh = std::max(ew, eh);
  const auto [top, height] = fit_axis(box.y + box.h / 2, eh, H);
  const auto [left, width] = fit_axis(box.x + box.w / 2, ew, W);
  return PixelRect{top, left, height, width};
}

void preprocess_region_into(const torch::Tensor &frame, const PixelRect &r, const ClipSpec &spec,
                            torch::Tensor out) {
  TORCH_CHECK(frame.dim() == 3, "expected an RGB uint8 frame [H, W, 3], got ", frame.sizes());
  TORCH_CHECK(r.top >= 0 && r.left >= 0 && r.height >= 1 && r.width >= 1 &&
                  r.top + r.height <= frame.size(0) && r.left + r.width <= frame.size(1),
              "region ", r.top, ",", r.left, " ", r.height, "x", r.width,
              " is not inside a frame of ", frame.size(0), "x", frame.size(1));
  const auto view = frame.narrow(0, r.top, r.height).narrow(1, r.left, r.width).unsqueeze(0);
  preprocess_frames_into(view, spec, out.unsqueeze(0));
}

torch::Tensor preprocess_regions(const torch::Tensor &frames, const std::vector<PixelRect> &regions,
                                 const ClipSpec &spec) {
  TORCH_CHECK(frames.dim() == 4, "expected RGB uint8 frames [N, H, W, 3], got ", frames.sizes());
  TORCH_CHECK(static_cast<size_t>(frames.size(0)) == regions.size(), frames.size(0), " frames but ",
              regions.size(), " regions");
  auto out = torch::empty({frames.size(0), 3, spec.height, spec.width},
                          torch::TensorOptions().dtype(torch::kFloat32).device(frames.device()));
  for (int64_t i = 0; i < frames.size(0); ++i)
    preprocess_region_into(frames[i], regions[i], spec, out[i]);
  return out;
}

}  // namespace vidcls
