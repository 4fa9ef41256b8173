// MViT, the multiscale vision transformer for video, as torchvision builds it: MViT-v2-S (Li et
// al., "MViTv2: Improved Multiscale Vision Transformers for Classification and Detection", CVPR
// 2022) and, by configuration, MViT-v1-B (Fan et al., ICCV 2021). Pretrained weights are
// torchvision's MViT_V2_S_Weights.KINETICS400_V1 (Kinetics-400, 80.757 % top-1 per torchvision's
// metadata; clips of 16 frames at 7.5 fps, 224 px crops). Every parameter carries the name of
// torchvision's state_dict key, so its checkpoint loads tensor for tensor.
//
// clip [B, T, C, H, W] -> [B, C, T, H, W] -> Conv3d patch embedding (3x7x7, stride 2x4x4)
// -> tokens [B, 1 + t*h*w, D] behind a class token -> multiscale blocks, whose attention pools
// queries, keys and values over the token grid (query pooling shrinks the grid stage by stage
// while the width grows) -> LayerNorm -> class token -> dropout + linear head.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/pooling.h>
#include <nlohmann/json_fwd.hpp>

#include "vidcls/classifier.h"

namespace vidcls {

// One multiscale block, as torchvision's MSBlockConfig. Kernels and strides are (t, h, w) or
// empty (none). Queries are pooled when kernel_q or stride_q is larger than 1, keys and values
// when kernel_kv or stride_kv is; stride_q > 1 shrinks the token grid for every later block.
struct MViTBlockConfig {
  int64_t num_heads = 1;
  int64_t input_channels = 0;
  int64_t output_channels = 0;
  std::vector<int64_t> kernel_q, kernel_kv, stride_q, stride_kv;
};

// torchvision's mvit_v2_s blocks: 16 blocks in four stages of width 96, 192, 384 and 768.
std::vector<MViTBlockConfig> mvit_v2_s_block_setting();

// Defaults are torchvision's mvit_v2_s.
struct MViTConfig {
  std::vector<MViTBlockConfig> block_setting = mvit_v2_s_block_setting();
  bool residual_pool = true;             // v2: the pooled query is added to the attention output
  bool residual_with_cls_embed = false;  // ... including at the class token
  bool rel_pos_embed = true;       // v2: decomposed relative positions in attention (else absolute)
  bool proj_after_attn = true;     // v2: widen inside attention (else in the MLP)
  double dropout = 0.5;            // before the head
  double attention_dropout = 0.0;  // after the attention projection and the MLP layers
  double stochastic_depth_prob = 0.2;  // of the last block, rising linearly from 0 at the first
  int64_t frames = 16;                 // torchvision's temporal_size: the model takes one size
  int64_t image_size = 224;            // square input, height = width
  std::array<int64_t, 3> patch_embed_kernel = {3, 7, 7};
  std::array<int64_t, 3> patch_embed_stride = {2, 4, 4};
  std::array<int64_t, 3> patch_embed_padding = {1, 3, 3};
  int64_t num_classes = 400;

  static MViTConfig v2_s();
  static MViTConfig v1_b();
  // Token grid (t, h, w) after the patch embedding, as torchvision sizes it (size // stride).
  std::array<int64_t, 3> grid() const;
  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};

void to_json(nlohmann::json &j, const MViTBlockConfig &c);
void from_json(const nlohmann::json &j, MViTBlockConfig &c);
void to_json(nlohmann::json &j, const MViTConfig &c);
void from_json(const nlohmann::json &j, MViTConfig &c);

// Token grid (t, h, w) that the tokens after the class token form.
using Thw = std::array<int64_t, 3>;

// Pools tokens [B, heads, 1 + t*h*w, C] (or [B, 1 + t*h*w, C]) over their grid, passing the class
// token through: a depthwise Conv3d followed by LayerNorm (attention's q, k, v pooling) or a
// max pool alone (the block's skip path). Returns the pooled tokens and their grid.
class MViTPoolImpl : public torch::nn::Module {
 public:
  MViTPoolImpl(torch::nn::Conv3d pool, torch::nn::LayerNorm norm);
  explicit MViTPoolImpl(torch::nn::MaxPool3d pool);
  std::pair<torch::Tensor, Thw> forward(const torch::Tensor &x, const Thw &thw);

  // Registered as "pool" (whichever is set) and "norm_act" (Sequential{LayerNorm}), as torchvision.
  torch::nn::Conv3d conv{nullptr};
  torch::nn::MaxPool3d max_pool{nullptr};
  torch::nn::Sequential norm_act{nullptr};
};
TORCH_MODULE(MViTPool);

// Multi-head pooling attention: qkv projection, optional pooling of q and of k, v, optional
// decomposed relative position terms (v2), optional residual pooling (v2), output projection.
class MViTAttentionImpl : public torch::nn::Module {
 public:
  // `grid` is the block's input token grid as torchvision sizes it (sets the rel-pos tables).
  MViTAttentionImpl(const MViTBlockConfig &block, const MViTConfig &cfg, const Thw &grid);
  // x [B, N, input_channels] -> [B, N', dim] and the grid of the (pooled) queries.
  std::pair<torch::Tensor, Thw> forward(const torch::Tensor &x, const Thw &thw);

  torch::nn::Linear qkv{nullptr};
  torch::nn::Sequential project{nullptr};  // Linear (+ Dropout when attention_dropout > 0)
  MViTPool pool_q{nullptr}, pool_k{nullptr}, pool_v{nullptr};
  torch::Tensor rel_pos_h, rel_pos_w, rel_pos_t;  // [2 * size - 1, head_dim] each, v2 only

 private:
  int64_t heads_, head_dim_, dim_;
  double scale_;
  bool residual_pool_, residual_with_cls_embed_;
};
TORCH_MODULE(MViTAttention);

class MViTBlockImpl : public torch::nn::Module {
 public:
  MViTBlockImpl(const MViTBlockConfig &block, const MViTConfig &cfg, const Thw &grid,
                double stochastic_depth_prob);
  // x [B, 1 + t*h*w, input_channels] -> [B, 1 + t'*h'*w', output_channels] and (t', h', w').
  std::pair<torch::Tensor, Thw> forward(const torch::Tensor &x, const Thw &thw);

  MViTPool pool_skip{nullptr};  // max pool of the shortcut when the queries are strided
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  MViTAttention attn{nullptr};
  torch::nn::Sequential mlp{nullptr};  // Linear, GELU, Dropout, Linear, Dropout (torchvision MLP)
  torch::nn::Linear project{nullptr};  // input -> output channels where they differ

 private:
  bool proj_after_attn_;
  double stochastic_depth_prob_;
};
TORCH_MODULE(MViTBlock);

// Prepends the class token; v1 (no rel_pos_embed) adds learned absolute positions: one per
// time step plus one per spatial location, and one for the class token.
class MViTPositionalEncodingImpl : public torch::nn::Module {
 public:
  MViTPositionalEncodingImpl(int64_t dim, const Thw &grid, bool absolute);
  // tokens [B, t*h*w, D] -> [B, 1 + t*h*w, D]
  torch::Tensor forward(const torch::Tensor &tokens);

  torch::Tensor class_token;                           // [D]
  torch::Tensor spatial_pos, temporal_pos, class_pos;  // [h*w, D], [t, D], [D]; v1 only
};
TORCH_MODULE(MViTPositionalEncoding);

class MViTImpl : public VideoClassifierImpl {
 public:
  explicit MViTImpl(const MViTConfig &cfg = MViTConfig());

  // clips [B, frames, 3, image_size, image_size] -> logits [B, num_classes]; other sizes are
  // refused (the positional tables are built for one grid).
  torch::Tensor forward(torch::Tensor clips) override;
  std::string architecture() const override { return "mvit"; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;
  const MViTConfig &cfg() const { return cfg_; }

  torch::nn::Conv3d conv_proj{nullptr};
  MViTPositionalEncoding pos_encoding{nullptr};
  torch::nn::ModuleList blocks{nullptr};  // MViTBlockImpl each
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Sequential head{nullptr};  // Dropout, Linear

 private:
  void init_weights();
  MViTConfig cfg_;
};
TORCH_MODULE(MViT);

}  // namespace vidcls
