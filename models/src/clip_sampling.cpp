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

bool eos_clip(uint64_t n_sampled, uint64_t T, uint64_t hop, EosPolicy policy, ClipWindow &out) {
  if (policy == EosPolicy::kDrop || T == 0 || hop == 0) return false;
  const uint64_t full = complete_clips(n_sampled, T, hop);
  const uint64_t first = full * hop;
  if (n_sampled <= first) return false;                          // in a clip or between clips
  if (full > 0 && n_sampled <= (full - 1) * hop + T) return false;  // overlapping clips hold all
  out.index = full;
  out.first_sample = first;
  out.n_frames = n_sampled - first;  // < T, else a complete clip would have ended there
  out.partial = true;
  return true;
}

std::vector<ClipWindow> clip_windows(uint64_t n_sampled, uint64_t T, uint64_t hop,
                                     EosPolicy policy) {
  std::vector<ClipWindow> out;
  const uint64_t full = complete_clips(n_sampled, T, hop);
  for (uint64_t k = 0; k < full; ++k) out.push_back({k, k * hop, T, false});
  ClipWindow last;
  if (eos_clip(n_sampled, T, hop, policy, last)) out.push_back(last);
  return out;
}

}  // namespace vidcls
