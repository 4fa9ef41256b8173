// The interface every video classifier of libvidcls offers to training and to the elements.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>

namespace vidcls {

// Input geometry a model expects: clips [B, frames, channels, height, width].
struct InputShape {
  int64_t frames = 0;
  int64_t channels = 3;
  int64_t height = 0;
  int64_t width = 0;
};

class VideoClassifierImpl : public torch::nn::Module {
 public:
  // clips [B, T, C, H, W] float -> logits [B, num_classes].
  virtual torch::Tensor forward(torch::Tensor clips) = 0;
  // Registry name of the architecture: "vivit", "mini-vivit" or "resnet-tvit".
  virtual std::string architecture() const = 0;
  // Full configuration; make_model(architecture(), config()) rebuilds the same module.
  virtual nlohmann::json config() const = 0;
  virtual int64_t num_classes() const = 0;
  virtual InputShape input_shape() const = 0;
};

using ClassifierPtr = std::shared_ptr<VideoClassifierImpl>;

}  // namespace vidcls
