#include "vidcls/clip_spec.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <tuple>
#include <vector>

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>

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
  for (float s : std) {
    if (!(s > 0)) fail("std values must be > 0");
  }
}

std::string to_string(ResizeMode mode) {
  switch (mode) {
    case ResizeMode::kCrop: return "crop";
    case ResizeMode::kLetterbox: return "letterbox";
    case ResizeMode::kStretch: return "stretch";
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
       {"resize", to_string(s.resize)},
       {"mean", s.mean},
       {"std", s.std},
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
  if (auto it = j.find("resize"); it != j.end()) s.resize = resize_mode_from_string(it->get<std::string>());
  opt("mean", s.mean);
  opt("std", s.std);
  if (auto it = j.find("layout"); it != j.end() && it->get<std::string>() != ClipSpec::kLayout) {
    throw std::invalid_argument("clip spec: unsupported layout '" + it->get<std::string>() + "'");
  }
}

namespace {

torch::Tensor resize(const torch::Tensor &x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  const bool shrink = h < x.size(2) || w < x.size(3);
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBilinear)
                               .align_corners(false)
                               .antialias(shrink));
}

int64_t scaled(int64_t n, double scale) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::lround(n * scale)));
}

// Where the resized picture lands: the whole frame resizes to nh x nw (antialiased if either side
// shrinks); rows [top, top + rows) and columns [left, left + cols) of it are kept and written at
// (out_top, out_left) of the h x w output.
struct Placement {
  int64_t nh, nw;
  bool antialias;
  int64_t top, left, rows, cols;
  int64_t out_top, out_left;
};

Placement place(int64_t H, int64_t W, const ClipSpec &spec) {
  const int64_t h = spec.height, w = spec.width;
  Placement p{h, w, false, 0, 0, h, w, 0, 0};
  switch (spec.resize) {
    case ResizeMode::kStretch:
      break;
    case ResizeMode::kCrop: {
      const int64_t side = spec.short_side > 0 ? spec.short_side : std::max(h, w);
      const double scale = static_cast<double>(side) / static_cast<double>(std::min(H, W));
      p.nh = std::max(h, scaled(H, scale));
      p.nw = std::max(w, scaled(W, scale));
      p.top = (p.nh - h) / 2;
      p.left = (p.nw - w) / 2;
      break;
    }
    case ResizeMode::kLetterbox: {
      const double scale = std::min(static_cast<double>(h) / H, static_cast<double>(w) / W);
      p.nh = std::min(h, scaled(H, scale));
      p.nw = std::min(w, scaled(W, scale));
      p.rows = p.nh;
      p.cols = p.nw;
      p.out_top = (h - p.nh) / 2;
      p.out_left = (w - p.nw) / 2;
      break;
    }
  }
  p.antialias = p.nh < H || p.nw < W;
  return p;
}

// The generic path (any device): torch ops.
torch::Tensor preprocess_torch(const torch::Tensor &frames, const ClipSpec &spec) {
  const int64_t H = frames.size(1), W = frames.size(2);
  const int64_t h = spec.height, w = spec.width;
  const Placement p = place(H, W, spec);
  auto x = frames.permute({0, 3, 1, 2}).to(torch::kFloat32);
  auto mean = torch::tensor({spec.mean[0], spec.mean[1], spec.mean[2]}, x.options())
                  .mul_(255.0f)
                  .view({1, 3, 1, 1});
  auto std = torch::tensor({spec.std[0], spec.std[1], spec.std[2]}, x.options())
                 .mul_(255.0f)
                 .view({1, 3, 1, 1});
  x = resize(x, p.nh, p.nw);
  if (spec.resize == ResizeMode::kLetterbox) {
    // Normalise first, then pad with zeros: the padding is the mean colour.
    x = (x - mean) / std;
    return F::pad(x, F::PadFuncOptions({p.out_left, w - p.nw - p.out_left, p.out_top,
                                        h - p.nh - p.out_top}))
        .contiguous();
  }
  x = x.narrow(2, p.top, h).narrow(3, p.left, w);
  return ((x - mean) / std).contiguous();
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
    const auto r = F::interpolate(basis.view({1, n, 1, in}),
                                  F::InterpolateFuncOptions()
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

// CPU path: the separable resize straight from the uint8 pixels, rows first and only the rows and
// columns that are kept, then the normalisation, into [N, 3, h, w]. A frame never becomes float
// at its full size.
torch::Tensor preprocess_cpu(const torch::Tensor &frames_in, const ClipSpec &spec) {
  // Rows and pixels may be strided (a packed RGBx frame viewed as RGB); channels are adjacent.
  const auto frames = frames_in.stride(3) == 1 ? frames_in : frames_in.contiguous();
  const int64_t N = frames.size(0), H = frames.size(1), W = frames.size(2);
  const int64_t s_frame = frames.stride(0), s_row = frames.stride(1), s_px = frames.stride(2);
  const int64_t h = spec.height, w = spec.width;
  const Placement p = place(H, W, spec);
  const auto ty = taps(H, p.nh, p.antialias), tx = taps(W, p.nw, p.antialias);
  // Source columns the kept output columns read.
  const int64_t x0 = tx->first[p.left];
  const int64_t x1 = tx->first[p.left + p.cols - 1] + tx->width;
  const int64_t span = (x1 - x0) * 3;
  float mean[3], std[3];
  for (int c = 0; c < 3; ++c) {
    mean[c] = spec.mean[c] * 255.0f;
    std[c] = spec.std[c] * 255.0f;
  }
  auto out = torch::zeros({N, 3, h, w}, torch::kFloat32);
  const uint8_t *src = frames.data_ptr<uint8_t>();
  float *dst = out.data_ptr<float>();
  // Threads only where there is enough work: a 320x240 frame to 64x64 is ~0.1 ms, less than an
  // OpenMP team costs to wake (and its spinning competes with the model's threads).
  const int64_t per_row = span * ty->width + p.cols * 3 * tx->width;
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, per_row));
  at::parallel_for(0, N * p.rows, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> row(span);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t n = job / p.rows, r = job % p.rows;
      // Vertical pass: one resized row, over the needed source columns, all three channels.
      std::fill(row.begin(), row.end(), 0.0f);
      const int64_t o = p.top + r;
      const float *wy = &ty->weight[o * ty->width];
      for (int64_t k = 0; k < ty->width; ++k) {
        const float wk = wy[k];
        if (wk == 0.0f) continue;
        const uint8_t *s = src + n * s_frame + (ty->first[o] + k) * s_row + x0 * s_px;
        if (s_px == 3) {
          for (int64_t q = 0; q < span; ++q) row[q] += wk * static_cast<float>(s[q]);
        } else {
          for (int64_t x = 0; x < x1 - x0; ++x, s += s_px) {
            row[3 * x] += wk * static_cast<float>(s[0]);
            row[3 * x + 1] += wk * static_cast<float>(s[1]);
            row[3 * x + 2] += wk * static_cast<float>(s[2]);
          }
        }
      }
      // Horizontal pass and normalisation.
      float *d[3];
      for (int c = 0; c < 3; ++c) {
        d[c] = dst + ((n * 3 + c) * h + p.out_top + r) * w + p.out_left;
      }
      for (int64_t col = 0; col < p.cols; ++col) {
        const int64_t oc = p.left + col;
        const float *wx = &tx->weight[oc * tx->width];
        const float *s = row.data() + (tx->first[oc] - x0) * 3;
        float acc[3] = {0.0f, 0.0f, 0.0f};
        for (int64_t k = 0; k < tx->width; ++k) {
          acc[0] += wx[k] * s[3 * k];
          acc[1] += wx[k] * s[3 * k + 1];
          acc[2] += wx[k] * s[3 * k + 2];
        }
        for (int c = 0; c < 3; ++c) d[c][col] = (acc[c] - mean[c]) / std[c];
      }
    }
  });
  return out;
}

}  // namespace

torch::Tensor preprocess_frames(const torch::Tensor &frames, const ClipSpec &spec) {
  TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8,
              "expected RGB uint8 frames [N, H, W, 3], got ", frames.sizes(), " ",
              frames.scalar_type());
  TORCH_CHECK(frames.size(1) > 0 && frames.size(2) > 0, "expected a frame of at least 1 x 1, got ",
              frames.sizes());
  if (frames.is_cpu()) return preprocess_cpu(frames, spec);
  return preprocess_torch(frames, spec);
}

torch::Tensor preprocess_frame(const torch::Tensor &frame, const ClipSpec &spec) {
  TORCH_CHECK(frame.dim() == 3, "expected an RGB uint8 frame [H, W, 3], got ", frame.sizes());
  return preprocess_frames(frame.unsqueeze(0), spec).squeeze(0);
}

}  // namespace vidcls
