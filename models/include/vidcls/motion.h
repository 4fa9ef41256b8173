// Motion images computed from pairs of normalised frames: what the CPU presets' motion inputs
// (ViViT's "normal-flow" input transforms, ResNet + Temporal ViT's "motion", "motion-stabilised"
// and "two-stream" backbones) see instead of, or beside, the frames themselves.
#pragma once

#include <torch/types.h>

namespace vidcls {

// Normal flow of each frame of `later` against the same row of `earlier` ([N, C, H, W] each,
// normalised): the part of the optical flow along the image gradient that the
// brightness-constancy constraint I_x u + I_y v + I_t = 0 fixes (Horn & Schunck 1981), in pixels
// per sampled frame, from central differences of the pair's mean frame summed over the colour
// channels -> [N, 2, H, W] (u, v). `stabilise`: the temporal difference first loses what one
// global translation of the frame explains (a camera that drifts, pans or shakes moves the whole
// background by one translation), so the flow is the motion relative to the scene.
torch::Tensor normal_flow(const torch::Tensor &earlier, const torch::Tensor &later,
                          bool stabilise = false);

// The motion image of each frame of `later` against the frame sampled before it (`earlier`):
// normal flow (u, v) and the grey frame difference -> [N, 3, H, W]. It depends on that one pair
// only, so a per-frame feature of it is the same in every clip that holds the pair; a still pair
// (the same frame twice) gives zeros. `stabilise`: both the flow and the difference after the
// pair's global translation was taken out, as in normal_flow.
torch::Tensor pair_motion(const torch::Tensor &earlier, const torch::Tensor &later,
                          bool stabilise = false);

}  // namespace vidcls
