#include "vidcls/train/transforms.h"

#include <algorithm>
#include <cmath>

#include <torch/nn/functional/upsampling.h>

namespace F = torch::nn::functional;

namespace vidcls::train {

std::vector<int64_t> sampled_frame_indices(const int64_t *pts_ns, int64_t n, const ClipSpec &spec,
                                           double fps) {
  FrameSampler sampler;
  // The clipper gets the rate as a fraction from the caps; milli-fps is exact for the usual ones.
  const int fps_n = fps > 0 ? static_cast<int>(std::lround(fps * 1000.0)) : 0;
  sampler.configure(spec, fps_n, fps > 0 ? 1000 : 1);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t pts = pts_ns[i] < 0 ? kNoTimestamp : static_cast<uint64_t>(pts_ns[i]);
    if (sampler.take(pts)) out.push_back(i);
  }
  return out;
}

std::vector<int64_t> sampled_frame_indices(const torch::Tensor &pts_ns, const ClipSpec &spec,
                                           double fps) {
  TORCH_CHECK(pts_ns.dim() == 1 && pts_ns.scalar_type() == torch::kInt64,
              "expected int64 timestamps [N], got ", pts_ns.sizes());
  const auto pts = pts_ns.contiguous();
  return sampled_frame_indices(pts.data_ptr<int64_t>(), pts.size(0), spec, fps);
}

std::vector<int64_t> window_frame_indices(const std::vector<int64_t> &sampled,
                                          const ClipWindow &window, int64_t frames) {
  TORCH_CHECK(!sampled.empty(), "a video without sampled frames has no clip");
  std::vector<int64_t> out;
  out.reserve(frames);
  for (int64_t t = 0; t < frames; ++t) {
    const uint64_t have = std::max<uint64_t>(1, window.n_frames);
    const uint64_t pos = std::min<uint64_t>(window.first_sample + std::min<uint64_t>(t, have - 1),
                                            sampled.size() - 1);
    out.push_back(sampled[pos]);
  }
  return out;
}

std::vector<ClipWindow> eval_windows(int64_t n_sampled, const ClipSpec &spec,
                                     int temporal_views) {
  auto all = clip_windows(n_sampled, spec.frames, spec.hop, EosPolicy::kPad);
  if (temporal_views <= 0 || static_cast<size_t>(temporal_views) >= all.size()) return all;
  std::vector<ClipWindow> out;
  const size_t k = temporal_views, n = all.size();
  for (size_t i = 0; i < k; ++i) {
    out.push_back(all[k == 1 ? 0 : (i * (n - 1) + (k - 1) / 2) / (k - 1)]);
  }
  return out;
}

std::vector<torch::Tensor> eval_crops(const torch::Tensor &frames_u8, const ClipSpec &spec,
                                      int spatial_views) {
  TORCH_CHECK(spatial_views == 1 || spatial_views == 3, "spatial views must be 1 or 3, got ",
              spatial_views);
  if (spatial_views == 1 || spec.resize != ResizeMode::kCrop) {
    return std::vector<torch::Tensor>(spatial_views, preprocess_frames(frames_u8, spec));
  }
  // The whole frame after preprocess_frames' resize, then crops out of it: the centre one is
  // the single-view clip, exactly.
  const int64_t H = frames_u8.size(1), W = frames_u8.size(2);
  const int64_t side = spec.short_side > 0 ? spec.short_side : std::max(spec.height, spec.width);
  const double scale = static_cast<double>(side) / static_cast<double>(std::min(H, W));
  auto scaled = [scale](int64_t n) {
    return std::max<int64_t>(1, static_cast<int64_t>(std::lround(n * scale)));
  };
  ClipSpec whole = spec;
  whole.short_side = static_cast<int>(side);
  whole.height = static_cast<int>(std::max<int64_t>(spec.height, scaled(H)));
  whole.width = static_cast<int>(std::max<int64_t>(spec.width, scaled(W)));
  const auto full = preprocess_frames(frames_u8, whole);
  const int64_t nh = full.size(2), nw = full.size(3), h = spec.height, w = spec.width;
  std::vector<torch::Tensor> out;
  const bool along_width = nw - w >= nh - h;
  const int64_t room = along_width ? nw - w : nh - h;
  for (int64_t start : {int64_t{0}, room / 2, room}) {
    const int64_t top = along_width ? (nh - h) / 2 : start;
    const int64_t left = along_width ? start : (nw - w) / 2;
    out.push_back(full.narrow(2, top, h).narrow(3, left, w).contiguous());
  }
  std::swap(out[0], out[1]);  // the centre crop first, as the single view
  return out;
}

std::vector<int64_t> random_window(const std::vector<int64_t> &sampled, int64_t frames,
                                   std::mt19937_64 &rng) {
  const int64_t n = static_cast<int64_t>(sampled.size());
  const int64_t last_start = std::max<int64_t>(0, n - frames);
  const int64_t first = std::uniform_int_distribution<int64_t>(0, last_start)(rng);
  ClipWindow w;
  w.first_sample = first;
  w.n_frames = std::min<int64_t>(frames, n - first);
  return window_frame_indices(sampled, w, frames);
}

torch::Tensor train_clip(const torch::Tensor &frames_u8, const std::vector<int64_t> &sampled,
                         const ClipSpec &spec, const Augmentation &aug, std::mt19937_64 &rng) {
  const auto idx = random_window(sampled, spec.frames, rng);
  auto x = frames_u8.index_select(0, torch::tensor(idx, torch::kInt64))
               .permute({0, 3, 1, 2})
               .to(torch::kFloat32);
  const int64_t H = x.size(2), W = x.size(3), h = spec.height, w = spec.width;
  const int64_t side = spec.short_side > 0 ? spec.short_side : std::max(h, w);
  const double s = std::uniform_real_distribution<double>(aug.min_scale, aug.max_scale)(rng);
  const double scale = side * s / static_cast<double>(std::min(H, W));
  const int64_t nh = std::max(h, static_cast<int64_t>(std::lround(H * scale)));
  const int64_t nw = std::max(w, static_cast<int64_t>(std::lround(W * scale)));
  if (nh != H || nw != W) {
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{nh, nw})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(nh < H || nw < W));
  }
  const int64_t top = std::uniform_int_distribution<int64_t>(0, nh - h)(rng);
  const int64_t left = std::uniform_int_distribution<int64_t>(0, nw - w)(rng);
  x = x.narrow(2, top, h).narrow(3, left, w);
  if (aug.flip && std::uniform_int_distribution<int>(0, 1)(rng) == 1) x = x.flip({3});
  auto mean = torch::tensor({spec.mean[0], spec.mean[1], spec.mean[2]}).mul_(255.0f).view({1, 3, 1, 1});
  auto std = torch::tensor({spec.std[0], spec.std[1], spec.std[2]}).mul_(255.0f).view({1, 3, 1, 1});
  return ((x - mean) / std).contiguous();
}

}  // namespace vidcls::train
