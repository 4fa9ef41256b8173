#include "vidcls/mvit.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <tuple>

#include <torch/nn/functional/upsampling.h>
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

int64_t product(const std::vector<int64_t> &v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

// torchvision pools a tensor (q, or k and v) when its kernel or its stride is larger than 1.
bool pools(const std::vector<int64_t> &kernel, const std::vector<int64_t> &stride) {
  return product(kernel) > 1 || product(stride) > 1;
}

// Width of a block's attention and MLP: v2 widens in the attention's qkv, v1 in the MLP.
int64_t attention_dim(const MViTBlockConfig &b, bool proj_after_attn) {
  return proj_after_attn ? b.output_channels : b.input_channels;
}

torch::ExpandingArray<3> triple(const std::array<int64_t, 3> &a) {
  return torch::ExpandingArray<3>({a[0], a[1], a[2]});
}

torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6));
}

// Depthwise convolution that pools one head's tokens over their grid ("same" padding).
MViTPool conv_pool(int64_t head_dim, const std::vector<int64_t> &kernel,
                   const std::vector<int64_t> &stride) {
  std::vector<int64_t> padding;
  for (int64_t k : kernel) padding.push_back(k / 2);
  auto conv = make_conv(torch::nn::Conv3dOptions(head_dim, head_dim, kernel)
                            .stride(stride)
                            .padding(padding)
                            .groups(head_dim)
                            .bias(false));
  return MViTPool(conv, layer_norm(head_dim));
}

// Row of the relative-position table for each (query, key) pair along one axis: their distance
// in units of the finer of the two grids, offset by the last key's so that rows start at 0.
torch::Tensor rel_pos_index(int64_t q_n, int64_t k_n, const torch::TensorOptions &options) {
  const double q_ratio = std::max(static_cast<double>(k_n) / q_n, 1.0);
  const double k_ratio = std::max(static_cast<double>(q_n) / k_n, 1.0);
  const auto q = torch::arange(q_n, options.dtype(torch::kLong)).unsqueeze(1);
  const auto k = torch::arange(k_n, options.dtype(torch::kLong)).unsqueeze(0);
  return (q * q_ratio - (k + (1.0 - k_n)) * k_ratio).to(torch::kLong);
}

// The table [rows', C] resampled to `rows` rows (linearly) when the grids differ from the ones it
// was built for.
torch::Tensor rel_pos_rows(const torch::Tensor &table, int64_t rows) {
  if (table.size(0) == rows) return table;
  const auto options = F::InterpolateFuncOptions()
                           .size(std::vector<int64_t>{rows})
                           .mode(torch::kLinear)
                           .align_corners(false);
  return F::interpolate(table.t().unsqueeze(0), options).squeeze(0).t();
}

// Per-axis relative-position table for query and key grid sizes: [q_n, k_n, C].
torch::Tensor rel_pos_lookup(const torch::Tensor &table, int64_t q_n, int64_t k_n) {
  const auto rows = rel_pos_rows(table, 2 * std::max(q_n, k_n) - 1);
  const auto index = rel_pos_index(q_n, k_n, table.options());
  return rows.index_select(0, index.reshape(-1)).reshape({q_n, k_n, rows.size(1)});
}

// MViTv2's decomposed relative positions: the term of query i and key j is q_i . (R_t[ti, tj] +
// R_h[hi, hj] + R_w[wi, wj]), added to the attention logits of the grid tokens (not the class
// token's row or column). attn [B, heads, 1 + Nq, 1 + Nk], q [B, heads, 1 + Nq, C].
void add_rel_pos(torch::Tensor &attn, const torch::Tensor &q, const Thw &q_thw, const Thw &k_thw,
                 const torch::Tensor &table_t, const torch::Tensor &table_h,
                 const torch::Tensor &table_w) {
  const int64_t B = q.size(0), heads = q.size(1), C = q.size(3);
  const auto rt = rel_pos_lookup(table_t, q_thw[0], k_thw[0]);
  const auto rh = rel_pos_lookup(table_h, q_thw[1], k_thw[1]);
  const auto rw = rel_pos_lookup(table_w, q_thw[2], k_thw[2]);
  const auto grid_q =
      q.narrow(2, 1, q.size(2) - 1).reshape({B, heads, q_thw[0], q_thw[1], q_thw[2], C});
  // [B, heads, qt, qh, qw, k_n] for each axis, broadcast over the other two key axes.
  const auto by_t = torch::einsum("bnthwc,tkc->bnthwk", {grid_q, rt});
  const auto by_h = torch::einsum("bnthwc,hkc->bnthwk", {grid_q, rh});
  const auto by_w = torch::einsum("bnthwc,wkc->bnthwk", {grid_q, rw});
  const auto rel = by_t.unsqueeze(-1).unsqueeze(-1) + by_h.unsqueeze(-2).unsqueeze(-1) +
                   by_w.unsqueeze(-2).unsqueeze(-2);
  const int64_t nq = q_thw[0] * q_thw[1] * q_thw[2], nk = k_thw[0] * k_thw[1] * k_thw[2];
  attn.narrow(2, 1, nq).narrow(3, 1, nk).add_(rel.reshape({B, heads, nq, nk}));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configuration

std::vector<MViTBlockConfig> mvit_v2_s_block_setting() {
  const std::vector<int64_t> heads = {1, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 8, 8};
  std::vector<MViTBlockConfig> blocks(heads.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto &b = blocks[i];
    b.num_heads = heads[i];
    // Stages of 1, 2, 11 and 2 blocks; the first block of each later stage strides the queries
    // and doubles the width (in its attention: the shortcut is projected alongside).
    b.input_channels = i < 2 ? 96 : i < 4 ? 192 : i < 15 ? 384 : 768;
    b.output_channels = i < 1 ? 96 : i < 3 ? 192 : i < 14 ? 384 : 768;
    b.kernel_q = b.kernel_kv = {3, 3, 3};
    b.stride_q = (i == 1 || i == 3 || i == 14) ? std::vector<int64_t>{1, 2, 2}
                                               : std::vector<int64_t>{1, 1, 1};
    // Keys and values are pooled to a 7x7 grid in every stage but the last (already 7x7).
    const int64_t kv = i < 1 ? 8 : i < 3 ? 4 : i < 14 ? 2 : 1;
    b.stride_kv = {1, kv, kv};
  }
  return blocks;
}

MViTConfig MViTConfig::v2_s() { return MViTConfig(); }

MViTConfig MViTConfig::v1_b() {
  MViTConfig c;
  for (size_t i = 0; i < c.block_setting.size(); ++i) {
    auto &b = c.block_setting[i];
    // v1 widens at the end of a stage, in the MLP, and pools q only where it strides.
    b.input_channels = i < 1 ? 96 : i < 3 ? 192 : i < 14 ? 384 : 768;
    b.output_channels = i < 2 ? 192 : i < 13 ? 384 : 768;
    if (i != 1 && i != 3 && i != 14) b.kernel_q = b.stride_q = {};
  }
  c.residual_pool = false;
  c.rel_pos_embed = false;
  c.proj_after_attn = false;
  return c;
}

std::array<int64_t, 3> MViTConfig::grid() const {
  return {frames / patch_embed_stride[0], image_size / patch_embed_stride[1],
          image_size / patch_embed_stride[2]};
}

namespace {

void require(bool ok, const std::string &message) {
  if (!ok) throw std::invalid_argument("MViT config: " + message);
}

void validate_window(const std::vector<int64_t> &v, const std::string &name) {
  require(v.empty() || v.size() == 3,
          name + " must be empty or (t, h, w), got " + std::to_string(v.size()) + " values");
  for (int64_t x : v) require(x > 0, name + " must be > 0, got " + std::to_string(x));
}

// Checks block i of `c` and moves `grid` on past it.
void validate_block(const MViTConfig &c, size_t i, Thw &grid) {
  const auto &b = c.block_setting[i];
  const std::string name = "block_setting[" + std::to_string(i) + "]";
  require(b.num_heads > 0, name + ".num_heads must be > 0, got " + std::to_string(b.num_heads));
  require(b.input_channels > 0, name + ".input_channels must be > 0");
  require(b.output_channels > 0, name + ".output_channels must be > 0");
  if (i > 0) {
    const int64_t previous = c.block_setting[i - 1].output_channels;
    require(b.input_channels == previous,
            name + ".input_channels (" + std::to_string(b.input_channels) +
                ") must equal the previous block's output_channels (" + std::to_string(previous) +
                ")");
  }
  const int64_t dim = attention_dim(b, c.proj_after_attn);
  require(dim % b.num_heads == 0, name + ": the attention width " + std::to_string(dim) +
                                      " is not divisible by num_heads " +
                                      std::to_string(b.num_heads));
  validate_window(b.kernel_q, name + ".kernel_q");
  validate_window(b.stride_q, name + ".stride_q");
  validate_window(b.kernel_kv, name + ".kernel_kv");
  validate_window(b.stride_kv, name + ".stride_kv");
  require(!pools(b.kernel_q, b.stride_q) || (b.kernel_q.size() == 3 && b.stride_q.size() == 3),
          name + ": kernel_q and stride_q must both be (t, h, w) where queries are pooled");
  require(!pools(b.kernel_kv, b.stride_kv) || (b.kernel_kv.size() == 3 && b.stride_kv.size() == 3),
          name + ": kernel_kv and stride_kv must both be (t, h, w) where keys are pooled");
  for (size_t d = 0; d < b.stride_q.size(); ++d) {
    grid[d] /= b.stride_q[d];
    require(grid[d] > 0, name + ".stride_q pools the token grid to nothing");
  }
}

}  // namespace

void MViTConfig::validate() const {
  require(!block_setting.empty(), "block_setting must hold at least one block");
  require(frames > 0, "frames must be > 0, got " + std::to_string(frames));
  require(image_size > 0, "image_size must be > 0, got " + std::to_string(image_size));
  require(num_classes > 0, "num_classes must be > 0, got " + std::to_string(num_classes));
  for (int d = 0; d < 3; ++d) {
    require(patch_embed_kernel[d] > 0, "patch_embed_kernel must be > 0");
    require(patch_embed_stride[d] > 0, "patch_embed_stride must be > 0");
    require(patch_embed_padding[d] >= 0, "patch_embed_padding must be >= 0");
  }
  Thw g = grid();
  require(g[0] > 0 && g[1] > 0 && g[2] > 0,
          "frames and image_size must be at least patch_embed_stride");
  for (size_t i = 0; i < block_setting.size(); ++i) validate_block(*this, i, g);
  require(dropout >= 0.0 && dropout <= 1.0, "dropout must be in [0, 1]");
  require(attention_dropout >= 0.0 && attention_dropout <= 1.0,
          "attention_dropout must be in [0, 1]");
  // 1 would leave drop_path dividing by a survival rate of 0.
  require(stochastic_depth_prob >= 0.0 && stochastic_depth_prob < 1.0,
          "stochastic_depth_prob must be in [0, 1)");
}

void to_json(nlohmann::json &j, const MViTBlockConfig &c) {
  j = {{"num_heads", c.num_heads},
       {"input_channels", c.input_channels},
       {"output_channels", c.output_channels},
       {"kernel_q", c.kernel_q},
       {"kernel_kv", c.kernel_kv},
       {"stride_q", c.stride_q},
       {"stride_kv", c.stride_kv}};
}

void from_json(const nlohmann::json &j, MViTBlockConfig &c) {
  get_opt(j, "num_heads", c.num_heads);
  get_opt(j, "input_channels", c.input_channels);
  get_opt(j, "output_channels", c.output_channels);
  get_opt(j, "kernel_q", c.kernel_q);
  get_opt(j, "kernel_kv", c.kernel_kv);
  get_opt(j, "stride_q", c.stride_q);
  get_opt(j, "stride_kv", c.stride_kv);
}

void to_json(nlohmann::json &j, const MViTConfig &c) {
  j = {{"block_setting", c.block_setting},
       {"residual_pool", c.residual_pool},
       {"residual_with_cls_embed", c.residual_with_cls_embed},
       {"rel_pos_embed", c.rel_pos_embed},
       {"proj_after_attn", c.proj_after_attn},
       {"dropout", c.dropout},
       {"attention_dropout", c.attention_dropout},
       {"stochastic_depth_prob", c.stochastic_depth_prob},
       {"frames", c.frames},
       {"image_size", c.image_size},
       {"patch_embed_kernel", c.patch_embed_kernel},
       {"patch_embed_stride", c.patch_embed_stride},
       {"patch_embed_padding", c.patch_embed_padding},
       {"num_classes", c.num_classes}};
}

void from_json(const nlohmann::json &j, MViTConfig &c) {
  get_opt(j, "block_setting", c.block_setting);
  get_opt(j, "residual_pool", c.residual_pool);
  get_opt(j, "residual_with_cls_embed", c.residual_with_cls_embed);
  get_opt(j, "rel_pos_embed", c.rel_pos_embed);
  get_opt(j, "proj_after_attn", c.proj_after_attn);
  get_opt(j, "dropout", c.dropout);
  get_opt(j, "attention_dropout", c.attention_dropout);
  get_opt(j, "stochastic_depth_prob", c.stochastic_depth_prob);
  get_opt(j, "frames", c.frames);
  get_opt(j, "image_size", c.image_size);
  get_opt(j, "patch_embed_kernel", c.patch_embed_kernel);
  get_opt(j, "patch_embed_stride", c.patch_embed_stride);
  get_opt(j, "patch_embed_padding", c.patch_embed_padding);
  get_opt(j, "num_classes", c.num_classes);
}

// ---------------------------------------------------------------------------------------------
// Modules

MViTPoolImpl::MViTPoolImpl(torch::nn::Conv3d pool, torch::nn::LayerNorm norm) {
  conv = register_module("pool", std::move(pool));
  norm_act = register_module("norm_act", torch::nn::Sequential(std::move(norm)));
}

MViTPoolImpl::MViTPoolImpl(torch::nn::MaxPool3d pool) {
  max_pool = register_module("pool", std::move(pool));
}

std::pair<torch::Tensor, Thw> MViTPoolImpl::forward(const torch::Tensor &x, const Thw &thw) {
  const bool per_head = x.dim() == 4;
  TORCH_CHECK(per_head || x.dim() == 3,
              "MViT pooling expects tokens [B, heads, N, C] or [B, N, C], got ", x.sizes());
  const auto tokens = per_head ? x : x.unsqueeze(1);
  const int64_t B = tokens.size(0), heads = tokens.size(1), C = tokens.size(3);
  TORCH_CHECK(tokens.size(2) == 1 + thw[0] * thw[1] * thw[2], "MViT pooling: ", tokens.size(2),
              " tokens do not form a class token and a ", thw[0], "x", thw[1], "x", thw[2],
              " grid");
  // The grid tokens as a volume per (clip, head), channels first; the class token is not pooled.
  auto volume = tokens.narrow(2, 1, tokens.size(2) - 1)
                    .transpose(2, 3)
                    .reshape({B * heads, C, thw[0], thw[1], thw[2]});
  volume = conv ? conv(volume) : max_pool(volume);
  const Thw pooled = {volume.size(2), volume.size(3), volume.size(4)};
  auto out =
      torch::cat({tokens.narrow(2, 0, 1), volume.reshape({B, heads, C, -1}).transpose(2, 3)}, 2);
  if (norm_act) out = norm_act->forward(out);
  return {per_head ? out : out.squeeze(1), pooled};
}

MViTAttentionImpl::MViTAttentionImpl(const MViTBlockConfig &block, const MViTConfig &cfg,
                                     const Thw &grid)
    : heads_(block.num_heads),
      dim_(attention_dim(block, cfg.proj_after_attn)),
      residual_pool_(cfg.residual_pool),
      residual_with_cls_embed_(cfg.residual_with_cls_embed) {
  head_dim_ = dim_ / heads_;
  scale_ = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  qkv =
      register_module("qkv", make_linear(torch::nn::LinearOptions(block.input_channels, 3 * dim_)));
  project = torch::nn::Sequential(make_linear(torch::nn::LinearOptions(dim_, dim_)));
  if (cfg.attention_dropout > 0.0) project->push_back(torch::nn::Dropout(cfg.attention_dropout));
  register_module("project", project);
  if (pools(block.kernel_q, block.stride_q)) {
    pool_q = register_module("pool_q", conv_pool(head_dim_, block.kernel_q, block.stride_q));
  }
  if (pools(block.kernel_kv, block.stride_kv)) {
    pool_k = register_module("pool_k", conv_pool(head_dim_, block.kernel_kv, block.stride_kv));
    pool_v = register_module("pool_v", conv_pool(head_dim_, block.kernel_kv, block.stride_kv));
  }
  if (cfg.rel_pos_embed) {
    // Sized for the larger of the query and key grids (by the h stride, as torchvision); other
    // grids interpolate the tables.
    const int64_t size = std::max(grid[1], grid[2]);
    const int64_t q_size = block.stride_q.empty() ? size : size / block.stride_q[1];
    const int64_t kv_size = block.stride_kv.empty() ? size : size / block.stride_kv[1];
    const int64_t spatial = 2 * std::max(q_size, kv_size) - 1;
    rel_pos_h = register_parameter("rel_pos_h", torch::zeros({spatial, head_dim_}));
    rel_pos_w = register_parameter("rel_pos_w", torch::zeros({spatial, head_dim_}));
    rel_pos_t = register_parameter("rel_pos_t", torch::zeros({2 * grid[0] - 1, head_dim_}));
  }
}

std::pair<torch::Tensor, Thw> MViTAttentionImpl::forward(const torch::Tensor &x, const Thw &thw) {
  const int64_t B = x.size(0), N = x.size(1);
  // [B, N, 3 * dim] -> [3, B, heads, N, head_dim]
  const auto qkv_heads = qkv(x).reshape({B, N, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4});
  auto q = qkv_heads[0], k = qkv_heads[1], v = qkv_heads[2];
  Thw q_thw = thw, k_thw = thw;
  if (pool_k) std::tie(k, k_thw) = pool_k(k, thw);
  if (pool_v) v = pool_v(v, thw).first;
  if (pool_q) std::tie(q, q_thw) = pool_q(q, thw);

  auto attn = torch::matmul(q * scale_, k.transpose(2, 3));
  if (rel_pos_h.defined()) add_rel_pos(attn, q, q_thw, k_thw, rel_pos_t, rel_pos_h, rel_pos_w);
  auto out = torch::matmul(attn.softmax(-1), v);
  // Residual pooling (v2): the pooled query joins the attention output, with or without the
  // class token's.
  if (residual_pool_) {
    if (residual_with_cls_embed_) {
      out.add_(q);
    } else {
      out.narrow(2, 1, out.size(2) - 1).add_(q.narrow(2, 1, q.size(2) - 1));
    }
  }
  out = out.transpose(1, 2).reshape({B, -1, dim_});
  return {project->forward(out), q_thw};
}

MViTBlockImpl::MViTBlockImpl(const MViTBlockConfig &block, const MViTConfig &cfg, const Thw &grid,
                             double stochastic_depth_prob)
    : proj_after_attn_(cfg.proj_after_attn), stochastic_depth_prob_(stochastic_depth_prob) {
  if (product(block.stride_q) > 1) {
    // The shortcut follows the strided queries: max pool, kernel stride + 1 where it strides.
    std::vector<int64_t> kernel, padding;
    for (int64_t s : block.stride_q) {
      kernel.push_back(s > 1 ? s + 1 : s);
      padding.push_back(kernel.back() / 2);
    }
    pool_skip = register_module(
        "pool_skip",
        MViTPool(torch::nn::MaxPool3d(
            torch::nn::MaxPool3dOptions(kernel).stride(block.stride_q).padding(padding))));
  }
  const int64_t dim = attention_dim(block, cfg.proj_after_attn);
  norm1 = register_module("norm1", layer_norm(block.input_channels));
  norm2 = register_module("norm2", layer_norm(dim));
  attn = register_module("attn", MViTAttention(block, cfg, grid));
  mlp = register_module(
      "mlp",
      torch::nn::Sequential(make_linear(torch::nn::LinearOptions(dim, 4 * dim)), torch::nn::GELU(),
                            torch::nn::Dropout(cfg.attention_dropout),
                            make_linear(torch::nn::LinearOptions(4 * dim, block.output_channels)),
                            torch::nn::Dropout(cfg.attention_dropout)));
  if (block.input_channels != block.output_channels) {
    project = register_module("project", make_linear(torch::nn::LinearOptions(
                                             block.input_channels, block.output_channels)));
  }
}

std::pair<torch::Tensor, Thw> MViTBlockImpl::forward(const torch::Tensor &x, const Thw &thw) {
  const auto x_norm1 = norm1(x);
  auto [x_attn, thw_out] = attn(x_norm1, thw);
  // v2 widens the shortcut from the normalised input, where the attention widened its output.
  auto shortcut = (project && proj_after_attn_) ? project(x_norm1) : x;
  if (pool_skip) shortcut = pool_skip(shortcut, thw).first;
  const auto y = shortcut + drop_path(x_attn, stochastic_depth_prob_, is_training());
  const auto y_norm2 = norm2(y);
  const auto shortcut2 = (project && !proj_after_attn_) ? project(y_norm2) : y;
  return {shortcut2 + drop_path(mlp->forward(y_norm2), stochastic_depth_prob_, is_training()),
          thw_out};
}

MViTPositionalEncodingImpl::MViTPositionalEncodingImpl(int64_t dim, const Thw &grid,
                                                       bool absolute) {
  class_token = register_parameter("class_token", torch::zeros({dim}));
  if (absolute) {
    spatial_pos = register_parameter("spatial_pos", torch::zeros({grid[1] * grid[2], dim}));
    temporal_pos = register_parameter("temporal_pos", torch::zeros({grid[0], dim}));
    class_pos = register_parameter("class_pos", torch::zeros({dim}));
  }
}

torch::Tensor MViTPositionalEncodingImpl::forward(const torch::Tensor &tokens) {
  const auto cls = class_token.expand({tokens.size(0), -1}).unsqueeze(1);
  auto x = torch::cat({cls, tokens}, 1);
  if (!spatial_pos.defined()) return x;
  // Position of token (t, s): temporal_pos[t] + spatial_pos[s], tokens in (t, h, w) order.
  const int64_t hw = spatial_pos.size(0), t = temporal_pos.size(0);
  auto pos = temporal_pos.repeat_interleave(hw, 0) + spatial_pos.repeat({t, 1});
  return x + torch::cat({class_pos.unsqueeze(0), pos}, 0);
}

MViTImpl::MViTImpl(const MViTConfig &cfg) : cfg_(cfg) {
  configure_runtime();
  cfg_.validate();
  const auto &settings = cfg_.block_setting;
  const int64_t width = settings.front().input_channels;
  conv_proj = register_module(
      "conv_proj", make_conv(torch::nn::Conv3dOptions(3, width, triple(cfg_.patch_embed_kernel))
                                 .stride(triple(cfg_.patch_embed_stride))
                                 .padding(triple(cfg_.patch_embed_padding))));
  Thw grid = cfg_.grid();
  pos_encoding =
      register_module("pos_encoding", MViTPositionalEncoding(width, grid, !cfg_.rel_pos_embed));
  blocks = register_module("blocks", torch::nn::ModuleList());
  const size_t n = settings.size();
  for (size_t i = 0; i < n; ++i) {
    const double sd = n > 1 ? cfg_.stochastic_depth_prob * i / (n - 1.0) : 0.0;
    blocks->push_back(MViTBlock(settings[i], cfg_, grid, sd));
    for (size_t d = 0; d < settings[i].stride_q.size(); ++d) grid[d] /= settings[i].stride_q[d];
  }
  norm = register_module("norm", layer_norm(settings.back().output_channels));
  head = register_module(
      "head", torch::nn::Sequential(torch::nn::Dropout(cfg_.dropout),
                                    make_linear(torch::nn::LinearOptions(
                                        settings.back().output_channels, cfg_.num_classes))));
  if (!init_skipped()) init_weights();
}

// torchvision's initialisation: linear weights and every positional table N(0, 0.02) truncated
// at 2 std, linear biases 0; convolutions and LayerNorms keep LibTorch's defaults.
void MViTImpl::init_weights() {
  torch::NoGradGuard no_grad;
  for (const auto &m : modules(/*include_self=*/false)) {
    if (auto *linear = m->as<torch::nn::LinearImpl>()) {
      trunc_normal_(linear->weight, 0.02);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto *pe = m->as<MViTPositionalEncodingImpl>()) {
      for (auto &p : pe->parameters()) trunc_normal_(p, 0.02);
    } else if (auto *a = m->as<MViTAttentionImpl>()) {
      for (auto *t : {&a->rel_pos_h, &a->rel_pos_w, &a->rel_pos_t}) {
        if (t->defined()) trunc_normal_(*t, 0.02);
      }
    }
  }
}

InputShape MViTImpl::input_shape() const {
  return {cfg_.frames, 3, cfg_.image_size, cfg_.image_size};
}

torch::Tensor MViTImpl::forward(torch::Tensor clips) {
  TORCH_CHECK(clips.dim() == 5 && clips.size(1) == cfg_.frames && clips.size(2) == 3 &&
                  clips.size(3) == cfg_.image_size && clips.size(4) == cfg_.image_size,
              "MViT expects clips [B, ", cfg_.frames, ", 3, ", cfg_.image_size, ", ",
              cfg_.image_size, "] (its position tables are built for one clip size), got ",
              clips.sizes());
  // torchvision's layout [B, C, T, H, W]; patches -> tokens [B, t*h*w, D] in (t, h, w) order.
  auto x = conv_proj(clips.permute({0, 2, 1, 3, 4}).contiguous());
  x = pos_encoding(x.flatten(2).transpose(1, 2));
  Thw thw = cfg_.grid();
  for (const auto &block : *blocks) {
    std::tie(x, thw) = block->as<MViTBlockImpl>()->forward(x, thw);
  }
  return head->forward(norm(x).select(1, 0));
}

nlohmann::json MViTImpl::config() const { return cfg_; }

}  // namespace vidcls
