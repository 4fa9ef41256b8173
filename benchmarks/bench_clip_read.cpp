// How fast one CPU core turns a clip cache into training clips: random windows of a preset's
// clip spec through the training transform (train_clip: short-side scale jitter, random crop,
// normalisation), from the mapped frames file, first with the file's pages dropped from the page
// cache (the disk's share) and then with them resident. Prints clips/s per core, the frame
// bytes the clips touched per second, and the cache's bytes per second of video: the numbers the
// Kinetics-400 plan in docs/accuracy.md scales from.
//
//   bench-clip-read --cache DIR --preset vivit-b16x2-fe [--clips 300] [--threads 1]
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include "vidcls/registry.h"
#include "vidcls/runtime.h"
#include "vidcls/train/clip_cache.h"
#include "vidcls/train/transforms.h"

namespace {

using Clock = std::chrono::steady_clock;

// Drops the frames file from the page cache (clean pages only: a cache nobody writes to).
bool drop_page_cache(const std::string &path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  const bool ok = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
  ::close(fd);
  return ok;
}

struct Pass {
  double seconds = 0;
  double frame_bytes = 0;  // bytes of the whole frames the clips were cut from
};

Pass read_clips(const vidcls::train::ClipCache &cache, const std::vector<size_t> &videos,
                const std::vector<std::vector<int64_t>> &sampled, const vidcls::ClipSpec &spec,
                int clips, uint64_t seed) {
  vidcls::train::Augmentation aug;
  std::mt19937_64 rng(seed);
  Pass p;
  const auto t0 = Clock::now();
  for (int c = 0; c < clips; ++c) {
    const size_t i = rng() % videos.size();
    const auto &item = cache.item(videos[i]);
    const auto clip = vidcls::train::train_clip(cache.frames(videos[i]), sampled[i], spec, aug, rng);
    p.frame_bytes += static_cast<double>(clip.size(0)) * item.height * item.width * 3;
  }
  p.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return p;
}

}  // namespace

int main(int argc, char **argv) {
  std::string cache_dir, preset = "vivit-b16x2-fe";
  int clips = 300, threads = 1;
  CLI::App app{"Training clips per second per core from a clip cache."};
  app.add_option("--cache", cache_dir, "clip cache (vidcls-prep)")->required();
  app.add_option("--preset", preset, "preset whose clip spec cuts the clips")->capture_default_str();
  app.add_option("--clips", clips, "clips per pass")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  vidcls::configure_runtime();
  at::set_num_threads(threads);
  const auto cache = vidcls::train::ClipCache::open(cache_dir);
  const auto &spec = vidcls::find_preset(preset).clip;
  std::vector<size_t> videos;
  std::vector<std::vector<int64_t>> sampled;
  double video_seconds = 0, video_bytes = 0;
  for (size_t v : cache.indices("train")) {
    const auto &item = cache.item(v);
    auto s = vidcls::train::sampled_frame_indices(cache.timestamps_ns(v), spec, item.fps);
    if (s.empty() || item.fps <= 0) continue;
    videos.push_back(v);
    sampled.push_back(std::move(s));
    video_seconds += item.frames / item.fps;
    video_bytes += static_cast<double>(item.frames) * item.height * item.width * 3;
  }
  if (videos.empty()) {
    std::fprintf(stderr, "bench-clip-read: %s has no training videos with a frame rate\n",
                 cache_dir.c_str());
    return 1;
  }
  const bool dropped = drop_page_cache(cache.data_file());
  const Pass cold = read_clips(cache, videos, sampled, spec, clips, 1);
  const Pass warm = read_clips(cache, videos, sampled, spec, clips, 2);
  const auto &first = cache.item(videos.front());
  std::printf("clip cache %s: %zu training videos, frames %lldx%lld, %.1f MB per second of video\n",
              cache_dir.c_str(), videos.size(), static_cast<long long>(first.width),
              static_cast<long long>(first.height), video_bytes / video_seconds / 1e6);
  std::printf("%s clips (%d frames, %dx%d), %d thread(s), %d clips per pass:\n", preset.c_str(),
              spec.frames, spec.width, spec.height, threads, clips);
  for (const auto &[name, p] : {std::pair{dropped ? "page cache dropped" : "cold (not dropped)",
                                          cold},
                                std::pair{"page cache warm", warm}}) {
    std::printf("  %-19s %8.1f clips/s  %8.1f MB/s of frames\n", name, clips / p.seconds,
                p.frame_bytes / p.seconds / 1e6);
  }
  return 0;
}
