// ResNet + Temporal ViT: a ResNet gives one pooled vector per frame, a linear projection maps it
// to the transformer width, and a transformer encoder with a CLS token classifies the sequence.
// The backbone is frozen by default (eval-mode BatchNorm, no gradients), as in the study.
// What the backbone sees is the config's `input`: the frame ("rgb", the study's), the frame's
// motion against the frame sampled before it ("motion"), or both, in two backbones whose features
// are concatenated before the projection ("two-stream": late fusion, as two-stream networks).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/modules/linear.h>

#include "vidcls/classifier.h"
#include "vidcls/layers.h"
#include "vidcls/resnet.h"

namespace vidcls {

struct ResNetTViTConfig {
  ResNetConfig backbone;
  int64_t frames = 16;
  int64_t image_size = 224;
  int64_t num_classes = 400;
  EncoderConfig temporal;
  bool temporal_pos_embed = true;
  bool freeze_backbone = true;
  double head_dropout = 0.0;
  // "rgb", "motion", "motion-stabilised" (the motion relative to the scene: what one global
  // translation of the pair explains, a drifting or shaking camera, taken out first) or
  // "two-stream". A motion image (vidcls/motion.h: normal flow u, v and the grey difference)
  // depends on a pair of sampled frames, so with every input but "rgb" a clip of `frames` frames
  // gives frames - 1 per-frame features, of the pairs (0, 1) ... (frames - 2, frames - 1), and
  // the temporal encoder has frames - 1 tokens. Checkpoints written before the field existed
  // read as "rgb".
  std::string input = "rgb";
  void validate() const;
  bool sees_motion() const { return input != "rgb"; }
  // Temporal tokens (per-frame features) of a clip.
  int64_t tokens() const { return sees_motion() ? frames - 1 : frames; }
  int64_t feature_dim() const {
    return input == "two-stream" ? 2 * backbone.feature_dim() : backbone.feature_dim();
  }
};

void to_json(nlohmann::json &j, const ResNetTViTConfig &c);
void from_json(const nlohmann::json &j, ResNetTViTConfig &c);

class ResNetTViTImpl : public VideoClassifierImpl,
                       public PerFrameBackbone,
                       public TokenSequenceModel {
 public:
  explicit ResNetTViTImpl(const ResNetTViTConfig &cfg);

  torch::Tensor forward(torch::Tensor clips) override;
  // frames [N, C, H, W] -> backbone features [N, feature_dim]; without autograd when frozen.
  torch::Tensor frame_features(const torch::Tensor &frames,
                               const torch::Tensor &earlier = {}) override;
  int64_t frame_context() const override { return cfg_.sees_motion() ? 1 : 0; }
  // per-frame features [B, T, feature_dim] -> logits; what runs per clip when the backbone
  // features are cached (feature ring in resnetvitinfer, feature cache in training).
  torch::Tensor classify_features(const torch::Tensor &features) override;
  PerFrameBackbone *per_frame_backbone() override { return this; }
  // A token per frame: its feature (window 1), or its pair's with the frame before (window 2).
  TokenSequenceModel *token_sequence() override { return this; }
  int64_t token_window() const override { return frame_context() + 1; }
  int64_t token_stride() const override { return 1; }
  torch::Tensor window_tokens(const torch::Tensor &windows) override;
  torch::Tensor classify_tokens(const torch::Tensor &tokens) override {
    return classify_features(tokens);
  }

  // Keeps a frozen backbone in eval mode whatever mode the rest is put in.
  void train(bool on = true) override;
  void set_backbone_frozen(bool frozen) override;
  bool backbone_frozen() const override { return cfg_.freeze_backbone; }

  std::string architecture() const override { return "resnet-tvit"; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;
  const ResNetTViTConfig &cfg() const { return cfg_; }

  // The RGB stream ("rgb", "two-stream") or the motion stream ("motion").
  ResNet backbone{nullptr};
  // The motion stream of "two-stream"; null otherwise.
  ResNet motion_backbone{nullptr};
  torch::nn::Linear proj{nullptr};
  TokenEncoder temporal{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  ResNetTViTConfig cfg_;
};
TORCH_MODULE(ResNetTViT);

}  // namespace vidcls
