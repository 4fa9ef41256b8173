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

// A model whose backbone sees one frame at a time and whose temporal part classifies the sequence
// of per-frame features (ResNet + Temporal ViT). A frozen backbone's features can be computed
// once per frame and reused by every clip that holds the frame: resnetvitinfer's feature ring,
// training's feature cache.
class PerFrameBackbone {
 public:
  virtual ~PerFrameBackbone() = default;
  // How many sampled frames before a frame its feature depends on: 0 (the frame alone) or 1
  // (motion: the frame against the one sampled before it). A clip of T frames gives
  // T - frame_context() features, one per frame from its (frame_context() + 1)-th on; a clip's
  // first frame then only serves as the earlier frame of the second's pair.
  virtual int64_t frame_context() const { return 0; }
  // frames [N, C, H, W] -> features [N, D]; `earlier` [N, C, H, W] holds the frame sampled
  // before each (required when frame_context() is 1, ignored when 0; a frame given as its own
  // earlier frame is a still pair: no motion). Without autograd while the backbone is frozen.
  virtual torch::Tensor frame_features(const torch::Tensor &frames,
                                       const torch::Tensor &earlier = {}) = 0;
  // features [B, T - frame_context(), D] -> logits [B, num_classes].
  virtual torch::Tensor classify_features(const torch::Tensor &features) = 0;
  virtual bool backbone_frozen() const = 0;
  virtual void set_backbone_frozen(bool frozen) = 0;
};

// A model that turns a clip into a sequence of tokens and classifies the sequence, token k being
// computed from the clip's frames [k * token_stride(), k * token_stride() + token_window()) alone:
// ViViT's factorised encoder (a token per tubelet: its spatial encoder's CLS output) and ResNet +
// Temporal ViT (a token per frame, or per pair of frames for motion input). Clips that overlap by
// whole windows share tokens, which the inference elements compute once (feature ring).
class TokenSequenceModel {
 public:
  virtual ~TokenSequenceModel() = default;
  virtual int64_t token_window() const = 0;
  virtual int64_t token_stride() const = 0;
  // Tokens per clip of T frames.
  int64_t tokens_per_clip(int64_t T) const { return (T - token_window()) / token_stride() + 1; }
  // Empty when a token depends on its window alone; else why it depends on more of the clip
  // (then window_tokens refuses, and overlapping clips must each run whole).
  virtual std::string token_reuse_blocker() const { return {}; }
  // windows [N, token_window(), C, H, W] (normalised frames) -> tokens [N, D]; inference only
  // (nothing kept for a backward pass).
  virtual torch::Tensor window_tokens(const torch::Tensor &windows) = 0;
  // tokens [B, tokens_per_clip, D] -> logits [B, num_classes].
  virtual torch::Tensor classify_tokens(const torch::Tensor &tokens) = 0;
};

// What the last per-frame (spatial) layer of a model computed, for distillation (MiniViT):
// attention maps [B', heads, N, N] (after any head mixing) and hidden states [B', N, D], B' the
// clips times their frames or tubelet slices. Empty for models without such layers.
struct LastLayerTrace {
  torch::Tensor attention;
  torch::Tensor hidden;
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

  // forward that also fills `trace` where the architecture has per-frame token layers.
  virtual torch::Tensor forward_traced(torch::Tensor clips, LastLayerTrace &trace) {
    return forward(std::move(clips));
  }
  // This model as a per-frame backbone + temporal model, or nullptr when it is not one.
  virtual PerFrameBackbone *per_frame_backbone() { return nullptr; }
  // This model as a sequence of per-window tokens, or nullptr when it is not one.
  virtual TokenSequenceModel *token_sequence() { return nullptr; }
};

using ClassifierPtr = std::shared_ptr<VideoClassifierImpl>;

}  // namespace vidcls
