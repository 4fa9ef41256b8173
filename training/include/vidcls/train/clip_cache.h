// The decode-once clip cache: every video of a dataset decoded once (GStreamer, as the live
// pipeline decodes) and stored as uint8 RGB frames in one memory-mapped file. Training videos are
// scaled so their short side is a little above the crop, for random crops; validation and test
// videos to the short side the clip spec crops from, so an evaluation clip cut from the cache
// differs from the live pipeline's only by the rounding of the stored pixels (at most
// 0.5 / 255 / std per value). Training reads clips out of the mapping without decoding or
// copying.
//
// A person of an ava dataset is an item of its own: what is stored are the crops of the person's
// boxes (vidcls::object_region by the clip spec's object rule, on the decoded frame), each resized
// to the side's short side and cut to a square of it in the middle, on the frames that have a
// box (see dataset.h); the live pipeline (vidclsclipper inference-region=roi-list) crops and
// resizes the same regions of the same frames, so the same rounding bound holds.
//
// On disk, CACHE/ holds:
//   index.json          what is where: dataset (folder, layout, split, validation fraction,
//                       classes), resize settings, per video its path (relative to the dataset
//                       folder), label, side (train, val, test), subject, id, frame count,
//                       height, width, byte offsets,
//                       fps, and the source file's size and mtime; videos that could not be
//                       decoded under "skipped" with the reason; Kinetics rows without a file
//                       under "missing".
//   frames-<token>.u8   per video, 64-byte aligned: frames [N, H, W, 3] uint8 RGB row-major,
//                       then N int64 presentation timestamps and N int64 durations (ns,
//                       little-endian). Sizes differ between videos.
// A build writes a new frames file under a new name and then replaces index.json by rename,
// so a reader sees the old cache or the new one, never a mix, and a cache already open keeps
// its mapping.
//
// Rebuilding is incremental: a video whose path, size and mtime match the previous index is
// reused (its bytes copied from the previous frames file, not decoded again), a new or changed
// one is decoded, a removed one dropped; a video that failed before and is unchanged is not
// retried. When nothing changed nothing is written. A video stored at another size than its side
// now needs (a changed short side, or a video that moved between training and evaluation) is
// decoded again; so is everything when the frame limit changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "vidcls/clip_spec.h"
#include "vidcls/train/dataset.h"

namespace vidcls::train {

// The short side frames are stored at for a crop of `crop` pixels: 8/7 of it, the ImageNet
// ratio 256 / 224, so random crops have room to move (73 for the CPU presets' 64-px crops).
int short_side_for_crop(int crop);
constexpr int kDefaultShortSide = 73;
// The short side evaluation clips crop from in the CPU presets (64-px crops).
constexpr int kDefaultEvalShortSide = 64;

// Frames uint8 [N, H, W, 3] scaled, aspect kept, so that min(H, W) becomes `short_side`
// (vidcls::short_side_size), by vidcls::resize_frames (the preprocessing contract's bilinear
// resize: PyTorch's weights, antialiased when shrinking), rounded half to even and clamped to
// uint8. Returns a contiguous tensor; the input itself when the size already matches or
// `short_side` is 0.
torch::Tensor resize_short_side(const torch::Tensor &frames_nhwc_u8, int short_side);

struct CacheOptions {
  int short_side = kDefaultShortSide;  // training videos; 0 keeps the decoded size
  // Validation and test videos: the clip spec's crop short side; 0 keeps the decoded size.
  int eval_short_side = kDefaultEvalShortSide;
  double val_fraction = kDefaultValFraction;  // of the training side, see carve_validation
  int max_frames = 0;                  // decode at most this many frames per video; 0 = all
  ObjectCrop object;                   // ava: how a person's box becomes the region stored
  // ava: the short side of a person's crops where the side's short side is 0
  static constexpr int kDefaultObjectSide = 64;
  std::string split;                   // the dataset split recorded in the index; "" = default
  // Called after each video with what happened to it, for progress output.
  struct Event {
    size_t index = 0, total = 0;
    std::string path;
    std::string action;  // "decoded", "reused", "skipped"
    std::string reason;  // why it was skipped
    int64_t frames = 0;
    double seconds = 0;  // decoding and resizing time
  };
  std::function<void(const Event &)> progress;
};

struct SkippedVideo {
  std::string path;  // the video; for a person of an ava dataset, VideoItem::key()
  std::string reason;
  int64_t source_size = -1, source_mtime_ns = 0;  // so an unchanged file is not retried
};

struct CacheReport {
  std::string cache_dir;
  size_t videos = 0;                  // videos in the cache now
  size_t decoded = 0;                 // decoded by this build
  size_t reused = 0;                  // taken over from the previous cache without decoding
  size_t removed = 0;                 // in the previous cache but no longer in the dataset
  std::vector<SkippedVideo> skipped;  // could not be decoded (this build or an earlier one)
  std::vector<std::string> missing;   // named by the dataset but not on disk
  int64_t frames = 0;                 // frames in the cache
  int64_t bytes = 0;                  // size of the frames file
  double seconds = 0;                 // wall time of the build
  bool written = false;               // false: the cache was up to date, nothing was written
};

// The options that store a dataset for models of `spec`: training frames at short_side_for_crop
// of the larger crop side, evaluation frames at the spec's crop short side (decoded size for
// letterbox and stretch, which resize the whole frame).
CacheOptions cache_options_for(const ClipSpec &spec);

// Where the clip cache of a dataset lives when the user names none: one folder per dataset and
// storage sizes under $VIDCLS_CACHE_DIR, else $XDG_CACHE_HOME/vidcls/clip-caches, else
// ~/.cache/vidcls/clip-caches, so every run on the same dataset finds it again (and updates it
// when the dataset changed).
std::string default_cache_dir(const std::string &dataset_dir, const CacheOptions &options);

// Reads the dataset in `dataset_dir` (see dataset.h), decodes what the cache in `cache_dir`
// (created if needed) does not hold yet, and commits the new index. A video that cannot be
// decoded is skipped and named in the report and the index. Throws vidcls::FormatError when
// the dataset cannot be read, std::runtime_error when the cache cannot be written.
CacheReport build_cache(const std::string &dataset_dir, const std::string &cache_dir,
                        const CacheOptions &options = {});

// True when `dir` holds a clip cache index (index.json written by build_cache).
bool is_clip_cache(const std::string &dir);

struct CachedVideo {
  std::string path;  // absolute path of the source video
  std::string id;
  int label = -1;
  std::string label_name;
  int subject = -1;
  std::string side;  // "train", "val" or "test" under the split recorded in the index
  int64_t frames = 0, height = 0, width = 0;
  int64_t offset = 0;             // byte offset of the frames in the frames file
  int64_t timestamps_offset = 0;  // byte offset of the pts, then durations
  double fps = 0;                 // as the decoder reported it (0 when unknown)
  int64_t source_height = 0, source_width = 0;
  int64_t source_size = 0, source_mtime_ns = 0;
  int64_t object_id = -1;     // ava: the person whose crops these are; -1: the whole video
  std::string object_digest;  // ava: of the person's boxes and the crop rule they were cut by

  std::string key() const {
    return object_id < 0 ? path : path + "#" + std::to_string(object_id);
  }
};

// A cache opened for reading. Copies share one mapping; tensors handed out keep it mapped
// as long as they live. The mapping is read-only: frames() views must not be written to
// (clone first), a write faults.
class ClipCache {
 public:
  ClipCache() = default;
  // Throws vidcls::FormatError naming the file when the index or frames file is missing,
  // malformed or does not match.
  static ClipCache open(const std::string &cache_dir);

  size_t size() const;
  const CachedVideo &item(size_t i) const;
  // uint8 [N, H, W, 3] RGB, a view into the mapping (no copy).
  torch::Tensor frames(size_t i) const;
  // int64 [N] presentation timestamps and durations in ns, views into the mapping.
  torch::Tensor timestamps_ns(size_t i) const;
  torch::Tensor durations_ns(size_t i) const;
  // Indices of the videos on one side of the split ("train", "val" or "test"), in path order.
  std::vector<size_t> indices(const std::string &side) const;

  const std::vector<std::string> &classes() const;
  const std::string &layout() const;
  const std::string &split() const;
  const std::string &dataset_dir() const;
  const std::string &cache_dir() const;
  int short_side() const;
  int eval_short_side() const;
  double val_fraction() const;
  int max_frames() const;
  const std::vector<SkippedVideo> &skipped() const;
  const std::vector<std::string> &missing() const;

  // The mapped frames file (its path, its bytes), for checking that views point into it.
  std::string data_file() const;
  const uint8_t *data() const;
  size_t data_size() const;

 private:
  struct State;
  std::shared_ptr<const State> state_;
};

}  // namespace vidcls::train
