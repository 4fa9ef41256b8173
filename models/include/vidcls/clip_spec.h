// The preprocessing contract: how a stream of decoded frames becomes the clips a model sees.
// Stored in every checkpoint; training's evaluation transform and vidclsclipper both call the
// functions below, so a clip is the same tensor in training and in a live pipeline.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

namespace vidcls {

// How a frame is brought to the model's width x height.
enum class ResizeMode {
  kCrop,       // scale so the short side is `short_side`, then take the centre width x height
  kLetterbox,  // scale to fit inside width x height, pad the rest with the mean colour
  kStretch,    // scale each axis independently
};

struct ClipSpec {
  int frames = 16;          // T, sampled frames per clip
  int frame_stride = 1;     // take every k-th decoded frame (used when sample_rate == 0)
  double sample_rate = 0;   // frames per second to sample, on timestamps; 0 = use frame_stride
  int hop = 16;             // sampled frames between the starts of consecutive clips
  int width = 224;          // model input width
  int height = 224;         // model input height
  int short_side = 0;       // kCrop: short side before the centre crop; 0 = max(width, height)
  ResizeMode resize = ResizeMode::kCrop;
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};  // RGB, on [0, 1] values
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
  // Layout of a clip tensor: [T, C, H, W], float32, RGB. A batch is [B, T, C, H, W].
  static constexpr const char *kLayout = "TCHW";

  // Throws std::invalid_argument naming the field when a value is out of range.
  void validate() const;
};

std::string to_string(ResizeMode mode);
ResizeMode resize_mode_from_string(const std::string &name);  // throws std::invalid_argument

void to_json(nlohmann::json &j, const ClipSpec &spec);
void from_json(const nlohmann::json &j, ClipSpec &spec);  // missing fields keep defaults

// One decoded frame, RGB uint8 [H, W, 3] (any device), to the model's input [3, height, width]
// float32 on the same device: resize per `spec.resize` (bilinear, antialiased when shrinking),
// then (x / 255 - mean) / std.
torch::Tensor preprocess_frame(const torch::Tensor &rgb_hwc_u8, const ClipSpec &spec);

// Same for a batch of frames [N, H, W, 3] -> [N, 3, height, width].
torch::Tensor preprocess_frames(const torch::Tensor &rgb_nhwc_u8, const ClipSpec &spec);

}  // namespace vidcls
