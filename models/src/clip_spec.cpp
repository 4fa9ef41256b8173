#include "vidcls/clip_spec.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

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

}  // namespace

torch::Tensor preprocess_frames(const torch::Tensor &frames, const ClipSpec &spec) {
  TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3 && frames.scalar_type() == torch::kUInt8,
              "expected RGB uint8 frames [N, H, W, 3], got ", frames.sizes(), " ",
              frames.scalar_type());
  const int64_t H = frames.size(1), W = frames.size(2);
  const int64_t h = spec.height, w = spec.width;
  auto x = frames.permute({0, 3, 1, 2}).to(torch::kFloat32);
  auto mean = torch::tensor({spec.mean[0], spec.mean[1], spec.mean[2]}, x.options())
                  .mul_(255.0f)
                  .view({1, 3, 1, 1});
  auto std = torch::tensor({spec.std[0], spec.std[1], spec.std[2]}, x.options())
                 .mul_(255.0f)
                 .view({1, 3, 1, 1});
  switch (spec.resize) {
    case ResizeMode::kStretch:
      x = resize(x, h, w);
      break;
    case ResizeMode::kCrop: {
      const int64_t side = spec.short_side > 0 ? spec.short_side : std::max(h, w);
      const double scale = static_cast<double>(side) / static_cast<double>(std::min(H, W));
      const int64_t nh = std::max(h, scaled(H, scale)), nw = std::max(w, scaled(W, scale));
      x = resize(x, nh, nw);
      x = x.narrow(2, (nh - h) / 2, h).narrow(3, (nw - w) / 2, w);
      break;
    }
    case ResizeMode::kLetterbox: {
      const double scale = std::min(static_cast<double>(h) / H, static_cast<double>(w) / W);
      const int64_t nh = std::min(h, scaled(H, scale)), nw = std::min(w, scaled(W, scale));
      x = resize(x, nh, nw);
      // Normalise first, then pad with zeros: the padding is the mean colour.
      x = (x - mean) / std;
      const int64_t top = (h - nh) / 2, left = (w - nw) / 2;
      return F::pad(x, F::PadFuncOptions({left, w - nw - left, top, h - nh - top}))
          .contiguous();
    }
  }
  return ((x - mean) / std).contiguous();
}

torch::Tensor preprocess_frame(const torch::Tensor &frame, const ClipSpec &spec) {
  TORCH_CHECK(frame.dim() == 3, "expected an RGB uint8 frame [H, W, 3], got ", frame.sizes());
  return preprocess_frames(frame.unsqueeze(0), spec).squeeze(0);
}

}  // namespace vidcls
