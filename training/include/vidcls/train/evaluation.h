// Clean evaluation of a classifier on whole videos, shared by vidcls-eval and vidcls-train: the
// clips vidclsclipper would cut (eval_windows) by spatial crops (eval_crops), each scored by the
// model, a video's score the mean of its views' softmax (multi-view testing).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "vidcls/classifier.h"
#include "vidcls/clip_record.h"
#include "vidcls/clip_spec.h"
#include "vidcls/train/clip_cache.h"
#include "vidcls/train/frame_map.h"
#include "vidcls/train/metrics.h"

namespace vidcls::train {

// T temporal clips (of the clipper's windows, spread evenly; 0 = all) x S spatial crops (1: the
// centre, 3: the centre and both ends of the long side).
struct Views {
  int temporal = 1;
  int spatial = 1;
};
// "TxS"; throws std::invalid_argument for anything else (T >= 0, S 1 or 3).
Views parse_views(const std::string &text);

// A video's frames, uint8 [N, H, W, 3], and the ones the clip spec samples. A person's frames
// decoded from the video are the model's input already (`prepared`): float32 [N, 3, height,
// width], one region each, and have one spatial view.
struct VideoFrames {
  torch::Tensor frames;
  std::vector<int64_t> sampled;
  bool prepared = false;
  std::vector<int64_t> pts_ns;  // prepared: the presentation time of each frame
};
// Decoded as the live pipeline decodes (decode_video); throws vidcls::FormatError.
VideoFrames decoded_frames(const std::string &path, const ClipSpec &spec);
// A person of an ava dataset (item.object_id >= 0), decoded and cut as vidclsclipper's per-object
// mode cuts them from boxes replayed from the same CSV (vidclsroireplay format=ava, max-gap
// kAvaMaxGap): of the frames the clip spec samples from the video, those with a box of the person
// (box_at), each one's region (object_region by spec.object) preprocessed by
// preprocess_region_into. The person's frames are taken as one track: the clipper would end it
// where its boxes stop for longer than object-timeout, and hold a box object-hold past the last.
VideoFrames decoded_person_frames(const VideoItem &item, const ClipSpec &spec);
// From a clip cache (frames stored at the cache's short side for the video's side).
VideoFrames cached_frames(const ClipCache &cache, size_t item, const ClipSpec &spec);

// Every view of a video: clips [windows x spatial, T, 3, height, width], window-major.
struct VideoViews {
  torch::Tensor clips;
  std::vector<ClipRecord> windows;
  int spatial = 1;
};
VideoViews video_views(const VideoFrames &video, const ClipSpec &spec, Views views);

// The model's logits of every view [windows x spatial, classes], on `device`'s results moved to
// the CPU. A model whose clips are sequences of tokens of their own windows of frames
// (TokenSequenceModel with no reuse blocker: ViViT on a tubelet-local input, ResNet + Temporal
// ViT) computes each distinct window of a crop once when windows overlap, as vividinfer and
// resnetvitinfer do, and equals the whole views' forward up to float rounding. `computed`, when
// given, receives the windows (tokens) computed.
torch::Tensor view_logits(VideoClassifierImpl &model, const VideoFrames &video,
                          const VideoViews &views, const torch::Device &device,
                          int64_t *computed = nullptr);

// Which clip scores a person's keyframe at t_ns in the frame mAP (EvalReport): among the windows
// holding the sampled frame nearest the keyframe, the one whose middle is nearest it; -1 when
// none holds that frame or nothing was sampled. Needs frames.sampled and frames.pts_ns.
int64_t keyframe_clip(const VideoFrames &frames, const std::vector<ClipRecord> &windows,
                      int64_t clip_frames, double t_ns);

// One video to evaluate: a file, or an item of a clip cache; or a person of an ava dataset's
// video (path#person id), from the file (`person`) or a clip cache.
struct EvalVideo {
  std::string path;
  std::string label;
  std::optional<size_t> cache_item;
  std::optional<VideoItem> person;
};

// The videos of one side ("train", "val", "test" or "all") of a dataset folder or a clip cache.
struct EvalSet {
  std::vector<EvalVideo> videos;
  std::vector<std::string> classes;  // the dataset's
  std::string split;
  std::optional<ClipCache> cache;
  nlohmann::json skipped;  // [{"path", "reason"}] the cache could not decode
};
EvalSet eval_set(const std::string &data, const std::string &split, const std::string &side);

struct EvalReport {
  ClassificationMetrics metrics;
  // People decoded from an ava dataset folder: AVA's frame mAP at IoU 0.5 (frame_map.h), each
  // person's keyframe box scored by the clip whose middle is nearest the keyframe, among the
  // clips that hold the person's sampled frame nearest the keyframe; the truth is the person's
  // label at each of their keyframes.
  std::optional<FrameMap> frame_map;
  nlohmann::json videos;   // per video: path, label, predicted, score, clips (per window)
  nlohmann::json skipped;  // [{"path", "reason"}]
};

// Evaluates `model` (eval mode, on `device`) on every video of `set`. Videos that cannot be
// decoded are skipped and listed; a dataset class the model does not know is a MismatchError.
// `progress` is called after each video with its entry of EvalReport::videos.
EvalReport evaluate_set(
    VideoClassifierImpl &model, const std::vector<std::string> &labels, const ClipSpec &spec,
    const EvalSet &set, Views views, const torch::Device &device,
    const std::function<void(size_t, size_t, const nlohmann::json &)> &progress = {});

}  // namespace vidcls::train
