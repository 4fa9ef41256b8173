#include "vidcls/train/transforms.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

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
                                          const ClipRecord &window, int64_t frames) {
  TORCH_CHECK(!sampled.empty(), "a video without sampled frames has no clip");
  std::vector<int64_t> out;
  out.reserve(frames);
  for (int64_t row : clip_rows(window.n_frames, static_cast<uint64_t>(frames))) {
    const uint64_t pos = std::min<uint64_t>(window.first_sample + row, sampled.size() - 1);
    out.push_back(sampled[pos]);
  }
  return out;
}

std::vector<ClipRecord> eval_windows(int64_t n_sampled, const ClipSpec &spec,
                                     int temporal_views) {
  auto all = clip_windows(n_sampled, spec.frames, spec.hop, EosPolicy::kPad);
  if (temporal_views <= 0 || static_cast<size_t>(temporal_views) >= all.size()) return all;
  std::vector<ClipRecord> out;
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
  const auto centre = preprocess_frames(frames_u8, spec);
  if (spatial_views == 1 || spec.resize != ResizeMode::kCrop) {
    return std::vector<torch::Tensor>(spatial_views, centre);
  }
  // The centre crop first (the single view), then the two ends of the long side.
  const ResizePlan plan = plan_resize(frames_u8.size(1), frames_u8.size(2), spec);
  const int64_t room_y = plan.resized_h - spec.height, room_x = plan.resized_w - spec.width;
  std::vector<torch::Tensor> out{centre};
  for (const bool far : {false, true}) {
    CropOffset at;  // centred on the short side
    if (room_x >= room_y) at.left = far ? room_x : 0;
    else at.top = far ? room_y : 0;
    out.push_back(preprocess_frames(frames_u8, spec, at));
  }
  return out;
}

ClipRecord random_window_record(int64_t n_sampled, int64_t frames, std::mt19937_64 &rng) {
  const int64_t last_start = std::max<int64_t>(0, n_sampled - frames);
  ClipRecord w;
  w.first_sample = std::uniform_int_distribution<int64_t>(0, last_start)(rng);
  w.n_frames = std::min<int64_t>(frames, n_sampled - static_cast<int64_t>(w.first_sample));
  return w;
}

std::vector<int64_t> random_window(const std::vector<int64_t> &sampled, int64_t frames,
                                   std::mt19937_64 &rng) {
  const auto w = random_window_record(static_cast<int64_t>(sampled.size()), frames, rng);
  return window_frame_indices(sampled, w, frames);
}

torch::Tensor train_clip(const torch::Tensor &frames_u8, const std::vector<int64_t> &sampled,
                         const ClipSpec &spec, const Augmentation &aug, std::mt19937_64 &rng,
                         Mirrors *applied) {
  const auto idx = random_window(sampled, spec.frames, rng);
  const auto frames = frames_u8.index_select(0, torch::tensor(idx, torch::kInt64));
  // The contract's own resize and normalisation, with a jittered short side and a random crop.
  ClipSpec jittered = spec;
  jittered.resize = ResizeMode::kCrop;
  const double s = std::uniform_real_distribution<double>(aug.min_scale, aug.max_scale)(rng);
  jittered.short_side = static_cast<int>(std::lround(spec.crop_short_side() * s));
  if (spec.fixed_resize()) {  // a fixed resize (torchvision's 171 x 128) is jittered as a whole
    jittered.resize_width =
        std::max(spec.width, static_cast<int>(std::lround(spec.resize_width * s)));
    jittered.resize_height =
        std::max(spec.height, static_cast<int>(std::lround(spec.resize_height * s)));
  }
  const ResizePlan plan = plan_resize(frames.size(1), frames.size(2), jittered);
  CropOffset at;
  at.top = std::uniform_int_distribution<int64_t>(0, plan.resized_h - spec.height)(rng);
  at.left = std::uniform_int_distribution<int64_t>(0, plan.resized_w - spec.width)(rng);
  auto x = preprocess_frames(frames, jittered, at);  // [T, 3, H, W]
  Mirrors done;
  auto coin = [&rng](bool enabled) {
    return enabled && std::uniform_int_distribution<int>(0, 1)(rng) == 1;
  };
  done.h = coin(aug.flip);
  done.v = coin(aug.vflip);
  done.t = coin(aug.reverse);
  std::vector<int64_t> dims;
  if (done.t) dims.push_back(0);
  if (done.v) dims.push_back(2);
  if (done.h) dims.push_back(3);
  if (!dims.empty()) x = x.flip(dims);
  if (applied != nullptr) *applied = done;
  return x.contiguous();
}

std::vector<int64_t> parse_label_swaps(const std::string &pairs,
                                       const std::vector<std::string> &classes,
                                       const std::string &option) {
  std::vector<int64_t> to(classes.size());
  for (size_t i = 0; i < to.size(); ++i) to[i] = static_cast<int64_t>(i);
  std::vector<bool> named(classes.size(), false);
  auto index_of = [&](const std::string &name) {
    const auto it = std::find(classes.begin(), classes.end(), name);
    if (it == classes.end()) {
      std::string known;
      for (const auto &c : classes) known += (known.empty() ? "" : ", ") + c;
      throw std::invalid_argument(option + ": no class '" + name + "' in the dataset (its " +
                                  "classes: " + known + ")");
    }
    const auto i = static_cast<size_t>(it - classes.begin());
    if (named[i]) throw std::invalid_argument(option + ": class '" + name + "' named twice");
    named[i] = true;
    return i;
  };
  size_t begin = 0;
  while (begin <= pairs.size()) {
    const size_t comma = std::min(pairs.find(',', begin), pairs.size());
    const std::string pair = pairs.substr(begin, comma - begin);
    const size_t colon = pair.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == pair.size() ||
        pair.find(':', colon + 1) != std::string::npos)
      throw std::invalid_argument(option + ": expected comma-separated pairs a:b of class "
                                  "names, got '" + pair + "'");
    const std::string a = pair.substr(0, colon), b = pair.substr(colon + 1);
    if (a == b) throw std::invalid_argument(option + ": '" + a + "' paired with itself");
    const size_t i = index_of(a), j = index_of(b);
    to[i] = static_cast<int64_t>(j);
    to[j] = static_cast<int64_t>(i);
    begin = comma + 1;
  }
  return to;
}

int64_t LabelSwaps::operator()(int64_t label, const Mirrors &applied) const {
  if (applied.h && !h.empty()) label = h.at(label);
  if (applied.v && !v.empty()) label = v.at(label);
  if (applied.t && !t.empty()) label = t.at(label);
  return label;
}

}  // namespace vidcls::train
