// ViViT factorised encoder (Model 2 of Arnab et al., ICCV 2021) and Mini-ViViT (the same model
// with MiniViT weight multiplexing).
//
// clip [B, T, C, H, W] -> tubelets by Conv3d (kernel = stride = tubelet) -> [B, nt, nh*nw, D]
// -> spatial encoder per temporal index (own CLS token, learned position embedding)
// -> spatial CLS outputs [B, nt, D] -> temporal encoder (own CLS, optional temporal position
// embedding) -> CLS -> head.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "vidcls/classifier.h"
#include "vidcls/layers.h"

namespace vidcls {

struct ViViTConfig {
  std::string architecture = "vivit";  // "vivit" or "mini-vivit"
  int64_t frames = 32;
  int64_t image_size = 224;  // square input, height = width
  int64_t channels = 3;
  int64_t tubelet_t = 2, tubelet_h = 16, tubelet_w = 16;
  int64_t num_classes = 400;
  EncoderConfig spatial;   // dim/heads/mlp shared by both encoders in practice
  EncoderConfig temporal;
  bool spatial_pos_embed = true;
  bool temporal_pos_embed = true;
  double head_dropout = 0.0;
  // How pretrained image weights are brought in (docs/training.md): copy the patch
  // embedding bias into the tubelet bias or leave it random.
  bool tubelet_bias_from_image = true;
  // Take the spatial position embedding from the image model (interpolated when the grid
  // differs) or keep it random, as the study did.
  bool pos_embed_from_image = true;
  // Position embeddings initialised with N(0, 0.02) ("random") or zeros.
  std::string pos_embed_init = "random";
  // What the tubelet embedding sees (see motion_input below):
  //  - "none": the normalised clip as given (the study's ViViT);
  //  - "temporal-residual": each frame minus the mean frame of the clip, which removes
  //    everything that does not change within the clip (background, the object's colour);
  //  - "normal-flow": per pair of consecutive frames, the normal flow (u, v) -- the part of the
  //    optical flow along the image gradient that the brightness-constancy constraint
  //    I_x u + I_y v + I_t = 0 determines (Horn & Schunck 1981), in pixels per sampled frame --
  //    and, as the third channel, the grey temporal residual.
  //  - "normal-flow-stabilised": the same, after the temporal difference has lost the one
  //    global translation per pair (the camera's) that explains most of it, estimated by
  //    reweighted least squares on the same constraint: motion relative to the scene.
  //  - "tubelet-normal-flow": "normal-flow" computed within each tubelet on its own (the pairs
  //    of its frames, its last frame repeating its last pair's flow, the grey residual against
  //    its own mean frame): a tubelet's encoding then depends on its frames alone, so clips that
  //    overlap by whole tubelets share it (the inference elements' feature ring). "normal-flow"
  //    and "temporal-residual" look at the whole clip (its mean frame, its last pair), which
  //    makes every clip's tubelets its own.
  // Trained from scratch on vidcls-synth motion data, a model that sees the plain clip memorises
  // appearance and stays near chance; the residual learns where things go (the slides) but not
  // which way they turn (rotation stays at chance: the sign of a local motion depends on the
  // object's contrast with its background, which the residual leaves in); normal flow carries
  // the direction itself, whatever the contrast, and learns both (docs/training.md). Both
  // throw away the appearance cues real actions need, so only the CPU presets use them. Part of
  // the model, not of the clip spec: vidclsclipper's clips are the same either way.
  std::string input_transform = "none";

  int64_t grid_t() const { return frames / tubelet_t; }
  int64_t grid_h() const { return image_size / tubelet_h; }
  int64_t grid_w() const { return image_size / tubelet_w; }
  void validate() const;  // TORCH_CHECK with a message naming the field
};

// The tubelet embedding's input for `input_transform`: clips [B, T, C, H, W] (normalised) ->
// [B, T, C', H, W] (C' = 3 for "normal-flow": u, v, grey residual; the last frame repeats the
// flow of the last pair). "tubelet-normal-flow" needs `tubelet_t` (> 1, dividing T). Throws
// c10::Error for an unknown transform.
torch::Tensor motion_input(const torch::Tensor &clips, const std::string &input_transform,
                           int64_t tubelet_t = 0);

void to_json(nlohmann::json &j, const ViViTConfig &c);
void from_json(const nlohmann::json &j, ViViTConfig &c);
void to_json(nlohmann::json &j, const EncoderConfig &c);
void from_json(const nlohmann::json &j, EncoderConfig &c);

// Intermediate results for distillation (MiniViT) and for parity tests.
struct ViViTTrace {
  EncoderTrace spatial, temporal;
  torch::Tensor spatial_cls;  // [B, nt, D] spatial CLS outputs (after the spatial LayerNorm)
  torch::Tensor features;     // [B, D] temporal CLS output (after the temporal LayerNorm)
};

class ViViTImpl : public VideoClassifierImpl, public TokenSequenceModel {
 public:
  explicit ViViTImpl(const ViViTConfig &cfg);

  torch::Tensor forward(torch::Tensor clips) override;
  torch::Tensor forward_traced(torch::Tensor clips, LastLayerTrace &trace) override;
  // forward that also fills `trace` (pass keep_layers to collect per-layer states).
  torch::Tensor forward_trace(torch::Tensor clips, ViViTTrace &trace, bool keep_layers);
  // tubelet tokens [B, nt, nh*nw, D]
  torch::Tensor embed(const torch::Tensor &clips);
  // [B, nt, D]: the spatial encoder's CLS token of every tubelet slice, clip by clip and a few
  // frames at a time (inference: nothing kept for a backward pass).
  torch::Tensor spatial_cls_by_chunks(const torch::Tensor &clips);

  // A token per tubelet: its spatial CLS output. Shared by overlapping clips unless the input
  // transform looks at the whole clip (token_reuse_blocker says which).
  TokenSequenceModel *token_sequence() override { return this; }
  int64_t token_window() const override { return cfg_.tubelet_t; }
  int64_t token_stride() const override { return cfg_.tubelet_t; }
  std::string token_reuse_blocker() const override;
  torch::Tensor window_tokens(const torch::Tensor &windows) override;
  torch::Tensor classify_tokens(const torch::Tensor &tokens) override;

  std::string architecture() const override { return cfg_.architecture; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;
  const ViViTConfig &cfg() const { return cfg_; }

  torch::nn::Conv3d tubelet{nullptr};
  TokenEncoder spatial{nullptr}, temporal{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  // tubelet tokens [N, nh*nw, D] -> the spatial encoder's CLS outputs [N, D], a few at a time
  torch::Tensor spatial_cls_of(const torch::Tensor &tokens);
  ViViTConfig cfg_;
};
TORCH_MODULE(ViViT);

// Tubelet kernel from a 2D patch embedding [D, C, ph, pw]:
// central frame: the 2D kernel in time slice t / 2, zeros in the others;
// average: the 2D kernel in every slice, divided by t. Both give, on a clip whose frames are all
// the same image, exactly the 2D embedding of that image.
enum class TubeletInit { kCentralFrame, kAverage };
torch::Tensor inflate_patch_kernel(const torch::Tensor &kernel2d, int64_t t, TubeletInit mode);
TubeletInit tubelet_init_from_string(const std::string &name);  // throws std::invalid_argument

}  // namespace vidcls
