#include "vidcls/swin3d.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include <torch/nn/functional/padding.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <nlohmann/json.hpp>

#include "json_fields.h"
#include "vidcls/init.h"
#include "vidcls/layers.h"
#include "vidcls/runtime.h"

namespace F = torch::nn::functional;

namespace vidcls {

namespace {

torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-5));
}

int64_t volume(const Swin3DGrid &g) { return g[0] * g[1] * g[2]; }

// Zeros to append along each axis so that `size` becomes a whole number of `unit`s.
Swin3DGrid pad_to_multiple(const Swin3DGrid &size, const Swin3DGrid &unit) {
  Swin3DGrid pad;
  for (int d = 0; d < 3; ++d) pad[d] = (unit[d] - size[d] % unit[d]) % unit[d];
  return pad;
}

// Row-major index of each (query, key) offset in a window: axis offsets shifted to start at 0,
// combined as digits of sizes (2 Wt - 1, 2 Wh - 1, 2 Ww - 1). [N, N], N = Wt Wh Ww.
torch::Tensor relative_position_index_for(const Swin3DGrid &w) {
  const auto coords =
      torch::stack(
          torch::meshgrid({torch::arange(w[0]), torch::arange(w[1]), torch::arange(w[2])}, "ij"))
          .flatten(1);
  const auto rel = coords.unsqueeze(2) - coords.unsqueeze(1);  // [3, N, N]: query - key
  const int64_t span_h = 2 * w[1] - 1, span_w = 2 * w[2] - 1;
  return (rel[0] + (w[0] - 1)) * (span_h * span_w) + (rel[1] + (w[1] - 1)) * span_w +
         (rel[2] + (w[2] - 1));
}

// Region of each position along one axis of a cyclically shifted grid of `padded` positions: the
// last window holds positions that the shift brought round from the start (region 2) next to
// ones that were there (region 1); everything before it is region 0. Without a shift, one region.
torch::Tensor shift_regions(int64_t padded, int64_t window, int64_t shift,
                            const torch::TensorOptions &options) {
  const auto p = torch::arange(padded, options);
  if (shift == 0) return torch::zeros({padded}, options);
  return (p >= padded - window).to(options.dtype()) + (p >= padded - shift).to(options.dtype());
}

// Attention mask of shifted windows [windows, N, N]: -100 between tokens of different regions
// (which are not neighbours in the clip), 0 within one.
torch::Tensor shifted_window_mask(const Swin3DGrid &padded, const Swin3DGrid &window,
                                  const Swin3DGrid &shift, const torch::TensorOptions &options) {
  const auto long_options = options.dtype(torch::kLong);
  const auto rt = shift_regions(padded[0], window[0], shift[0], long_options);
  const auto rh = shift_regions(padded[1], window[1], shift[1], long_options);
  const auto rw = shift_regions(padded[2], window[2], shift[2], long_options);
  const auto region = rt.view({-1, 1, 1}) * 9 + rh.view({1, -1, 1}) * 3 + rw.view({1, 1, -1});
  const auto per_window = region
                              .view({padded[0] / window[0], window[0], padded[1] / window[1],
                                     window[1], padded[2] / window[2], window[2]})
                              .permute({0, 2, 4, 1, 3, 5})
                              .reshape({-1, volume(window)});
  const auto differ = per_window.unsqueeze(1) != per_window.unsqueeze(2);
  return torch::zeros(differ.sizes(), options).masked_fill_(differ, -100.0);
}

void require(bool ok, const std::string &message) {
  if (!ok) throw std::invalid_argument("Swin3D config: " + message);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configuration

Swin3DConfig Swin3DConfig::t() { return Swin3DConfig(); }

Swin3DConfig Swin3DConfig::s() {
  Swin3DConfig c;
  c.depths = {2, 2, 18, 2};
  return c;
}

Swin3DConfig Swin3DConfig::b() {
  Swin3DConfig c;
  c.embed_dim = 128;
  c.depths = {2, 2, 18, 2};
  c.num_heads = {4, 8, 16, 32};
  return c;
}

void Swin3DConfig::validate() const {
  for (int d = 0; d < 3; ++d) {
    require(patch_size[d] > 0, "patch_size must be > 0, got " + std::to_string(patch_size[d]));
    require(window_size[d] > 0, "window_size must be > 0, got " + std::to_string(window_size[d]));
  }
  require(embed_dim > 0, "embed_dim must be > 0, got " + std::to_string(embed_dim));
  require(!depths.empty(), "depths must hold at least one stage");
  require(num_heads.size() == depths.size(), "num_heads must hold one value per stage (" +
                                                 std::to_string(depths.size()) + "), got " +
                                                 std::to_string(num_heads.size()));
  for (size_t i = 0; i < depths.size(); ++i) {
    const std::string stage = "[" + std::to_string(i) + "]";
    require(depths[i] > 0, "depths" + stage + " must be > 0, got " + std::to_string(depths[i]));
    require(num_heads[i] > 0,
            "num_heads" + stage + " must be > 0, got " + std::to_string(num_heads[i]));
    const int64_t dim = embed_dim << i;
    require(dim % num_heads[i] == 0, "num_heads" + stage + " (" + std::to_string(num_heads[i]) +
                                         ") must divide the stage width " + std::to_string(dim));
    require(static_cast<int64_t>(dim * mlp_ratio) > 0,
            "mlp_ratio leaves stage " + std::to_string(i) + "'s MLP without hidden units");
  }
  require(dropout >= 0.0 && dropout <= 1.0, "dropout must be in [0, 1]");
  require(attention_dropout >= 0.0 && attention_dropout <= 1.0,
          "attention_dropout must be in [0, 1]");
  // 1 would leave drop_path dividing by a survival rate of 0.
  require(stochastic_depth_prob >= 0.0 && stochastic_depth_prob < 1.0,
          "stochastic_depth_prob must be in [0, 1)");
  require(frames > 0, "frames must be > 0, got " + std::to_string(frames));
  require(image_size > 0, "image_size must be > 0, got " + std::to_string(image_size));
  require(num_classes > 0, "num_classes must be > 0, got " + std::to_string(num_classes));
}

void to_json(nlohmann::json &j, const Swin3DConfig &c) {
  j = {{"patch_size", c.patch_size},
       {"embed_dim", c.embed_dim},
       {"depths", c.depths},
       {"num_heads", c.num_heads},
       {"window_size", c.window_size},
       {"mlp_ratio", c.mlp_ratio},
       {"dropout", c.dropout},
       {"attention_dropout", c.attention_dropout},
       {"stochastic_depth_prob", c.stochastic_depth_prob},
       {"frames", c.frames},
       {"image_size", c.image_size},
       {"num_classes", c.num_classes}};
}

void from_json(const nlohmann::json &j, Swin3DConfig &c) {
  get_opt(j, "patch_size", c.patch_size);
  get_opt(j, "embed_dim", c.embed_dim);
  get_opt(j, "depths", c.depths);
  get_opt(j, "num_heads", c.num_heads);
  get_opt(j, "window_size", c.window_size);
  get_opt(j, "mlp_ratio", c.mlp_ratio);
  get_opt(j, "dropout", c.dropout);
  get_opt(j, "attention_dropout", c.attention_dropout);
  get_opt(j, "stochastic_depth_prob", c.stochastic_depth_prob);
  get_opt(j, "frames", c.frames);
  get_opt(j, "image_size", c.image_size);
  get_opt(j, "num_classes", c.num_classes);
}

// ---------------------------------------------------------------------------------------------
// Modules

Swin3DAttentionImpl::Swin3DAttentionImpl(int64_t dim, int64_t num_heads,
                                         const Swin3DGrid &window_size,
                                         const Swin3DGrid &shift_size, double attention_dropout,
                                         double dropout)
    : heads_(num_heads),
      window_size_(window_size),
      shift_size_(shift_size),
      attention_dropout_(attention_dropout),
      dropout_(dropout) {
  qkv = register_module("qkv", make_linear(torch::nn::LinearOptions(dim, 3 * dim)));
  proj = register_module("proj", make_linear(torch::nn::LinearOptions(dim, dim)));
  const int64_t offsets =
      (2 * window_size[0] - 1) * (2 * window_size[1] - 1) * (2 * window_size[2] - 1);
  relative_position_bias_table =
      register_parameter("relative_position_bias_table", torch::zeros({offsets, num_heads}));
  // Part of torchvision's state_dict, so a buffer here too (load_state fills it).
  relative_position_index =
      register_buffer("relative_position_index", relative_position_index_for(window_size));
}

// [1, heads, N, N] for a window of N tokens. Where the window was clipped to a smaller grid,
// torchvision takes the first N rows and columns of the full window's index (not the index of the
// clipped window's own offsets); so does this, for the same logits.
torch::Tensor Swin3DAttentionImpl::relative_position_bias(int64_t window_volume) const {
  const auto index =
      relative_position_index.narrow(0, 0, window_volume).narrow(1, 0, window_volume);
  return relative_position_bias_table.index_select(0, index.reshape(-1))
      .view({window_volume, window_volume, heads_})
      .permute({2, 0, 1})
      .contiguous()
      .unsqueeze(0);
}

torch::Tensor Swin3DAttentionImpl::forward(const torch::Tensor &x) {
  const int64_t B = x.size(0), C = x.size(4), head_dim = C / heads_;
  const Swin3DGrid size = {x.size(1), x.size(2), x.size(3)};
  // A window no smaller than the grid along an axis covers it whole and is not shifted there.
  Swin3DGrid window = window_size_, shift = shift_size_;
  for (int d = 0; d < 3; ++d) {
    if (size[d] <= window[d]) {
      window[d] = size[d];
      shift[d] = 0;
    }
  }
  const Swin3DGrid pad = pad_to_multiple(size, window);
  const Swin3DGrid padded = {size[0] + pad[0], size[1] + pad[1], size[2] + pad[2]};
  const bool padding = pad[0] + pad[1] + pad[2] > 0;
  const bool shifted = shift[0] + shift[1] + shift[2] > 0;
  auto y = padding ? F::pad(x, F::PadFuncOptions({0, 0, 0, pad[2], 0, pad[1], 0, pad[0]})) : x;
  if (shifted) y = torch::roll(y, {-shift[0], -shift[1], -shift[2]}, {1, 2, 3});

  // Windows [B * windows, N, C], windows in (t, h, w) order, tokens in (t, h, w) order.
  const Swin3DGrid count = {padded[0] / window[0], padded[1] / window[1], padded[2] / window[2]};
  const int64_t windows = volume(count), N = volume(window);
  y = y.reshape({B, count[0], window[0], count[1], window[1], count[2], window[2], C})
          .permute({0, 1, 3, 5, 2, 4, 6, 7})
          .reshape({B * windows, N, C});

  const auto qkv_heads = at::linear(y, qkv->weight, qkv->bias)
                             .reshape({-1, N, 3, heads_, head_dim})
                             .permute({2, 0, 3, 1, 4});
  const auto q = qkv_heads[0] * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  auto attn = torch::matmul(q, qkv_heads[1].transpose(-2, -1));  // [B * windows, heads, N, N]
  attn.add_(relative_position_bias(N));
  if (shifted) {
    attn.view({B, windows, heads_, N, N})
        .add_(shifted_window_mask(padded, window, shift, attn.options()).unsqueeze(1));
  }
  attn = attn.softmax(-1);
  if (attention_dropout_ > 0.0) attn = torch::dropout(attn, attention_dropout_, is_training());
  y = torch::matmul(attn, qkv_heads[2]).transpose(1, 2).reshape({-1, N, C});
  y = at::linear(y, proj->weight, proj->bias);
  if (dropout_ > 0.0) y = torch::dropout(y, dropout_, is_training());

  // Back to the grid, the shift undone and the padding cut off.
  y = y.view({B, count[0], count[1], count[2], window[0], window[1], window[2], C})
          .permute({0, 1, 4, 2, 5, 3, 6, 7})
          .reshape({B, padded[0], padded[1], padded[2], C});
  if (shifted) y = torch::roll(y, {shift[0], shift[1], shift[2]}, {1, 2, 3});
  if (padding) y = y.narrow(1, 0, size[0]).narrow(2, 0, size[1]).narrow(3, 0, size[2]).contiguous();
  return y;
}

Swin3DBlockImpl::Swin3DBlockImpl(int64_t dim, int64_t num_heads, const Swin3DGrid &shift_size,
                                 const Swin3DConfig &cfg, double stochastic_depth_prob)
    : dropout_(cfg.dropout), stochastic_depth_prob_(stochastic_depth_prob) {
  norm1 = register_module("norm1", layer_norm(dim));
  attn = register_module("attn", Swin3DAttention(dim, num_heads, cfg.window_size, shift_size,
                                                 cfg.attention_dropout, cfg.dropout));
  norm2 = register_module("norm2", layer_norm(dim));
  const auto hidden = static_cast<int64_t>(dim * cfg.mlp_ratio);
  fc1_ = make_linear(torch::nn::LinearOptions(dim, hidden));
  fc2_ = make_linear(torch::nn::LinearOptions(hidden, dim));
  mlp = register_module(
      "mlp", torch::nn::Sequential(fc1_, torch::nn::GELU(), torch::nn::Dropout(cfg.dropout), fc2_,
                                   torch::nn::Dropout(cfg.dropout)));
}

torch::Tensor Swin3DBlockImpl::forward(const torch::Tensor &x) {
  auto y = x + drop_path(attn(norm1(x)), stochastic_depth_prob_, is_training());
  // mlp's layers, with at::linear (one GEMM with the bias fused) for the [B, t, h, w, C] tokens.
  auto hidden = torch::gelu(at::linear(norm2(y), fc1_->weight, fc1_->bias));
  if (dropout_ > 0.0) hidden = torch::dropout(hidden, dropout_, is_training());
  auto out = at::linear(hidden, fc2_->weight, fc2_->bias);
  if (dropout_ > 0.0) out = torch::dropout(out, dropout_, is_training());
  return y + drop_path(out, stochastic_depth_prob_, is_training());
}

Swin3DPatchMergingImpl::Swin3DPatchMergingImpl(int64_t dim) {
  reduction = register_module("reduction",
                              make_linear(torch::nn::LinearOptions(4 * dim, 2 * dim).bias(false)));
  norm = register_module("norm", layer_norm(4 * dim));
}

torch::Tensor Swin3DPatchMergingImpl::forward(const torch::Tensor &x) {
  const int64_t H = x.size(2), W = x.size(3);
  const auto y = (H % 2 || W % 2) ? F::pad(x, F::PadFuncOptions({0, 0, 0, W % 2, 0, H % 2})) : x;
  using torch::indexing::None;
  using torch::indexing::Slice;
  const auto quarter = [&](int64_t h, int64_t w) {
    return y.index({Slice(), Slice(), Slice(h, None, 2), Slice(w, None, 2)});
  };
  // Channel order of torchvision: (even h, even w), (odd h, even w), (even h, odd w), (odd, odd).
  const auto merged = torch::cat({quarter(0, 0), quarter(1, 0), quarter(0, 1), quarter(1, 1)}, -1);
  return at::linear(norm(merged), reduction->weight);
}

Swin3DPatchEmbedImpl::Swin3DPatchEmbedImpl(const std::array<int64_t, 3> &patch_size,
                                           int64_t embed_dim)
    : patch_size_(patch_size) {
  const auto kernel = torch::ExpandingArray<3>({patch_size[0], patch_size[1], patch_size[2]});
  proj = register_module("proj",
                         make_conv(torch::nn::Conv3dOptions(3, embed_dim, kernel).stride(kernel)));
  norm = register_module("norm", layer_norm(embed_dim));
}

torch::Tensor Swin3DPatchEmbedImpl::forward(const torch::Tensor &x) {
  const Swin3DGrid pad = pad_to_multiple({x.size(2), x.size(3), x.size(4)}, patch_size_);
  const auto padded = pad[0] + pad[1] + pad[2] > 0
                          ? F::pad(x, F::PadFuncOptions({0, pad[2], 0, pad[1], 0, pad[0]}))
                          : x;
  return norm(proj(padded).permute({0, 2, 3, 4, 1}).contiguous());
}

Swin3DImpl::Swin3DImpl(const Swin3DConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  patch_embed = register_module("patch_embed", Swin3DPatchEmbed(cfg_.patch_size, cfg_.embed_dim));
  features = register_module("features", torch::nn::ModuleList());
  int64_t total = 0;
  for (int64_t d : cfg_.depths) total += d;
  const Swin3DGrid half_window = {cfg_.window_size[0] / 2, cfg_.window_size[1] / 2,
                                  cfg_.window_size[2] / 2};
  int64_t block_id = 0;
  const size_t stages = cfg_.depths.size();
  for (size_t i = 0; i < stages; ++i) {
    const int64_t dim = cfg_.embed_dim << i;
    torch::nn::Sequential stage;
    for (int64_t j = 0; j < cfg_.depths[i]; ++j, ++block_id) {
      const double sd = total > 1 ? cfg_.stochastic_depth_prob * block_id / (total - 1.0) : 0.0;
      // Every second block shifts its windows by half a window.
      const Swin3DGrid shift = j % 2 ? half_window : Swin3DGrid{0, 0, 0};
      stage->push_back(Swin3DBlock(dim, cfg_.num_heads[i], shift, cfg_, sd));
    }
    features->push_back(stage);
    if (i + 1 < stages) features->push_back(Swin3DPatchMerging(dim));
  }
  const int64_t width = cfg_.embed_dim << (stages - 1);
  norm = register_module("norm", layer_norm(width));
  head = register_module("head", make_linear(torch::nn::LinearOptions(width, cfg_.num_classes)));
  if (!init_skipped()) init_weights();
}

// torchvision's initialisation: linear weights and the relative position tables N(0, 0.02)
// truncated at 2 std, linear biases 0; the convolution and LayerNorms keep LibTorch's defaults.
void Swin3DImpl::init_weights() {
  torch::NoGradGuard no_grad;
  for (const auto &m : modules(/*include_self=*/false)) {
    if (auto *linear = m->as<torch::nn::LinearImpl>()) {
      trunc_normal_(linear->weight, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto *a = m->as<Swin3DAttentionImpl>()) {
      trunc_normal_(a->relative_position_bias_table, 0.02);
    }
  }
}

InputShape Swin3DImpl::input_shape() const {
  return {cfg_.frames, 3, cfg_.image_size, cfg_.image_size};
}

torch::Tensor Swin3DImpl::forward(torch::Tensor clips) {
  TORCH_CHECK(clips.dim() == 5 && clips.size(2) == 3 && clips.size(1) > 0 && clips.size(3) > 0 &&
                  clips.size(4) > 0,
              "Swin3D expects clips [B, T, 3, H, W], got ", clips.sizes());
  // torchvision's layout [B, C, T, H, W] -> tokens [B, t, h, w, D].
  auto x = patch_embed(clips.permute({0, 2, 1, 3, 4}).contiguous());
  if (cfg_.dropout > 0.0) x = torch::dropout(x, cfg_.dropout, is_training());
  for (const auto &layer : *features) {
    if (auto *stage = layer->as<torch::nn::SequentialImpl>()) {
      x = stage->forward(x);
    } else {
      x = layer->as<Swin3DPatchMergingImpl>()->forward(x);
    }
  }
  return head(norm(x).mean({1, 2, 3}));
}

nlohmann::json Swin3DImpl::config() const { return cfg_; }

}  // namespace vidcls
