// Transformer pieces shared by every model: attention, MLP, pre-norm block, drop-path and a
// token encoder with CLS token and learned position embedding. Blocks support MiniViT weight
// multiplexing (Zhang et al., CVPR 2022): consecutive layers share one set of attention and
// MLP weights while keeping their own LayerNorms and small per-layer transformations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace vidcls {

struct EncoderConfig {
  int64_t dim = 768;
  int64_t depth = 12;
  int64_t heads = 12;
  int64_t mlp_dim = 3072;
  bool qkv_bias = true;
  double dropout = 0.0;       // after attention projection and MLP layers
  double attn_dropout = 0.0;  // on attention probabilities
  double drop_path = 0.0;     // stochastic depth, linearly increasing to this rate
  double ln_eps = 1e-6;
  // The MLP's GELU: "exact" (erf, as PyTorch's nn.GELU and timm's ViT) or "tanh" (the tanh
  // approximation, Flax's nn.gelu default, which scenic's ViViT was trained with).
  std::string gelu = "exact";
  // MiniViT weight multiplexing.
  int64_t share = 1;           // R: consecutive layers that share one set of weights
  bool attn_mix = false;       // per-layer 1x1 mixing of attention maps across heads
  bool mlp_dwconv = false;     // per-layer depthwise conv over the token grid inside the MLP
  int64_t dwconv_kernel = 3;
};

// How attention is computed. kAuto uses LibTorch's fused scaled-dot-product attention
// (at::scaled_dot_product_attention, LibTorch >= 2.0) wherever the block needs nothing but the
// result; kMath always runs the explicit softmax(q k^T / sqrt(d)) v, which is the only path on
// LibTorch 1.13 and the one Mini-ViViT's attention-map mixing and attention tracing take.
// Process-wide, read at every forward; for tests and benchmarks that compare the two.
enum class AttentionPath { kAuto, kMath };
void set_attention_path(AttentionPath path);
AttentionPath attention_path();
// Whether this build has the fused kernel (LibTorch >= 2.0).
bool fused_attention_available();

// Fills `t` in place from N(0, std^2) truncated to [-2 std, 2 std] (the ViT initialisation;
// LibTorch 1.13 has no trunc_normal_). Returns `t`.
torch::Tensor trunc_normal_(torch::Tensor t, double std);

// Drop-path (stochastic depth) for residual branches; identity in eval mode.
torch::Tensor drop_path(const torch::Tensor &x, double p, bool training);

// The weights that MiniViT shares: attention qkv/projection and the two MLP layers.
class BlockWeightsImpl : public torch::nn::Module {
 public:
  explicit BlockWeightsImpl(const EncoderConfig &cfg);
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(BlockWeights);

// What stays per layer: LayerNorms, and the MiniViT transformations when enabled.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(const EncoderConfig &cfg, double drop_path_rate);
  // x [B, N, D]; `grid` = (gh, gw) for the N - prefix tokens after the `prefix` CLS token(s)
  // (used by the MLP depthwise conv). When `attn_out` is given, it receives the attention
  // probabilities [B, heads, N, N].
  torch::Tensor forward(const torch::Tensor &x, BlockWeights &w, int64_t prefix, int64_t gh,
                        int64_t gw, torch::Tensor *attn_out = nullptr);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear mix_pre{nullptr}, mix_post{nullptr};  // heads x heads, MiniViT only
  torch::nn::Conv2d dwconv{nullptr};                      // depthwise over mlp_dim, MiniViT only

 private:
  torch::Tensor attention(const torch::Tensor &x, BlockWeights &w, torch::Tensor *attn_out);
  torch::Tensor mlp(const torch::Tensor &x, BlockWeights &w, int64_t prefix, int64_t gh,
                    int64_t gw);
  int64_t heads_;
  bool gelu_tanh_;
  double attn_dropout_, dropout_, drop_path_;
};
TORCH_MODULE(Block);

// Hidden states and attention maps of every layer, for MiniViT's distillation losses.
struct EncoderTrace {
  std::vector<torch::Tensor> hidden;     // output of each layer, [B, N, D]
  std::vector<torch::Tensor> attention;  // [B, heads, N, N] per layer
};

// A pre-norm transformer over tokens, with an optional CLS token and learned position
// embedding, and a final LayerNorm.
class TokenEncoderImpl : public torch::nn::Module {
 public:
  // num_tokens: tokens without CLS; with_pos_embed: learn a position embedding over CLS + tokens.
  TokenEncoderImpl(const EncoderConfig &cfg, int64_t num_tokens, bool with_cls,
                   bool with_pos_embed);
  // tokens [B, N, D] -> [B, N (+1), D] after the final LayerNorm. (gh, gw) is the grid of the
  // N tokens (gh * gw == N); trace, when given, collects per-layer outputs.
  torch::Tensor forward(torch::Tensor tokens, int64_t gh, int64_t gw,
                        EncoderTrace *trace = nullptr);

  const EncoderConfig &config() const { return cfg_; }
  int64_t num_tokens() const { return num_tokens_; }

  torch::Tensor cls;        // [1, 1, D] or undefined
  torch::Tensor pos_embed;  // [1, N (+1), D] or undefined
  torch::nn::ModuleList blocks{nullptr};   // per layer: BlockImpl
  torch::nn::ModuleList weights{nullptr};  // per group of `share` layers: BlockWeightsImpl
  torch::nn::LayerNorm norm{nullptr};

 private:
  EncoderConfig cfg_;
  int64_t num_tokens_;
};
TORCH_MODULE(TokenEncoder);

}  // namespace vidcls
