// Which decoded frames a clip spec samples, and which windows of sampled frames become clips.
// vidclsclipper and training's evaluation path both use these, so a video is cut into the same
// clips live and offline.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "vidcls/clip_spec.h"

namespace vidcls {

constexpr uint64_t kNoTimestamp = std::numeric_limits<uint64_t>::max();

// Decides, frame by frame, whether a decoded frame is sampled: every `stride`-th frame, or on
// timestamps at `rate` frames per second (variable frame rate and gaps work: a frame is sampled
// when its timestamp reaches the next due time; after a gap the first frame is sampled once and
// the schedule restarts there). Frames without a timestamp are counted, with the stride the
// rate amounts to at the stream's nominal frame rate.
class FrameSampler {
 public:
  // fps_n / fps_d: nominal frame rate (0 if unknown), used only for frames without timestamps.
  void configure(int stride, double rate, int fps_n = 0, int fps_d = 1);
  void configure(const ClipSpec &spec, int fps_n = 0, int fps_d = 1) {
    configure(spec.frame_stride, spec.sample_rate, fps_n, fps_d);
  }
  void reset();
  // pts in nanoseconds, or kNoTimestamp.
  bool take(uint64_t pts);

 private:
  double rate_ = 0;
  int stride_ = 1;
  uint64_t period_ = 0;
  uint64_t tolerance_ = 0;
  uint64_t anchor_ = kNoTimestamp;
  uint64_t last_pts_ = kNoTimestamp;
  uint64_t due_ = 0;
  uint64_t n_since_anchor_ = 0;
  uint64_t frames_since_sample_ = 0;
  bool sampled_any_ = false;
};

// What happens at end of stream to sampled frames that no complete clip holds.
enum class EosPolicy { kDrop, kPad, kPartial };

// A clip as a window of sampled frames.
struct ClipWindow {
  uint64_t index = 0;         // 0, 1, ...
  uint64_t first_sample = 0;  // index of its first sampled frame
  uint64_t n_frames = 0;      // sampled frames it holds (< T only for the end-of-stream clip)
  bool partial = false;       // the end-of-stream clip (padded or short)
};

// Number of complete clips of T frames, `hop` apart, in `n_sampled` sampled frames. Clip k
// holds sampled frames [k * hop, k * hop + T).
uint64_t complete_clips(uint64_t n_sampled, uint64_t T, uint64_t hop);

// The end-of-stream clip, if the policy sends one: it starts where the next clip would have
// started and is sent only when some sampled frames are in no complete clip (frames that fall
// between clips when hop > T are skipped by design). Returns false when there is none.
bool eos_clip(uint64_t n_sampled, uint64_t T, uint64_t hop, EosPolicy policy, ClipWindow &out);

// Every clip of a stream of `n_sampled` sampled frames, in order, the end-of-stream one last.
std::vector<ClipWindow> clip_windows(uint64_t n_sampled, uint64_t T, uint64_t hop,
                                     EosPolicy policy);

}  // namespace vidcls
