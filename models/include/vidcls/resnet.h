// ResNet-18/34/50/101/152 in torchvision's layout (v1.5: the stride of a Bottleneck is on its
// 3x3 convolution), with torchvision's parameter names, so its state dicts load as they are.
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace vidcls {

struct ResNetConfig {
  int64_t depth = 50;         // 18, 34, 50, 101 or 152
  int64_t num_classes = 0;    // 0: no fc layer, forward returns pooled features
  // How the last stage's map becomes the feature: "avg" (global average, torchvision's) or
  // "max" (global max: the strongest response wherever it is, not diluted by the rest of the
  // frame; for motion among moving distractors).
  std::string pool = "avg";
  int64_t feature_dim() const { return depth < 50 ? 512 : 2048; }
  void validate() const;
};

void to_json(nlohmann::json &j, const ResNetConfig &c);
void from_json(const nlohmann::json &j, ResNetConfig &c);

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetConfig &cfg);
  // images [N, 3, H, W] -> pooled features [N, feature_dim]
  torch::Tensor features(const torch::Tensor &images);
  // images -> fc(features) when num_classes > 0, else features
  torch::Tensor forward(const torch::Tensor &images);
  const ResNetConfig &cfg() const { return cfg_; }

  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};

 private:
  ResNetConfig cfg_;
};
TORCH_MODULE(ResNet);

}  // namespace vidcls
