// Video Swin Transformer (Liu et al., "Video Swin Transformer", CVPR 2022) as torchvision builds
// it: swin3d_t, swin3d_s and swin3d_b. Pretrained weights are torchvision's
// Swin3D_T/S/B_Weights.KINETICS400_V1 (Kinetics-400 top-1 77.715 / 79.521 / 79.427 % per
// torchvision's metadata; clips of 32 frames at 15 fps, 224 px crops). Every parameter and buffer
// carries the name of torchvision's state_dict key, so its checkpoint loads tensor for tensor.
//
// clip [B, T, C, H, W] -> [B, C, T, H, W] -> Conv3d patch embedding (2x4x4 tubelets, the clip
// zero-padded at the end to whole tubelets) + LayerNorm -> tokens [B, t, h, w, D] -> four stages
// of Swin blocks (self-attention within 8x7x7 windows; every second block shifts the windows by
// half a window, so neighbouring windows exchange information), with patch merging (2x2 spatial
// neighbours -> one token of twice the width) between stages -> LayerNorm -> mean over t, h, w
// -> linear head. The model takes any clip size: windows are clipped to the token grid where it
// is smaller and the grid is zero-padded to whole windows.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <nlohmann/json_fwd.hpp>

#include "vidcls/classifier.h"

namespace vidcls {

// Defaults are torchvision's swin3d_t.
struct Swin3DConfig {
  std::array<int64_t, 3> patch_size = {2, 4, 4};  // (t, h, w) of a tubelet
  int64_t embed_dim = 96;                         // width of the first stage; doubles per stage
  std::vector<int64_t> depths = {2, 2, 6, 2};     // blocks per stage
  std::vector<int64_t> num_heads = {3, 6, 12, 24};
  std::array<int64_t, 3> window_size = {8, 7, 7};  // (t, h, w) in tokens
  double mlp_ratio = 4.0;
  double dropout = 0.0;            // after the patch embedding, attention projection and MLP layers
  double attention_dropout = 0.0;  // on the attention probabilities
  double stochastic_depth_prob = 0.1;  // of the last block, rising linearly from 0 at the first
  int64_t frames = 32;                 // the clip size the weights were trained at; other sizes run
  int64_t image_size = 224;
  int64_t num_classes = 400;

  static Swin3DConfig t();
  static Swin3DConfig s();
  static Swin3DConfig b();
  // Throws std::invalid_argument naming the field that is out of range.
  void validate() const;
};

void to_json(nlohmann::json &j, const Swin3DConfig &c);
void from_json(const nlohmann::json &j, Swin3DConfig &c);

// Token grid size (t, h, w).
using Swin3DGrid = std::array<int64_t, 3>;

// Multi-head self-attention within (shifted) 3D windows, with a learned bias per relative
// position of two tokens in a window and head.
class Swin3DAttentionImpl : public torch::nn::Module {
 public:
  Swin3DAttentionImpl(int64_t dim, int64_t num_heads, const Swin3DGrid &window_size,
                      const Swin3DGrid &shift_size, double attention_dropout, double dropout);
  // x [B, t, h, w, dim] -> [B, t, h, w, dim]
  torch::Tensor forward(const torch::Tensor &x);

  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  torch::Tensor relative_position_bias_table;  // [(2 Wt - 1)(2 Wh - 1)(2 Ww - 1), heads]
  torch::Tensor relative_position_index;       // buffer [Wt Wh Ww, Wt Wh Ww] into the table

 private:
  torch::Tensor relative_position_bias(int64_t window_volume) const;

  int64_t heads_;
  Swin3DGrid window_size_, shift_size_;
  double attention_dropout_, dropout_;
};
TORCH_MODULE(Swin3DAttention);

// Pre-norm block: x + attn(norm1(x)), then x + mlp(norm2(x)), each branch under stochastic depth.
class Swin3DBlockImpl : public torch::nn::Module {
 public:
  Swin3DBlockImpl(int64_t dim, int64_t num_heads, const Swin3DGrid &shift_size,
                  const Swin3DConfig &cfg, double stochastic_depth_prob);
  // x [B, t, h, w, dim] -> the same shape.
  torch::Tensor forward(const torch::Tensor &x);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  Swin3DAttention attn{nullptr};
  torch::nn::Sequential mlp{nullptr};  // Linear, GELU, Dropout, Linear, Dropout (torchvision MLP)

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};  // mlp's two Linear layers
  double dropout_, stochastic_depth_prob_;
};
TORCH_MODULE(Swin3DBlock);

// Merges each 2x2 spatial neighbourhood (the grid zero-padded to even h and w) into one token:
// [B, t, h, w, C] -> [B, t, ceil(h/2), ceil(w/2), 2C]; time is left as it is.
class Swin3DPatchMergingImpl : public torch::nn::Module {
 public:
  explicit Swin3DPatchMergingImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor &x);

  torch::nn::Linear reduction{nullptr};  // 4C -> 2C, no bias
  torch::nn::LayerNorm norm{nullptr};    // over 4C
};
TORCH_MODULE(Swin3DPatchMerging);

// Tubelet embedding: [B, C, T, H, W] -> [B, t, h, w, D].
class Swin3DPatchEmbedImpl : public torch::nn::Module {
 public:
  Swin3DPatchEmbedImpl(const std::array<int64_t, 3> &patch_size, int64_t embed_dim);
  torch::Tensor forward(const torch::Tensor &x);

  torch::nn::Conv3d proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  std::array<int64_t, 3> patch_size_;
};
TORCH_MODULE(Swin3DPatchEmbed);

class Swin3DImpl : public VideoClassifierImpl {
 public:
  explicit Swin3DImpl(const Swin3DConfig &cfg = Swin3DConfig());

  // clips [B, T, 3, H, W] of any T, H, W >= 1 (as torchvision) -> logits [B, num_classes].
  torch::Tensor forward(torch::Tensor clips) override;
  std::string architecture() const override { return "swin3d"; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;
  const Swin3DConfig &cfg() const { return cfg_; }

  Swin3DPatchEmbed patch_embed{nullptr};
  // As torchvision's features: stage 0 (a Sequential of Swin3DBlock), a Swin3DPatchMerging,
  // stage 1, ..., the last stage.
  torch::nn::ModuleList features{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  void init_weights();
  Swin3DConfig cfg_;
};
TORCH_MODULE(Swin3D);

}  // namespace vidcls
