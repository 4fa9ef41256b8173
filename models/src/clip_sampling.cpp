#include "vidcls/clip_sampling.h"

#include <algorithm>
#include <cmath>

namespace vidcls {

namespace {
constexpr uint64_t kSecond = 1000000000ull;
constexpr uint64_t kMillisecond = 1000000ull;
}  // namespace

void FrameSampler::configure(int stride, double rate, int fps_n, int fps_d) {
  rate_ = rate;
  stride_ = std::max(stride, 1);
  if (rate > 0) {
    period_ = static_cast<uint64_t>(std::llround(kSecond / rate));
    // Demuxers round timestamps (to the millisecond in Matroska), so a frame a hair before its
    // due time is on time; a quarter period keeps high rates exact.
    tolerance_ = std::min<uint64_t>(kMillisecond, period_ / 4);
    if (fps_n > 0 && fps_d > 0) {
      stride_ = std::max(1, static_cast<int>(std::lround(fps_n / (fps_d * rate))));
    }
  }
}

void FrameSampler::reset() {
  anchor_ = kNoTimestamp;
  last_pts_ = kNoTimestamp;
  n_since_anchor_ = 0;
  due_ = 0;
  frames_since_sample_ = 0;
  sampled_any_ = false;
}

bool FrameSampler::take(uint64_t pts) {
  bool take;
  if (rate_ > 0 && pts != kNoTimestamp) {
    // The first timestamp, or time going back without a flush (a new segment), restarts the
    // schedule on this frame.
    const bool restart = anchor_ == kNoTimestamp || (last_pts_ != kNoTimestamp && pts < last_pts_);
    last_pts_ = pts;
    if (restart) {
      anchor_ = pts;
      n_since_anchor_ = 0;
      take = true;
    } else {
      take = pts + tolerance_ >= due_;
    }
    if (take) {
      n_since_anchor_++;
      // Due times are computed from the anchor, not accumulated, so they do not drift.
      due_ = anchor_ + static_cast<uint64_t>(std::llround(n_since_anchor_ * (kSecond / rate_)));
      if (due_ <= pts + tolerance_) {
        // More than a period late: sample this frame once and restart the schedule here.
        anchor_ = pts;
        n_since_anchor_ = 1;
        due_ = pts + period_;
      }
    }
  } else {
    take = !sampled_any_ || frames_since_sample_ + 1 >= static_cast<uint64_t>(stride_);
  }
  if (take) {
    frames_since_sample_ = 0;
    sampled_any_ = true;
  } else {
    frames_since_sample_++;
  }
  return take;
}

uint64_t complete_clips(uint64_t n_sampled, uint64_t T, uint64_t hop) {
  if (T == 0 || hop == 0 || n_sampled < T) return 0;
  return (n_sampled - T) / hop + 1;
}

bool eos_clip(uint64_t n_sampled, uint64_t T, uint64_t hop, EosPolicy policy, ClipRecord &out) {
  if (policy == EosPolicy::kDrop || T == 0 || hop == 0) return false;
  const uint64_t full = complete_clips(n_sampled, T, hop);
  const uint64_t first = full * hop;
  if (n_sampled <= first) return false;                             // in a clip or between clips
  if (full > 0 && n_sampled <= (full - 1) * hop + T) return false;  // overlapping clips hold all
  out.index = full;
  out.first_sample = first;
  out.n_frames = n_sampled - first;  // < T, else a complete clip would have ended there
  out.partial = true;
  return true;
}

std::vector<ClipRecord> clip_windows(uint64_t n_sampled, uint64_t T, uint64_t hop,
                                     EosPolicy policy) {
  std::vector<ClipRecord> out;
  const uint64_t full = complete_clips(n_sampled, T, hop);
  for (uint64_t k = 0; k < full; ++k) {
    ClipRecord r;
    r.index = k;
    r.first_sample = k * hop;
    r.n_frames = T;
    out.push_back(r);
  }
  ClipRecord last;
  if (eos_clip(n_sampled, T, hop, policy, last)) out.push_back(last);
  return out;
}

std::vector<int64_t> clip_rows(uint64_t n_frames, uint64_t T) {
  const uint64_t have = std::max<uint64_t>(n_frames, 1);
  std::vector<int64_t> rows(T);
  for (uint64_t t = 0; t < T; ++t) rows[t] = static_cast<int64_t>(std::min(t, have - 1));
  return rows;
}

void ClipCutter::configure(uint64_t T, uint64_t hop) {
  T_ = std::max<uint64_t>(T, 1);
  hop_ = std::max<uint64_t>(hop, 1);
  clear();
}

void ClipCutter::reset() {
  ++epoch_;
  clear();
}

void ClipCutter::restart() {
  epoch_ = 0;
  clear();
}

void ClipCutter::clear() {
  n_sampled_ = 0;
  n_clips_ = 0;
  finished_ = false;
  slot_start_.assign(T_, kNoTimestamp);
  slot_end_.assign(T_, kNoTimestamp);
}

ClipRecord ClipCutter::record(uint64_t index, uint64_t first, uint64_t n, bool partial) const {
  ClipRecord r;
  r.stream = stream_;
  r.epoch = epoch_;
  r.index = index;
  r.first_sample = first;
  r.n_frames = n;
  r.partial = partial;
  r.start = slot_start_[first % T_];
  r.end = slot_end_[(first + n - 1) % T_];
  return r;
}

bool ClipCutter::add(uint64_t start_ns, uint64_t end_ns, ClipRecord &out) {
  const uint64_t i = n_sampled_++;
  finished_ = false;
  slot_start_[i % T_] = start_ns;
  slot_end_[i % T_] = end_ns;
  const uint64_t s = i + 1;
  if (s < T_ || (s - T_) % hop_ != 0) return false;
  out = record(n_clips_++, s - T_, T_, false);
  return true;
}

bool ClipCutter::finish(EosPolicy policy, ClipRecord &out) {
  if (finished_) return false;
  ClipRecord window;
  if (!eos_clip(n_sampled_, T_, hop_, policy, window)) return false;
  finished_ = true;
  out = record(n_clips_++, window.first_sample, window.n_frames, true);
  return true;
}

}  // namespace vidcls
