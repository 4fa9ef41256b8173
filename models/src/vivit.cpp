#include "vidcls/vivit.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include <c10/core/GradMode.h>

#include <nlohmann/json.hpp>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/init.h>

#include "vidcls/init.h"
#include "vidcls/motion.h"
#include "vidcls/runtime.h"

namespace F = torch::nn::functional;

namespace vidcls {

void ViViTConfig::validate() const {
  TORCH_CHECK(architecture == "vivit" || architecture == "mini-vivit",
              "ViViT architecture must be 'vivit' or 'mini-vivit', got '", architecture, "'");
  TORCH_CHECK(tubelet_t > 0 && tubelet_h > 0 && tubelet_w > 0, "tubelet sizes must be > 0");
  TORCH_CHECK(frames > 0 && frames % tubelet_t == 0, "frames (", frames,
              ") must be a positive multiple of tubelet_t (", tubelet_t, ")");
  TORCH_CHECK(image_size > 0 && image_size % tubelet_h == 0 && image_size % tubelet_w == 0,
              "image_size (", image_size, ") must be a multiple of the tubelet's h and w (",
              tubelet_h, ", ", tubelet_w, ")");
  TORCH_CHECK(num_classes > 0, "num_classes must be > 0, got ", num_classes);
  TORCH_CHECK(spatial.dim == temporal.dim, "spatial dim (", spatial.dim,
              ") and temporal dim (", temporal.dim, ") must be equal");
  TORCH_CHECK(channels > 0, "channels must be > 0");
  TORCH_CHECK(pos_embed_init == "random" || pos_embed_init == "zeros",
              "pos_embed_init must be 'random' or 'zeros', got '", pos_embed_init, "'");
  TORCH_CHECK(input_transform == "none" || input_transform == "temporal-residual" ||
                  input_transform == "normal-flow" || input_transform == "normal-flow-stabilised" ||
                  input_transform == "tubelet-normal-flow",
              "input_transform must be 'none', 'temporal-residual', 'normal-flow', "
              "'normal-flow-stabilised' or 'tubelet-normal-flow', got '",
              input_transform, "'");
  TORCH_CHECK(input_transform == "none" || frames > 1, "input_transform '", input_transform,
              "' needs more than one frame");
  TORCH_CHECK(input_transform != "tubelet-normal-flow" || tubelet_t > 1,
              "input_transform 'tubelet-normal-flow' needs tubelets of more than one frame, got "
              "tubelet_t ",
              tubelet_t);
  TORCH_CHECK(input_transform.find("normal-flow") == std::string::npos || channels == 3,
              "input_transform '", input_transform, "' makes 3 channels (u, v, grey residual); channels "
              "must be 3, got ", channels);
}

ViViTImpl::ViViTImpl(const ViViTConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  const int64_t D = cfg_.spatial.dim;
  tubelet = register_module(
      "tubelet",
      make_conv(torch::nn::Conv3dOptions(cfg_.channels, D,
                                         {cfg_.tubelet_t, cfg_.tubelet_h, cfg_.tubelet_w})
                    .stride({cfg_.tubelet_t, cfg_.tubelet_h, cfg_.tubelet_w})));
  spatial = register_module("spatial", TokenEncoder(cfg_.spatial, cfg_.grid_h() * cfg_.grid_w(),
                                                    true, cfg_.spatial_pos_embed));
  temporal = register_module("temporal",
                             TokenEncoder(cfg_.temporal, cfg_.grid_t(), true,
                                          cfg_.temporal_pos_embed));
  head = register_module("head", make_linear(torch::nn::LinearOptions(D, cfg_.num_classes)));
  if (init_skipped()) return;
  torch::NoGradGuard no_grad;
  trunc_normal_(head->weight, 0.02);
  head->bias.zero_();
  if (cfg_.pos_embed_init == "zeros") {
    for (auto *enc : {&spatial, &temporal}) {
      if ((*enc)->pos_embed.defined()) (*enc)->pos_embed.zero_();
    }
  }
}

namespace {

// ViViT's "normal-flow" input (see ViViTConfig::input_transform): the normal flow of each pair of
// consecutive frames (the last frame repeats the last pair's), and the grey temporal residual;
// `stabilise` for "normal-flow-stabilised" (see normal_flow in motion.h).
torch::Tensor normal_flow_input(const torch::Tensor &x, bool stabilise) {
  const int64_t B = x.size(0), T = x.size(1);
  const auto a = x.narrow(1, 0, T - 1).flatten(0, 1), b = x.narrow(1, 1, T - 1).flatten(0, 1);
  auto flow = normal_flow(a, b, stabilise).view({B, T - 1, 2, x.size(3), x.size(4)});
  flow = torch::cat({flow, flow.narrow(1, T - 2, 1)}, 1);
  const auto grey = (x - x.mean(1, true)).mean(2, true);
  return torch::cat({flow, grey}, 2);
}

}  // namespace

torch::Tensor motion_input(const torch::Tensor &clips, const std::string &input_transform,
                           int64_t tubelet_t) {
  TORCH_CHECK(clips.dim() == 5, "expected clips [B, T, C, H, W], got ", clips.sizes());
  if (input_transform == "none") return clips;
  const int64_t T = clips.size(1);
  TORCH_CHECK(T > 1, "input_transform '", input_transform, "' needs more than one frame");
  if (input_transform == "temporal-residual") return clips - clips.mean(1, true);
  if (input_transform == "normal-flow") return normal_flow_input(clips, false);
  if (input_transform == "normal-flow-stabilised") return normal_flow_input(clips, true);
  if (input_transform == "tubelet-normal-flow") {
    TORCH_CHECK(tubelet_t > 1 && T % tubelet_t == 0,
                "input_transform 'tubelet-normal-flow' needs tubelets of more than one frame "
                "dividing the clip's ",
                T, ", got ", tubelet_t);
    const auto tubelets =
        clips.reshape({-1, tubelet_t, clips.size(2), clips.size(3), clips.size(4)});
    const auto in = normal_flow_input(tubelets, false);
    return in.reshape({clips.size(0), T, in.size(2), in.size(3), in.size(4)});
  }
  TORCH_CHECK(false, "unknown input_transform '", input_transform, "'");
}

InputShape ViViTImpl::input_shape() const {
  return {cfg_.frames, cfg_.channels, cfg_.image_size, cfg_.image_size};
}

torch::Tensor ViViTImpl::embed(const torch::Tensor &clips) {
  TORCH_CHECK(clips.dim() == 5, "ViViT expects clips [B, T, C, H, W], got ", clips.sizes());
  TORCH_CHECK(clips.size(1) == cfg_.frames && clips.size(2) == cfg_.channels &&
                  clips.size(3) == cfg_.image_size && clips.size(4) == cfg_.image_size,
              "ViViT expects clips [B, ", cfg_.frames, ", ", cfg_.channels, ", ", cfg_.image_size,
              ", ", cfg_.image_size, "], got ", clips.sizes());
  const auto in = motion_input(clips, cfg_.input_transform, cfg_.tubelet_t);
  auto x = tubelet(in.permute({0, 2, 1, 3, 4}));  // [B, D, nt, nh, nw]
  return x.flatten(3).permute({0, 2, 3, 1});         // [B, nt, nh*nw, D]
}

namespace {

// Frames the spatial encoder takes at once when nothing is kept for a backward pass or a trace:
// as many as keep its largest activation of one forward (the MLP's hidden layer, the qkv
// projection or the attention map) within 16 MiB. Under glibc's mmap threshold (32 MiB, set in
// runtime.cpp) freed blocks are reused instead of being mapped and faulted in afresh for every
// op, and a batch of many clips needs no more working memory than one clip does. Frames do not
// meet in the spatial encoder, so the result does not change.
int64_t spatial_chunk(const EncoderConfig &cfg, int64_t tokens, int64_t element_size) {
  const int64_t widest = std::max({cfg.mlp_dim, 3 * cfg.dim, cfg.heads * tokens});
  const int64_t per_frame = tokens * widest * element_size;
  return std::max<int64_t>(1, (int64_t{16} << 20) / std::max<int64_t>(per_frame, 1));
}

}  // namespace

// Inference: each clip embedded on its own and its frames through the spatial encoder a chunk at
// a time; only the CLS tokens are kept. Working memory is one clip's, whatever the batch.
torch::Tensor ViViTImpl::spatial_cls_by_chunks(const torch::Tensor &clips) {
  std::vector<torch::Tensor> cls;
  for (const auto &clip : clips.split(1)) {
    auto tokens = embed(clip);
    cls.push_back(spatial_cls_of(tokens.flatten(0, 1)));
  }
  const int64_t B = clips.size(0);
  auto out = torch::cat(cls);
  return out.reshape({B, out.size(0) / B, out.size(1)});
}

torch::Tensor ViViTImpl::spatial_cls_of(const torch::Tensor &tokens) {
  const int64_t n = tokens.size(1);
  std::vector<torch::Tensor> cls;
  for (const auto &part : tokens.split(spatial_chunk(cfg_.spatial, n + 1, tokens.element_size()))) {
    cls.push_back(spatial(part, cfg_.grid_h(), cfg_.grid_w()).select(1, 0));
  }
  return torch::cat(cls);
}

std::string ViViTImpl::token_reuse_blocker() const {
  if (cfg_.input_transform == "none" || cfg_.input_transform == "tubelet-normal-flow") return {};
  return "input transform '" + cfg_.input_transform + "' looks at the whole clip (" +
         (cfg_.input_transform == "temporal-residual"
              ? "its mean frame"
              : "its mean frame, and its last frame repeats the last pair's flow") +
         "): a tubelet's spatial encoding differs from clip to clip";
}

torch::Tensor ViViTImpl::window_tokens(const torch::Tensor &windows) {
  const auto blocker = token_reuse_blocker();
  TORCH_CHECK(blocker.empty(), "tubelets cannot be encoded on their own: ", blocker);
  TORCH_CHECK(windows.dim() == 5 && windows.size(1) == cfg_.tubelet_t &&
                  windows.size(2) == cfg_.channels && windows.size(3) == cfg_.image_size &&
                  windows.size(4) == cfg_.image_size,
              "ViViT expects tubelets [N, ", cfg_.tubelet_t, ", ", cfg_.channels, ", ",
              cfg_.image_size, ", ", cfg_.image_size, "], got ", windows.sizes());
  torch::NoGradGuard no_grad;
  const auto in = motion_input(windows, cfg_.input_transform, cfg_.tubelet_t);
  auto x = tubelet(in.permute({0, 2, 1, 3, 4}));                     // [N, D, 1, nh, nw]
  return spatial_cls_of(x.flatten(2).transpose(1, 2).contiguous());  // [N, nh*nw, D] -> [N, D]
}

torch::Tensor ViViTImpl::classify_tokens(const torch::Tensor &tokens) {
  TORCH_CHECK(
      tokens.dim() == 3 && tokens.size(1) == cfg_.grid_t() && tokens.size(2) == cfg_.temporal.dim,
      "expected tubelet tokens [B, ", cfg_.grid_t(), ", ", cfg_.temporal.dim, "], got ",
      tokens.sizes());
  auto features = temporal(tokens, cfg_.grid_t(), 1).select(1, 0);
  return head(
      F::dropout(features, F::DropoutFuncOptions().p(cfg_.head_dropout).training(is_training())));
}

torch::Tensor ViViTImpl::forward_trace(torch::Tensor clips, ViViTTrace &trace, bool keep_layers) {
  int64_t nt;
  if (keep_layers || is_training() || c10::GradMode::is_enabled()) {
    auto tokens = embed(clips);
    const int64_t B = tokens.size(0), n = tokens.size(2), D = tokens.size(3);
    nt = tokens.size(1);
    auto s = spatial(tokens.reshape({B * nt, n, D}), cfg_.grid_h(), cfg_.grid_w(),
                     keep_layers ? &trace.spatial : nullptr);
    trace.spatial_cls = s.select(1, 0).reshape({B, nt, D});
  } else {
    trace.spatial_cls = spatial_cls_by_chunks(clips);
    nt = trace.spatial_cls.size(1);
  }
  auto t = temporal(trace.spatial_cls, nt, 1, keep_layers ? &trace.temporal : nullptr);
  trace.features = t.select(1, 0);
  auto x = F::dropout(trace.features,
                      F::DropoutFuncOptions().p(cfg_.head_dropout).training(is_training()));
  return head(x);
}

torch::Tensor ViViTImpl::forward(torch::Tensor clips) {
  ViViTTrace trace;
  return forward_trace(std::move(clips), trace, false);
}

torch::Tensor ViViTImpl::forward_traced(torch::Tensor clips, LastLayerTrace &last) {
  ViViTTrace trace;
  auto logits = forward_trace(std::move(clips), trace, true);
  last.attention = trace.spatial.attention.back();
  last.hidden = trace.spatial.hidden.back();
  return logits;
}

nlohmann::json ViViTImpl::config() const { return cfg_; }

torch::Tensor inflate_patch_kernel(const torch::Tensor &kernel2d, int64_t t, TubeletInit mode) {
  TORCH_CHECK(kernel2d.dim() == 4, "a 2D patch kernel is [D, C, ph, pw], got ",
              kernel2d.sizes());
  TORCH_CHECK(t >= 1, "tubelet length must be >= 1");
  auto k = kernel2d.unsqueeze(2);  // [D, C, 1, ph, pw]
  if (mode == TubeletInit::kAverage) {
    return k.repeat({1, 1, t, 1, 1}) / static_cast<double>(t);
  }
  std::vector<int64_t> shape = kernel2d.sizes().vec();
  shape.insert(shape.begin() + 2, t);
  auto out = torch::zeros(shape, kernel2d.options());
  out.select(2, t / 2).copy_(kernel2d);
  return out;
}

TubeletInit tubelet_init_from_string(const std::string &name) {
  if (name == "central-frame") return TubeletInit::kCentralFrame;
  if (name == "average") return TubeletInit::kAverage;
  throw std::invalid_argument("unknown tubelet init '" + name +
                              "' (expected central-frame or average)");
}

}  // namespace vidcls
