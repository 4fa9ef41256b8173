#include "vidcls/train/feature_cache.h"

#include <algorithm>

#include <torch/utils.h>

#include "vidcls/clip_sampling.h"

namespace vidcls::train {

torch::Tensor sampled_frame_features(PerFrameBackbone &net, const torch::Tensor &frames_u8,
                                     const std::vector<int64_t> &sampled, const ClipSpec &spec,
                                     const torch::Device &device) {
  TORCH_CHECK(!sampled.empty(), "a video without sampled frames has no features");
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(sampled.size());
  std::vector<int64_t> later(sampled), earlier(n + 1);
  later.push_back(sampled.back());
  for (int64_t j = 0; j <= n; ++j) earlier[j] = sampled[std::clamp<int64_t>(j - 1, 0, n - 1)];
  earlier[n] = sampled.back();
  constexpr int64_t kChunk = 64;
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i <= n; i += kChunk) {
    const int64_t m = std::min(kChunk, n + 1 - i);
    auto pick = [&](const std::vector<int64_t> &idx) {
      const std::vector<int64_t> rows(idx.begin() + i, idx.begin() + i + m);
      return preprocess_frames(frames_u8.index_select(0, torch::tensor(rows, torch::kInt64)), spec)
          .to(device);
    };
    const auto x = pick(later);
    const auto f =
        net.frame_context() > 0 ? net.frame_features(x, pick(earlier)) : net.frame_features(x);
    parts.push_back(f.to(torch::kCPU));
  }
  return torch::cat(parts);
}

torch::Tensor feature_rows(const ClipRecord &window, int64_t n_sampled, int64_t clip_frames,
                           int64_t context) {
  const auto rows = clip_rows(window.n_frames, static_cast<uint64_t>(clip_frames));
  std::vector<int64_t> pos(rows.size()), out;
  for (size_t k = 0; k < rows.size(); ++k)
    pos[k] = std::min<int64_t>(static_cast<int64_t>(window.first_sample) + rows[k], n_sampled - 1);
  for (int64_t k = context; k < clip_frames; ++k) {
    // Only a window's padding repeats a frame, and it pads with the video's last sampled one.
    const bool still = context > 0 && pos[k - 1] == pos[k];
    TORCH_CHECK(!still || pos[k] == n_sampled - 1, "a repeated frame inside a video's window");
    out.push_back(still ? n_sampled : pos[k]);
  }
  return torch::tensor(out, torch::kInt64);
}

}  // namespace vidcls::train
