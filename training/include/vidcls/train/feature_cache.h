// Training on cached backbone features (ResNet + Temporal ViT with a frozen backbone): every
// sampled frame of a video goes through the backbone once, and a clip is the rows of its frames.
// With a motion backbone a frame's feature is that of the pair it makes with the frame sampled
// before it, which is the same in every clip that holds both; the rows are forward(clip)'s.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "vidcls/classifier.h"
#include "vidcls/clip_record.h"
#include "vidcls/clip_spec.h"

namespace vidcls::train {

// Backbone features of a video's sampled frames: `frames_u8` [N, H, W, 3] through the clip spec's
// evaluation transform, `sampled` the frame indices FrameSampler takes (n of them) -> [n + 1, D].
// Row j is sampled frame j's feature (with a motion backbone, of the pair (j - 1, j); row 0, which
// no clip uses as a pair, of the still pair (0, 0)); row n is the still pair (n - 1, n - 1) that a
// window padded with its last frame repeats.
torch::Tensor sampled_frame_features(PerFrameBackbone &net, const torch::Tensor &frames_u8,
                                     const std::vector<int64_t> &sampled, const ClipSpec &spec,
                                     const torch::Device &device);

// The rows of sampled_frame_features that the clip of `window` (clip_frames frames, padded as
// clip_rows says) feeds the temporal model, one per token; `context` is the backbone's
// frame_context().
torch::Tensor feature_rows(const ClipRecord &window, int64_t n_sampled, int64_t clip_frames,
                           int64_t context);

}  // namespace vidcls::train
