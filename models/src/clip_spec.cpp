#include "vidcls/clip_spec.h"

#include "vidcls/clip_sampling.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>
#include <nlohmann/json.hpp>

namespace F = torch::nn::functional;

namespace vidcls {

void ClipSpec::validate() const {
  auto fail = [](const std::string &msg) { throw std::invalid_argument("clip spec: " + msg); };
  if (frames < 1) fail("frames must be >= 1, got " + std::to_string(frames));
  if (frame_stride < 1) fail("frame_stride must be >= 1, got " + std::to_string(frame_stride));
  if (!(sample_rate >= 0) || !std::isfinite(sample_rate))
    fail("sample_rate must be >= 0 frames per second");
  if (hop < 1) fail("hop must be >= 1, got " + std::to_string(hop));
  if (width < 1 || height < 1) fail("width and height must be >= 1");
  if (short_side < 0) fail("short_side must be >= 0");
  if (resize_width < 0 || resize_height < 0 || (resize_width > 0) != (resize_height > 0))
    fail("resize_width and resize_height must be both 0 or both > 0");
  if (fixed_resize() && (resize_width < width || resize_height < height))
    fail("resize_width x resize_height must hold the width x height crop");
  for (float s : std) {
    if (!(s > 0)) fail("std values must be > 0");
  }
  if (!(object.margin >= 0 && object.margin <= 4)) fail("object margin must be in [0, 4]");
}

bool same_clip_spec(const ClipSpec &a, const ClipSpec &b) {
  return a.frames == b.frames && a.width == b.width && a.height == b.height &&
         a.frame_stride == b.frame_stride && a.sample_rate == b.sample_rate && a.hop == b.hop &&
         a.short_side == b.short_side && a.resize_width == b.resize_width &&
         a.resize_height == b.resize_height && a.antialias == b.antialias && a.resize == b.resize &&
         a.mean == b.mean && a.std == b.std && a.object.margin == b.object.margin &&
         a.object.square == b.object.square;
}

std::string to_string(ResizeMode mode) {
  switch (mode) {
    case ResizeMode::kCrop:
      return "crop";
    case ResizeMode::kLetterbox:
      return "letterbox";
    case ResizeMode::kStretch:
      return "stretch";
  }
  return "crop";
}

ResizeMode resize_mode_from_string(const std::string &name) {
  if (name == "crop") return ResizeMode::kCrop;
  if (name == "letterbox") return ResizeMode::kLetterbox;
  if (name == "stretch") return ResizeMode::kStretch;
  throw std::invalid_argument("unknown resize mode '" + name +
                              "' (expected crop, letterbox or stretch)");
}

void to_json(nlohmann::json &j, const ClipSpec &s) {
  j = {{"frames", s.frames},
       {"frame_stride", s.frame_stride},
       {"sample_rate", s.sample_rate},
       {"hop", s.hop},
       {"width", s.width},
       {"height", s.height},
       {"short_side", s.short_side},
       {"resize_width", s.resize_width},
       {"resize_height", s.resize_height},
       {"resize", to_string(s.resize)},
       {"antialias", s.antialias},
       {"mean", s.mean},
       {"std", s.std},
       {"object", {{"margin", s.object.margin}, {"square", s.object.square}}},
       {"layout", ClipSpec::kLayout},
       {"dtype", "float32"},
       {"color", "RGB"}};
}

void from_json(const nlohmann::json &j, ClipSpec &s) {
  auto opt = [&j](const char *key, auto &out) {
    if (auto it = j.find(key); it != j.end()) it->get_to(out);
  };
  opt("frames", s.frames);
  opt("frame_stride", s.frame_stride);
  opt("sample_rate", s.sample_rate);
  opt("hop", s.hop);
  opt("width", s.width);
  opt("height", s.height);
  opt("short_side", s.short_side);
  opt("resize_width", s.resize_width);
  opt("resize_height", s.resize_height);
  opt("antialias", s.antialias);
  if (auto it = j.find("resize"); it != j.end())
    s.resize = resize_mode_from_string(it->get<std::string>());
  opt("mean", s.mean);
  opt("std", s.std);
  if (auto it = j.find("object"); it != j.end()) {  // absent in checkpoints before per-object clips
    if (auto m = it->find("margin"); m != it->end()) m->get_to(s.object.margin);
    if (auto q = it->find("square"); q != it->end()) q->get_to(s.object.square);
  }
  if (auto it = j.find("layout"); it != j.end() && it->get<std::string>() != ClipSpec::kLayout) {
    throw std::invalid_argument("clip spec: unsupported layout '" + it->get<std::string>() + "'");
  }
}

std::array<float, 3> ClipSpec::pixel_mean() const {
  return {mean[0] * 255.0f, mean[1] * 255.0f, mean[2] * 255.0f};
}

std::array<float, 3> ClipSpec::pixel_std() const {
  return {std[0] * 255.0f, std[1] * 255.0f, std[2] * 255.0f};
}

namespace {

int64_t scaled(int64_t n, double scale) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::lround(n * scale)));
}

// Half of `room`, a half pixel rounded to the even neighbour (Python's round(), which
// torchvision's center_crop uses), so a centred crop is the publisher's crop.
int64_t centre_offset(int64_t room) {
  const int64_t half = room / 2;
  return room % 2 == 1 && half % 2 == 1 ? half + 1 : half;
}

}  // namespace

std::pair<int64_t, int64_t> short_side_size(int64_t H, int64_t W, int64_t short_side) {
  // Integer arithmetic, as torchvision's int(short_side * long / short) (exact for these sizes).
  const int64_t s = std::min(H, W), l = std::max(H, W);
  const int64_t long_side = std::max<int64_t>(1, short_side * l / s);
  if (H <= W) return {short_side, long_side};
  return {long_side, short_side};
}

ResizePlan plan_resize(int64_t H, int64_t W, const ClipSpec &spec, CropOffset crop) {
  const int64_t h = spec.height, w = spec.width;
  ResizePlan p{h, w, false, 0, 0, h, w, 0, 0};
  switch (spec.resize) {
    case ResizeMode::kStretch:
      break;
    case ResizeMode::kCrop: {
      const auto [sh, sw] = spec.fixed_resize()
                                ? std::pair<int64_t, int64_t>{spec.resize_height, spec.resize_width}
                                : short_side_size(H, W, spec.crop_short_side());
      p.resized_h = std::max(h, sh);
      p.resized_w = std::max(w, sw);
      const int64_t room_y = p.resized_h - h, room_x = p.resized_w - w;
      p.top = crop.top < 0 ? centre_offset(room_y) : std::min(crop.top, room_y);
      p.left = crop.left < 0 ? centre_offset(room_x) : std::min(crop.left, room_x);
      break;
    }
    case ResizeMode::kLetterbox: {
      const double scale = std::min(static_cast<double>(h) / H, static_cast<double>(w) / W);
      p.resized_h = std::min(h, scaled(H, scale));
      p.resized_w = std::min(w, scaled(W, scale));
      p.rows = p.resized_h;
      p.cols = p.resized_w;
      p.out_top = (h - p.resized_h) / 2;
      p.out_left = (w - p.resized_w) / 2;
      break;
    }
  }
  p.antialias = spec.antialias && (p.resized_h < H || p.resized_w < W);
  return p;
}

namespace {

// Output size and per-channel normalisation of one resampling: out = (resized - mean) / std.
struct Target {
  int64_t h, w;
  std::array<float, 3> mean, std;
};

Target model_input(const ClipSpec &spec) {
  return {spec.height, spec.width, spec.pixel_mean(), spec.pixel_std()};
}

// The generic path (any device): torch ops.
torch::Tensor resample_torch(const torch::Tensor &frames, const ResizePlan &p, const Target &t) {
  auto x = frames.permute({0, 3, 1, 2}).to(torch::kFloat32);
  auto mean = torch::tensor({t.mean[0], t.mean[1], t.mean[2]}, x.options()).view({1, 3, 1, 1});
  auto std = torch::tensor({t.std[0], t.std[1], t.std[2]}, x.options()).view({1, 3, 1, 1});
  if (x.size(2) != p.resized_h || x.size(3) != p.resized_w) {
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{p.resized_h, p.resized_w})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(p.antialias));
  }
  x = (x.narrow(2, p.top, p.rows).narrow(3, p.left, p.cols) - mean) / std;
  if (p.rows == t.h && p.cols == t.w) return x.contiguous();
  // Normalised, the mean colour is zero.
  return F::pad(x, F::PadFuncOptions({p.out_left, t.w - p.cols - p.out_left, p.out_top,
                                      t.h - p.rows - p.out_top}))
      .contiguous();
}

// One axis of a resize from `in` to `out` samples as sparse taps: output o reads inputs
// first[o] .. first[o] + width - 1 with weight[o * width + k] (zero where it reads nothing).
struct Taps {
  int64_t width = 1;
  std::vector<int64_t> first;
  std::vector<float> weight;
};

// The weights are read off PyTorch's own interpolate applied to the identity (in chunks of basis
// vectors), so the CPU path below computes the same sums as preprocess_torch, up to the order
// of the float additions.
Taps make_taps(int64_t in, int64_t out, bool antialias) {
  auto m = torch::empty({in, out}, torch::kFloat32);
  constexpr int64_t kChunk = 256;
  for (int64_t i = 0; i < in; i += kChunk) {
    const int64_t n = std::min(kChunk, in - i);
    auto basis = torch::zeros({n, in}, torch::kFloat32);
    basis.narrow(1, i, n).copy_(torch::eye(n, torch::kFloat32));
    const auto r = F::interpolate(basis.view({1, n, 1, in}), F::InterpolateFuncOptions()
                                                                 .size(std::vector<int64_t>{1, out})
                                                                 .mode(torch::kBilinear)
                                                                 .align_corners(false)
                                                                 .antialias(antialias));
    m.narrow(0, i, n).copy_(r.view({n, out}));
  }
  auto a = m.accessor<float, 2>();
  Taps t;
  t.first.assign(out, 0);
  for (int64_t o = 0; o < out; ++o) {
    int64_t lo = in, hi = -1;
    for (int64_t i = 0; i < in; ++i) {
      if (a[i][o] != 0.0f) {
        lo = std::min(lo, i);
        hi = i;
      }
    }
    if (hi < 0) lo = hi = 0;
    t.first[o] = lo;
    t.width = std::max(t.width, hi - lo + 1);
  }
  t.weight.assign(out * t.width, 0.0f);
  for (int64_t o = 0; o < out; ++o) {
    t.first[o] = std::min(t.first[o], in - t.width);  // keep every tap inside the input
    for (int64_t k = 0; k < t.width; ++k) t.weight[o * t.width + k] = a[t.first[o] + k][o];
  }
  return t;
}

std::shared_ptr<const Taps> taps(int64_t in, int64_t out, bool antialias) {
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, bool>, std::shared_ptr<const Taps>> cache;
  const auto key = std::make_tuple(in, out, antialias);
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  auto t = std::make_shared<const Taps>(make_taps(in, out, antialias));
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() >= 64) cache.clear();  // a stream uses a handful of sizes
  return cache.emplace(key, t).first->second;
}

// One resized row: row[q] = sum_k wy[k] * src[k * s_row + q] over `bytes` contiguous bytes of
// pixels (RGB, or RGBx read whole: faster than picking three bytes of four).
void vertical_pass(const uint8_t *src, int64_t s_row, const float *wy, int64_t taps, int64_t bytes,
                   float *row) {
  for (int64_t q = 0; q < bytes; ++q) row[q] = 0.0f;
  for (int64_t k = 0; k < taps; ++k) {
    const float wk = wy[k];
    if (wk == 0.0f) continue;
    const uint8_t *s = src + k * s_row;
    for (int64_t q = 0; q < bytes; ++q) row[q] += wk * static_cast<float>(s[q]);
  }
}

// One output row of each channel from a resized row of pixels S values apart, normalised.
template <int64_t S>
void horizontal_pass(const float *row, const Taps &tx, int64_t x0, int64_t left, int64_t cols,
                     const float *mean, const float *std, float *d0, float *d1, float *d2) {
  for (int64_t col = 0; col < cols; ++col) {
    const int64_t oc = left + col;
    const float *wx = &tx.weight[oc * tx.width];
    const float *s = row + (tx.first[oc] - x0) * S;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f;
    for (int64_t k = 0; k < tx.width; ++k, s += S) {
      a0 += wx[k] * s[0];
      a1 += wx[k] * s[1];
      a2 += wx[k] * s[2];
    }
    d0[col] = (a0 - mean[0]) / std[0];
    d1[col] = (a1 - mean[1]) / std[1];
    d2[col] = (a2 - mean[2]) / std[2];
  }
}

// CPU path: the separable resize straight from the uint8 pixels, rows first and only the rows and
// columns that are kept, then the normalisation, into [N, 3, h, w]. A frame never becomes float
// at its full size.
void resample_cpu(const torch::Tensor &frames_in, const ResizePlan &p, const Target &t,
                  torch::Tensor &out) {
  // Rows and pixels may be strided (a packed RGBx frame viewed as RGB); channels are adjacent.
  const auto frames =
      frames_in.stride(3) == 1 && (frames_in.stride(2) == 3 || frames_in.stride(2) == 4)
          ? frames_in
          : frames_in.contiguous();
  const int64_t N = frames.size(0), H = frames.size(1), W = frames.size(2);
  const int64_t s_frame = frames.stride(0), s_row = frames.stride(1), s_px = frames.stride(2);
  const int64_t h = t.h, w = t.w;
  const auto ty = taps(H, p.resized_h, p.antialias), tx = taps(W, p.resized_w, p.antialias);
  // Source columns the kept output columns read, and their bytes (the last pixel's three).
  const int64_t x0 = tx->first[p.left];
  const int64_t x1 = tx->first[p.left + p.cols - 1] + tx->width;
  const int64_t bytes = (x1 - x0 - 1) * s_px + 3;
  if (p.rows != h || p.cols != w) out.zero_();  // letterbox: normalised, the mean colour is 0
  const uint8_t *src = frames.data_ptr<uint8_t>();
  float *dst = out.data_ptr<float>();
  // Threads only where there is enough work: a 320x240 frame to 64x64 is ~0.1 ms, less than an
  // OpenMP team costs to wake (and its spinning competes with the model's threads).
  const int64_t per_row = bytes * ty->width + p.cols * 3 * tx->width;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, per_row));
  at::parallel_for(0, N * p.rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> row(bytes + 1);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t n = job / p.rows, r = job % p.rows, o = p.top + r;
      vertical_pass(src + n * s_frame + ty->first[o] * s_row + x0 * s_px, s_row,
                    &ty->weight[o * ty->width], ty->width, bytes, row.data());
      float *d = dst + (n * 3 * h + p.out_top + r) * w + p.out_left;
      auto pass = s_px == 3 ? horizontal_pass<3> : horizontal_pass<4>;
      pass(row.data(), *tx, x0, p.left, p.cols, t.mean.data(), t.std.data(), d, d + h * w,
           d + 2 * h * w);
    }
  });
}

// Into `out` [N, 3, t.h, t.w] float32 on the frames' device (written in place when it is a
// contiguous CPU tensor).
void resample(const torch::Tensor &frames, const ResizePlan &plan, const Target &t,
              torch::Tensor &out) {
  TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8,
              "expected RGB uint8 frames [N, H, W, 3], got ", frames.sizes(), " ",
              frames.scalar_type());
  TORCH_CHECK(frames.size(1) > 0 && frames.size(2) > 0, "expected a frame of at least 1 x 1, got ",
              frames.sizes());
  TORCH_CHECK(out.dim() == 4 && out.size(0) == frames.size(0) && out.size(1) == 3 &&
                  out.size(2) == t.h && out.size(3) == t.w && out.scalar_type() == torch::kFloat32,
              "output must be float32 [", frames.size(0), ", 3, ", t.h, ", ", t.w, "], got ",
              out.sizes(), " ", out.scalar_type());
  if (frames.is_cpu() && out.is_cpu() && out.is_contiguous()) {
    resample_cpu(frames, plan, t, out);
  } else if (frames.is_cpu()) {
    auto tmp = torch::empty(out.sizes(), torch::kFloat32);
    resample_cpu(frames, plan, t, tmp);
    out.copy_(tmp);
  } else {
    out.copy_(resample_torch(frames, plan, t));
  }
}

torch::Tensor resample(const torch::Tensor &frames, const ResizePlan &plan, const Target &t) {
  auto out = torch::empty({frames.dim() == 4 ? frames.size(0) : 0, 3, t.h, t.w},
                          torch::TensorOptions().dtype(torch::kFloat32).device(frames.device()));
  resample(frames, plan, t, out);
  return out;
}

}  // namespace

torch::Tensor preprocess_frames(const torch::Tensor &frames, const ClipSpec &spec,
                                CropOffset crop) {
  TORCH_CHECK(frames.dim() == 4, "expected RGB uint8 frames [N, H, W, 3], got ", frames.sizes());
  return resample(frames, plan_resize(frames.size(1), frames.size(2), spec, crop),
                  model_input(spec));
}

void preprocess_frames_into(const torch::Tensor &frames, const ClipSpec &spec, torch::Tensor out,
                            CropOffset crop) {
  TORCH_CHECK(frames.dim() == 4, "expected RGB uint8 frames [N, H, W, 3], got ", frames.sizes());
  resample(frames, plan_resize(frames.size(1), frames.size(2), spec, crop), model_input(spec), out);
}

torch::Tensor resize_frames(const torch::Tensor &frames, int64_t h, int64_t w) {
  TORCH_CHECK(frames.dim() == 4, "expected RGB uint8 frames [N, H, W, 3], got ", frames.sizes());
  TORCH_CHECK(h > 0 && w > 0, "resize to ", h, " x ", w, ": sizes must be > 0");
  ClipSpec stretch;
  stretch.resize = ResizeMode::kStretch;
  stretch.height = static_cast<int>(h);
  stretch.width = static_cast<int>(w);
  return resample(frames, plan_resize(frames.size(1), frames.size(2), stretch),
                  {h, w, {0.0f, 0.0f, 0.0f}, {1.0f, 1.0f, 1.0f}});
}

torch::Tensor preprocess_frame(const torch::Tensor &frame, const ClipSpec &spec) {
  TORCH_CHECK(frame.dim() == 3, "expected an RGB uint8 frame [H, W, 3], got ", frame.sizes());
  return preprocess_frames(frame.unsqueeze(0), spec).squeeze(0);
}

torch::Tensor complete_clip(const torch::Tensor &clip, int64_t T) {
  TORCH_CHECK(clip.dim() >= 1 && clip.size(0) >= 1 && clip.size(0) <= T, "a clip of ",
              clip.dim() >= 1 ? clip.size(0) : 0, " frames cannot be made ", T);
  if (clip.size(0) == T) return clip;
  const auto rows = clip_rows(static_cast<uint64_t>(clip.size(0)), static_cast<uint64_t>(T));
  return clip.index_select(0, torch::tensor(rows, torch::kLong).to(clip.device()));
}

}  // namespace vidcls
