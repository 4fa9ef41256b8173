// Per-object clips: a tracked object's box becomes a region of the frame, and the region the
// model's input, by one rule that vidclsclipper's per-object mode and training's per-person crops
// share (the clip spec's ObjectCrop). Boxes come from detectors and trackers, so every value is
// checked: a box without area in the frame, or with a value that is not finite, has no region.
#pragma once

#include <cstdint>
#include <optional>

#include <torch/types.h>

#include "vidcls/clip_record.h"  // Box
#include "vidcls/clip_spec.h"

namespace vidcls {

// A region of a frame in whole pixels: rows [top, top + height), columns [left, left + width).
struct PixelRect {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

// The region of an H x W frame that clips of the object in `box` are cut from: the box widened by
// rule.margin of its size on each side, made square when rule.square, then moved inside the
// frame where it fits and cut to the frame's size where it does not (so a region is never padded
// and is at least 1 x 1). None when the box holds a value that is not finite, has no area, or
// does not overlap the frame.
std::optional<PixelRect> object_region(const Box &box, int64_t H, int64_t W,
                                       const ObjectCrop &rule);

// The model's input of one object's region of RGB uint8 frames [H, W, 3]: the region is resized
// and normalised as preprocess_frames does a whole frame (spec.resize, mean, std), into `out`
// [3, height, width] float32 (a clip ring's slot).
void preprocess_region_into(const torch::Tensor &rgb_hwc_u8, const PixelRect &region,
                            const ClipSpec &spec, torch::Tensor out);
// The same for frames [N, H, W, 3] with one region per frame -> [N, 3, height, width].
torch::Tensor preprocess_regions(const torch::Tensor &rgb_nhwc_u8,
                                 const std::vector<PixelRect> &regions, const ClipSpec &spec);

}  // namespace vidcls
