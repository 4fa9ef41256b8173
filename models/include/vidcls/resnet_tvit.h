// ResNet + Temporal ViT: a ResNet gives one pooled vector per frame, a linear projection maps it
// to the transformer width, and a transformer encoder with a CLS token classifies the sequence.
// The backbone is frozen by default (eval-mode BatchNorm, no gradients), as in the study.
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
  void validate() const;
};

void to_json(nlohmann::json &j, const ResNetTViTConfig &c);
void from_json(const nlohmann::json &j, ResNetTViTConfig &c);

class ResNetTViTImpl : public VideoClassifierImpl, public PerFrameBackbone {
 public:
  explicit ResNetTViTImpl(const ResNetTViTConfig &cfg);

  torch::Tensor forward(torch::Tensor clips) override;
  // frames [N, C, H, W] -> backbone features [N, feature_dim]; without autograd when frozen.
  torch::Tensor frame_features(const torch::Tensor &frames) override;
  // per-frame features [B, T, feature_dim] -> logits; what runs per clip when the backbone
  // features are cached (feature ring in resnetvitinfer, feature cache in training).
  torch::Tensor classify_features(const torch::Tensor &features) override;
  PerFrameBackbone *per_frame_backbone() override { return this; }

  // Keeps a frozen backbone in eval mode whatever mode the rest is put in.
  void train(bool on = true) override;
  void set_backbone_frozen(bool frozen) override;
  bool backbone_frozen() const override { return cfg_.freeze_backbone; }

  std::string architecture() const override { return "resnet-tvit"; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;
  const ResNetTViTConfig &cfg() const { return cfg_; }

  ResNet backbone{nullptr};
  torch::nn::Linear proj{nullptr};
  TokenEncoder temporal{nullptr};
  torch::nn::Linear head{nullptr};

 private:
  ResNetTViTConfig cfg_;
};
TORCH_MODULE(ResNetTViT);

}  // namespace vidcls
