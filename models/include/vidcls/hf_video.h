// Two video transformers in the layout of their Hugging Face checkpoints, so that a downloaded
// model.safetensors loads by name with load_state, tensor for tensor, with no renaming table:
//
// - ViViT-B/16x2, unfactorised (Model 1 of Arnab et al., "ViViT: A Video Vision Transformer",
//   ICCV 2021): joint space-time attention over all tubelets of the clip plus a CLS token.
//   Checkpoint google/vivit-b-16x2-kinetics400 (transformers' VivitForVideoClassification,
//   converted from Scenic's vivit_base_16x2_unfactorized; its model.safetensors is on the Hub's
//   refs/pr/3 only, main has pytorch_model.bin). Claimed Kinetics-400 top-1: 79.9 % with 4x3
//   views (Scenic's ViViT model zoo, scenic/projects/vivit/README.md).
// - VideoMAE ViT-B/16 (Tong et al., "VideoMAE: Masked Autoencoders are Data-Efficient Learners
//   for Self-Supervised Video Pre-Training", NeurIPS 2022), pre-trained 1600 epochs and
//   fine-tuned on Kinetics-400. Checkpoint MCG-NJU/videomae-base-finetuned-kinetics
//   (transformers' VideoMAEForVideoClassification). Claimed Kinetics-400 top-1: 80.9 % (top-5
//   94.7 %), 16 frames at stride 4, 5x3 views (MCG-NJU/VideoMAE MODEL_ZOO.md, ViT-B 1600 epochs;
//   the same figures on the Hugging Face model card).
//
// Both take OUR clip layout [B, T, C, H, W], as transformers' pixel_values; normalising the
// frames is the ClipSpec's job, and the two want different statistics: ViViT pixels on [-1, 1]
// (Scenic's zero centring: mean = std = 0.5 on [0, 1] values), VideoMAE ImageNet mean / std.
// Neither model's parameters depend on anything the file lacks: VideoMAE's fixed sinusoidal
// position table is computed, as transformers does, and kept out of the state.
#pragma once

#include <cstdint>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <nlohmann/json_fwd.hpp>

#include "vidcls/classifier.h"

namespace vidcls {

// One config type per architecture, as ViViTConfig and ResNetTViTConfig: a config() JSON then
// holds only the knobs its architecture reads (no CLS or pooling switch that means nothing to the
// other model), and the registry maps each name to one type. Geometry uses the project's words
// (frames, tubelet [t, h, w], dim, ...); `hidden_act` keeps config.json's names so a Hugging Face
// config maps onto it as it is. Defaults are the published checkpoints'.
struct VivitJointConfig {
  int64_t frames = 32;
  int64_t image_size = 224;  // square input, height = width
  int64_t channels = 3;
  int64_t tubelet_t = 2, tubelet_h = 16, tubelet_w = 16;
  int64_t num_classes = 400;
  int64_t dim = 768;       // hidden_size
  int64_t depth = 12;      // num_hidden_layers
  int64_t heads = 12;      // num_attention_heads
  int64_t mlp_dim = 3072;  // intermediate_size
  double ln_eps = 1e-6;    // layer_norm_eps (Flax's LayerNorm default, kept by the conversion)
  // "gelu" (exact, erf) or the tanh approximation: "gelu_fast" (the published config; Scenic is
  // Flax, whose nn.gelu approximates by default), "gelu_new", "gelu_pytorch_tanh".
  std::string hidden_act = "gelu_fast";
  bool qkv_bias = true;  // query/key/value carry a bias each

  int64_t grid_t() const { return frames / tubelet_t; }
  int64_t grid_h() const { return image_size / tubelet_h; }
  int64_t grid_w() const { return image_size / tubelet_w; }
  int64_t num_tubelets() const { return grid_t() * grid_h() * grid_w(); }
  void validate() const;  // throws std::invalid_argument naming the field
};

struct VideoMAEConfig {
  int64_t frames = 16;
  int64_t image_size = 224;
  int64_t channels = 3;
  int64_t tubelet_t = 2, tubelet_h = 16, tubelet_w = 16;  // tubelet_size, patch_size
  int64_t num_classes = 400;
  int64_t dim = 768;
  int64_t depth = 12;
  int64_t heads = 12;
  int64_t mlp_dim = 3072;
  // transformers' values, which are not the original code's (1e-6 for every LayerNorm): the
  // encoder's LayerNorms take layer_norm_eps (1e-12 in the published config), fc_norm is built
  // without an eps and so has PyTorch's default, 1e-5.
  double ln_eps = 1e-12;
  double fc_norm_eps = 1e-5;
  std::string hidden_act = "gelu";
  bool qkv_bias = true;  // attention.attention.q_bias / v_bias; key never has one
  // true (the published checkpoint): mean of all tokens -> fc_norm -> classifier. false (the
  // config of MCG-NJU/videomae-base, inherited by many fine-tunes of it): videomae.layernorm over
  // the tokens, then the FIRST TUBELET's token -> classifier (there is no CLS token; this is what
  // transformers computes for such a config).
  bool use_mean_pooling = true;

  int64_t grid_t() const { return frames / tubelet_t; }
  int64_t grid_h() const { return image_size / tubelet_h; }
  int64_t grid_w() const { return image_size / tubelet_w; }
  int64_t num_tubelets() const { return grid_t() * grid_h() * grid_w(); }
  void validate() const;  // throws std::invalid_argument naming the field
};

void to_json(nlohmann::json &j, const VivitJointConfig &c);
void from_json(const nlohmann::json &j, VivitJointConfig &c);  // missing fields keep defaults
void to_json(nlohmann::json &j, const VideoMAEConfig &c);
void from_json(const nlohmann::json &j, VideoMAEConfig &c);

// What a layer needs to know; both models fill it from their config.
struct HfLayerOptions {
  int64_t dim = 768;
  int64_t heads = 12;
  int64_t mlp_dim = 3072;
  double ln_eps = 1e-6;
  bool gelu_tanh = false;
  // VideoMAE: query/key/value without bias, plus q_bias and v_bias (key gets none).
  bool separate_qv_bias = false;
  bool qkv_bias = true;
};

// One pre-norm transformer layer under transformers' ViT names, relative to the layer:
//   attention.attention.{query,key,value}.{weight,bias} (or .weight + q_bias, v_bias)
//   attention.output.dense, intermediate.dense, output.dense, layernorm_before, layernorm_after.
// x + attn(LN(x)), then + fc2(gelu(fc1(LN(.)))). Dropout is 0 in both checkpoints and left out.
class HfEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit HfEncoderLayerImpl(const HfLayerOptions &options);
  torch::Tensor forward(const torch::Tensor &x);  // [B, N, D] -> [B, N, D]

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::Tensor q_bias, v_bias;                // defined only with separate_qv_bias && qkv_bias
  torch::nn::Linear attention_dense{nullptr};  // attention.output.dense
  torch::nn::Linear intermediate{nullptr};     // intermediate.dense
  torch::nn::Linear output{nullptr};           // output.dense
  torch::nn::LayerNorm layernorm_before{nullptr}, layernorm_after{nullptr};

 private:
  torch::Tensor self_attention(const torch::Tensor &x);
  HfLayerOptions options_;
};
TORCH_MODULE(HfEncoderLayer);

// Published names (prefix vivit.): embeddings.cls_token [1, 1, D],
// embeddings.position_embeddings [1, 1 + nt*nh*nw, D], embeddings.patch_embeddings.projection
// (Conv3d C -> D, kernel = stride = tubelet), encoder.layer.N.* (HfEncoderLayer), layernorm;
// then classifier (on the CLS token). transformers builds the classification model without
// VivitModel's pooler, so the file has no pooler tensors and neither do we.
class VivitJointImpl : public VideoClassifierImpl {
 public:
  explicit VivitJointImpl(const VivitJointConfig &cfg);

  torch::Tensor forward(torch::Tensor clips) override;
  // [B, 1 + nt*nh*nw, D] after the final LayerNorm (token 0 is CLS; tubelets in (t, h, w) order).
  torch::Tensor encode(const torch::Tensor &clips);

  std::string architecture() const override { return "vivit-joint"; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;
  const VivitJointConfig &cfg() const { return cfg_; }

  torch::Tensor cls_token, position_embeddings;
  torch::nn::Conv3d projection{nullptr};
  torch::nn::ModuleList layers{nullptr};  // HfEncoderLayerImpl each
  torch::nn::LayerNorm layernorm{nullptr};
  torch::nn::Linear classifier{nullptr};

 private:
  VivitJointConfig cfg_;
};
TORCH_MODULE(VivitJoint);

// Published names (prefix videomae.): embeddings.patch_embeddings.projection, encoder.layer.N.*
// (HfEncoderLayer with q_bias / v_bias); then fc_norm and classifier (use_mean_pooling), or
// videomae.layernorm and classifier (not). No position tensor: the sinusoid table is fixed.
class VideoMAEImpl : public VideoClassifierImpl {
 public:
  explicit VideoMAEImpl(const VideoMAEConfig &cfg);

  torch::Tensor forward(torch::Tensor clips) override;
  // [B, nt*nh*nw, D]: the encoder's output (after videomae.layernorm when there is one).
  torch::Tensor encode(const torch::Tensor &clips);

  std::string architecture() const override { return "videomae"; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;
  const VideoMAEConfig &cfg() const { return cfg_; }
  // [1, nt*nh*nw, D]: sin at even, cos at odd features of pos / 10000^(2 floor(i/2) / D), as the
  // VideoMAE code computes it (in double, then float). Not a parameter, not a buffer.
  const torch::Tensor &position_table() const { return position_table_; }

  torch::nn::Conv3d projection{nullptr};
  torch::nn::ModuleList layers{nullptr};    // HfEncoderLayerImpl each
  torch::nn::LayerNorm layernorm{nullptr};  // only without mean pooling
  torch::nn::LayerNorm fc_norm{nullptr};    // only with mean pooling
  torch::nn::Linear classifier{nullptr};

 private:
  VideoMAEConfig cfg_;
  torch::Tensor position_table_;
};
TORCH_MODULE(VideoMAE);

// The fixed position table above for `tokens` positions of `dim` features.
torch::Tensor videomae_sinusoid_table(int64_t tokens, int64_t dim);

}  // namespace vidcls
