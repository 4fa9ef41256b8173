// What vidcls-synth's two renderers share (one object per video in synth.cpp, several people per
// video in synth_crowd.cpp): seeding, a random stream whose draws are the same with every
// standard library, and the scene background.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include <opencv2/core.hpp>

#include "vidcls/train/synth.h"

namespace vidcls::train::detail {

inline constexpr double kPi = 3.14159265358979323846;

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Draws from mt19937_64's raw output: std:: distributions differ between standard libraries,
// these do not.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  uint64_t bits() { return engine_(); }
  double uniform(double lo = 0, double hi = 1) {
    return lo + (hi - lo) * static_cast<double>(engine_() >> 11) * 0x1.0p-53;
  }
  int integer(int lo, int hi) {  // inclusive
    return lo + static_cast<int>(engine_() % static_cast<uint64_t>(hi - lo + 1));
  }
  cv::Scalar colour() { return cv::Scalar(integer(0, 255), integer(0, 255), integer(0, 255)); }

 private:
  std::mt19937_64 engine_;
};

// A width x height BGR-ordered uint8 background: a random colour, then a smooth noise texture or
// a two-colour gradient, then fine grain.
cv::Mat make_background(Rng &rng, int width, int height);

// Runs work(0) ... work(total - 1) on `threads` threads (the calling one among them), calling
// progress(done, total) after each, one call at a time; after a failure no new item starts, and
// the first exception is rethrown once all threads stopped.
void for_each_in_parallel(int total, int threads, const std::function<void(int)> &work,
                          const std::function<void(int, int)> &progress);

// write_synth_dataset for the ava layout (synth_crowd.cpp); `o` is valid.
std::vector<SynthItem> write_synth_crowd(const SynthOptions &o,
                                         const std::function<void(int, int)> &progress);

}  // namespace vidcls::train::detail
