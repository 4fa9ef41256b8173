// Which decoded frames a clip spec samples, and which windows of sampled frames become clips.
// vidclsclipper and training's evaluation path both use these, so a video is cut into the same
// clips live and offline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vidcls/clip_record.h"
#include "vidcls/clip_spec.h"

namespace vidcls {

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

// Number of complete clips of T frames, `hop` apart, in `n_sampled` sampled frames. Clip k
// holds sampled frames [k * hop, k * hop + T).
uint64_t complete_clips(uint64_t n_sampled, uint64_t T, uint64_t hop);

// The end-of-stream clip, if the policy sends one: it starts where the next clip would have
// started and is sent only when some sampled frames are in no complete clip (frames that fall
// between clips when hop > T are skipped by design). Fills index, first_sample, n_frames and
// partial of `out`; returns false when there is none.
bool eos_clip(uint64_t n_sampled, uint64_t T, uint64_t hop, EosPolicy policy, ClipRecord &out);

// Every clip of a stream of `n_sampled` sampled frames, in order, the end-of-stream one last
// (records without stream or timestamps: training's evaluation cuts files this way).
std::vector<ClipRecord> clip_windows(uint64_t n_sampled, uint64_t T, uint64_t hop,
                                     EosPolicy policy);

// The contract's one rule for a clip of fewer than T frames (the end-of-stream clip, whatever
// its policy): its frames, then its last frame repeated up to T. The row of the n-frame clip
// that each of the T positions takes. Training pads its short windows the same way.
std::vector<int64_t> clip_rows(uint64_t n_frames, uint64_t T);

// Cuts a live stream of sampled frames into clips, as clip_windows cuts a file: told of each
// sampled frame and its time span, it returns the record of the clip that frame completes, and
// at end of stream the record of the clip left over. Sampled frame i lives in slot i % T of a
// ring of T frames, where the caller keeps its pixels.
class ClipCutter {
 public:
  // Clips of T frames, `hop` apart, from the next sampled frame on (same epoch).
  void configure(uint64_t T, uint64_t hop);
  // Starts over in a new epoch: the next sampled frame is frame 0 of clip 0.
  void reset();
  // Starts over in epoch 0 (a new run of the stream).
  void restart();
  void set_stream(const std::string &stream) { stream_ = stream; }
  const std::string &stream() const { return stream_; }

  // The index and ring slot the next sampled frame gets, and whether any clip holds it
  // (hop > T leaves frames between clips, which need no conversion).
  uint64_t next_sample() const { return n_sampled_; }
  uint64_t slot(uint64_t sample) const { return sample % T_; }
  bool in_a_clip(uint64_t sample) const { return hop_ <= T_ || sample % hop_ < T_; }

  // Registers the next sampled frame (ns; kNoTimestamp when unknown). True when it completes a
  // clip, whose record is then in `out`.
  bool add(uint64_t start_ns, uint64_t end_ns, ClipRecord &out);
  // The end-of-stream clip of `policy`, once per stream stretch (false when there is none or
  // it was sent). Its frames are the last out.n_frames sampled ones.
  bool finish(EosPolicy policy, ClipRecord &out);

  uint64_t epoch() const { return epoch_; }
  uint64_t sampled() const { return n_sampled_; }

 private:
  void clear();
  ClipRecord record(uint64_t index, uint64_t first, uint64_t n, bool partial) const;

  uint64_t T_ = 1, hop_ = 1;
  std::string stream_;
  uint64_t epoch_ = 0;
  uint64_t n_sampled_ = 0;
  uint64_t n_clips_ = 0;
  bool finished_ = false;
  std::vector<uint64_t> slot_start_, slot_end_;
};

}  // namespace vidcls
