// The preprocessing contract: how a stream of decoded frames becomes the clips a model sees.
// Stored in every checkpoint; training's evaluation transform and vidclsclipper both call the
// functions below, so a clip is the same tensor in training and in a live pipeline.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

namespace vidcls {

// How a frame is brought to the model's width x height.
enum class ResizeMode {
  kCrop,       // scale so the short side is `short_side`, then take the centre width x height
  kLetterbox,  // scale to fit inside width x height, pad the rest with the mean colour
  kStretch,    // scale each axis independently
};

// Per-object clips: how a tracked object's box becomes the region of the frame its clips are
// cut from (object_region in object_crop.h). Training's per-person crops and vidclsclipper's
// per-object mode use the same rule.
struct ObjectCrop {
  double margin = 0.1;  // fraction of the box's width and of its height added on each side
  bool square = true;   // widen the region's shorter side to its longer one
};

struct ClipSpec {
  int frames = 16;          // T, sampled frames per clip
  int frame_stride = 1;     // take every k-th decoded frame (used when sample_rate == 0)
  double sample_rate = 0;   // frames per second to sample, on timestamps; 0 = use frame_stride
  int hop = 16;             // sampled frames between the starts of consecutive clips
  int width = 224;          // model input width
  int height = 224;         // model input height
  int short_side = 0;       // kCrop: short side before the centre crop; 0 = max(width, height)
  // kCrop: when both are set, the frame is scaled to exactly resize_width x resize_height (the
  // aspect not kept) before the centre crop, instead of by its short side (torchvision's
  // R(2+1)D family: 171 x 128, then 112 x 112).
  int resize_width = 0;
  int resize_height = 0;
  ResizeMode resize = ResizeMode::kCrop;
  // Whether shrinking low-pass filters first (antialiased bilinear). torchvision's video models
  // were trained and are evaluated on plain bilinear resizing, so their clip specs say false.
  bool antialias = true;
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};  // RGB, on [0, 1] values
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
  ObjectCrop object;        // per-object clips only
  // Layout of a clip tensor: [T, C, H, W], float32, RGB. A batch is [B, T, C, H, W].
  static constexpr const char *kLayout = "TCHW";

  // Throws std::invalid_argument naming the field when a value is out of range.
  void validate() const;

  // The normalisation on 0..255 pixel values: (x - pixel_mean) / pixel_std per channel.
  std::array<float, 3> pixel_mean() const;
  std::array<float, 3> pixel_std() const;
  // The short side a frame is scaled to before the centre crop (kCrop).
  int crop_short_side() const { return short_side > 0 ? short_side : std::max(width, height); }
  bool fixed_resize() const { return resize_width > 0 && resize_height > 0; }
};

// Every field equal: clips cut for one spec fit the other (a swapped model, a renegotiation).
bool same_clip_spec(const ClipSpec &a, const ClipSpec &b);

std::string to_string(ResizeMode mode);
ResizeMode resize_mode_from_string(const std::string &name);  // throws std::invalid_argument

void to_json(nlohmann::json &j, const ClipSpec &spec);
void from_json(const nlohmann::json &j, ClipSpec &spec);  // missing fields keep defaults

// The size of an H x W frame whose short side is scaled to `short_side`, aspect kept (the long
// side truncated to whole pixels, at least 1, as torchvision's Resize): {height, width}.
std::pair<int64_t, int64_t> short_side_size(int64_t H, int64_t W, int64_t short_side);

// Where a crop of kCrop is taken from the scaled frame: offsets of its top-left corner, clamped
// to the room there is; -1 centres it (half the room, an odd room's half rounded to even, as
// torchvision's CenterCrop). Training's random crops and multi-view testing move it;
// the clip spec's own clips are centred.
struct CropOffset {
  int64_t top = -1;
  int64_t left = -1;
};

// Where an H x W frame lands in the model's height x width input under `spec.resize`: the whole
// frame is resized to resized_h x resized_w (bilinear, antialiased when either side shrinks);
// rows [top, top + rows) and columns [left, left + cols) of that are kept and written at
// (out_top, out_left) of the input. The rest of the input (letterbox) is the mean colour.
struct ResizePlan {
  int64_t resized_h, resized_w;
  bool antialias;
  int64_t top, left, rows, cols;
  int64_t out_top, out_left;
};
ResizePlan plan_resize(int64_t H, int64_t W, const ClipSpec &spec, CropOffset crop = {});

// Decoded frames, RGB uint8 [N, H, W, 3] (any device; rows and pixels may be strided, channels
// adjacent), to the model's input [N, 3, height, width] float32 on the same device: placed per
// plan_resize, then normalised ((x / 255 - mean) / std). Training's augmentation calls it with a
// jittered spec and a crop offset, so a training clip is cut and scaled as a live one.
torch::Tensor preprocess_frames(const torch::Tensor &rgb_nhwc_u8, const ClipSpec &spec,
                                CropOffset crop = {});
// The same, written into `out` [N, 3, height, width] float32 (a clip ring's slots): in place when
// `out` is a contiguous CPU tensor and the frames are on the CPU.
void preprocess_frames_into(const torch::Tensor &rgb_nhwc_u8, const ClipSpec &spec,
                            torch::Tensor out, CropOffset crop = {});
// One frame [H, W, 3] -> [3, height, width].
torch::Tensor preprocess_frame(const torch::Tensor &rgb_hwc_u8, const ClipSpec &spec);

// The same resize without placement or normalisation: uint8 frames [N, H, W, 3] to float pixel
// values [N, 3, h, w] on 0..255 (what the clip cache stores, rounded).
torch::Tensor resize_frames(const torch::Tensor &rgb_nhwc_u8, int64_t h, int64_t w);

// A clip of fewer than T frames [n, ...] made whole by the contract's rule (clip_rows: the
// last frame repeated); a clip of T frames is returned as it is.
torch::Tensor complete_clip(const torch::Tensor &clip, int64_t T);

}  // namespace vidcls
