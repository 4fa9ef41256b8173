// The 3D convolutional video classifiers that torchvision publishes with Kinetics-400 weights,
// rebuilt so that a torchvision state dict loads into them by name, tensor for tensor:
//
//   video-resnet  R3D-18, MC3-18 and R(2+1)D-18 (Tran et al., "A Closer Look at Spatiotemporal
//                 Convolutions for Action Recognition", CVPR 2018): a ResNet-18 whose
//                 convolutions are full 3D (r3d), 3D in the first stage and spatial-only after
//                 (mc3, "mixed convolutions"), or a spatial 1x3x3 followed by a temporal 3x1x1
//                 with a ReLU between (r2plus1d).
//   s3d           S3D (Xie et al., "Rethinking Spatiotemporal Feature Learning", ECCV 2018): an
//                 Inception network whose 3D convolutions are separated into spatial and
//                 temporal ones.
//
// Both take clips in vidcls's layout [B, T, C, H, W] and run torchvision's [B, C, T, H, W]
// inside. Their weights, clip specs and claimed accuracies are the presets *-k400 of the
// registry; docs/kinetics.md says where to download each file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <nlohmann/json_fwd.hpp>

#include "vidcls/classifier.h"

namespace vidcls {

// nn::Sequential whose forward takes and returns a tensor, so that one can hold another (the
// published layouts nest them: their state dict names are the nesting's indices).
class ChainImpl : public torch::nn::SequentialImpl {
 public:
  using torch::nn::SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(Chain);

struct VideoResNetConfig {
  // "r3d", "mc3" or "r2plus1d".
  std::string variant = "r2plus1d";
  std::vector<int64_t> layers = {2, 2, 2, 2};  // basic blocks per stage
  // The clip the weights were trained on; the network itself pools any size.
  int64_t frames = 16;
  int64_t image_size = 112;
  int64_t num_classes = 400;
  void validate() const;
};

void to_json(nlohmann::json &j, const VideoResNetConfig &c);
void from_json(const nlohmann::json &j, VideoResNetConfig &c);

class VideoResNetImpl : public VideoClassifierImpl {
 public:
  explicit VideoResNetImpl(const VideoResNetConfig &cfg);
  torch::Tensor forward(torch::Tensor clips) override;
  std::string architecture() const override { return "video-resnet"; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;

 private:
  VideoResNetConfig cfg_;
  Chain stem{nullptr}, layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(VideoResNet);

struct S3DConfig {
  // torchvision evaluates on 128 frames; any clip of at least 14 frames at 224 px runs (the
  // head averages its 2x7x7 pooling over the positions the clip has).
  int64_t frames = 128;
  int64_t image_size = 224;
  int64_t num_classes = 400;
  double dropout = 0.2;  // before the classifier, training only
  void validate() const;
};

void to_json(nlohmann::json &j, const S3DConfig &c);
void from_json(const nlohmann::json &j, S3DConfig &c);

class S3DImpl : public VideoClassifierImpl {
 public:
  explicit S3DImpl(const S3DConfig &cfg);
  torch::Tensor forward(torch::Tensor clips) override;
  std::string architecture() const override { return "s3d"; }
  nlohmann::json config() const override;
  int64_t num_classes() const override { return cfg_.num_classes; }
  InputShape input_shape() const override;

 private:
  S3DConfig cfg_;
  Chain features{nullptr}, classifier{nullptr};
};
TORCH_MODULE(S3D);

}  // namespace vidcls
