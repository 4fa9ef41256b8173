// Clip transforms over cached or decoded frames: which frames a clip spec samples, the training
// augmentation (temporal jitter, short-side scale jitter, random crop, mirrors) and the
// clean evaluation clips (the windows vidclsclipper cuts, through vidcls::preprocess_frames).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/clip_sampling.h"
#include "vidcls/clip_spec.h"

namespace vidcls::train {

// Indices of the frames FrameSampler takes from a video whose frames have these presentation
// timestamps (ns; negative = none), exactly as vidclsclipper samples them from the same
// stream. `fps` is the decoder's nominal rate (0 if unknown), used only for frames without one.
std::vector<int64_t> sampled_frame_indices(const int64_t *pts_ns, int64_t n, const ClipSpec &spec,
                                           double fps);
std::vector<int64_t> sampled_frame_indices(const torch::Tensor &pts_ns, const ClipSpec &spec,
                                           double fps);

// The frame indices of `window` (positions into `sampled`), completed to `frames` by the
// contract's rule for short clips (clip_rows: the last frame repeated), as the elements complete
// an end-of-stream clip whatever the clipper's eos-policy.
std::vector<int64_t> window_frame_indices(const std::vector<int64_t> &sampled,
                                          const ClipRecord &window, int64_t frames);

// The windows an evaluation looks at: the clips vidclsclipper would emit (clip_windows with the
// pad policy); `temporal_views` of them spread evenly, the first one included (1: the first
// clip; 0: all of them).
std::vector<ClipRecord> eval_windows(int64_t n_sampled, const ClipSpec &spec, int temporal_views);

// Clean evaluation clips from frames uint8 [T, H, W, 3]: 1 view is preprocess_frames (the centre
// crop); 3 views are the centre and the two ends of the long side after the same resize.
// Returns `spatial_views` tensors [T, 3, height, width].
std::vector<torch::Tensor> eval_crops(const torch::Tensor &frames_u8, const ClipSpec &spec,
                                      int spatial_views);

struct Augmentation {
  // Short side before the crop, as a multiple of the crop's short side (max(width, height) or
  // spec.short_side): 1.0 is the evaluation scale.
  double min_scale = 1.0;
  double max_scale = 1.15;
  // Mirrors, each with probability 1/2: left-right, top-bottom and in time (the clip played
  // backwards). Each turns a direction class into its opposite (slide_left into slide_right);
  // the caller relabels the clip by what train_clip says it did (LabelSwaps).
  bool flip = false;
  bool vflip = false;
  bool reverse = false;
};

// The mirrors train_clip applied to one clip.
struct Mirrors {
  bool h = false, v = false, t = false;
};

// One training clip [T, 3, height, width] from a video's frames uint8 [N, H, W, 3]: a random
// window of T consecutive sampled frames (completed as short clips are), through
// preprocess_frames with the short side scaled by a random factor and a random crop, then
// mirrored as `aug` asks (what was done goes to `applied`). The random draws of a mirror that is
// off are not made, so enabling one leaves the clips of the others as they were.
torch::Tensor train_clip(const torch::Tensor &frames_u8, const std::vector<int64_t> &sampled,
                         const ClipSpec &spec, const Augmentation &aug, std::mt19937_64 &rng,
                         Mirrors *applied = nullptr);

// What a mirror does to the labels: the class each class becomes. From "a:b,c:d" (class names,
// as --flip-swap takes them): each pair swapped, every other class itself. Throws
// std::invalid_argument naming `option` for an unknown class (the classes listed), a class
// named twice, a class paired with itself or a malformed pair.
std::vector<int64_t> parse_label_swaps(const std::string &pairs,
                                       const std::vector<std::string> &classes,
                                       const std::string &option);

// Swaps for the mirrors of one training run (empty: identity) and the label of a clip after
// the mirrors in `applied`.
struct LabelSwaps {
  std::vector<int64_t> h, v, t;
  int64_t operator()(int64_t label, const Mirrors &applied) const;
};

// A random window of T of `n_sampled` sampled frames (temporal jitter only): its first sampled
// frame and how many it holds (fewer than T at the end of a short video).
ClipRecord random_window_record(int64_t n_sampled, int64_t frames, std::mt19937_64 &rng);

// A random window of T sampled frames (temporal jitter only): frame indices, padded.
std::vector<int64_t> random_window(const std::vector<int64_t> &sampled, int64_t frames,
                                   std::mt19937_64 &rng);

}  // namespace vidcls::train
